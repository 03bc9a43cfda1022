"""Alias moves: compare-and-set on the alias's revision, with full history and audit.

A move runs inside the caller's write transaction and does three writes: the alias row
(inserted at revision 1, or updated ``WHERE revision = <the revision read>``), one
``alias_moves`` row, and one audit event. If another writer moved the alias in between, the
guarded update touches no row (or the insert hits the primary key) and the move raises
:class:`~regrow.errors.AliasConflict`: it never overwrites someone else's move silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NoReturn, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup, promotion
from regrow.catalog.core import CatalogCore
from regrow.catalog.models import Alias, AliasMove, SystemVersion
from regrow.catalog.promotion import PromotionRules
from regrow.catalog.records import AliasMoveRecord, AliasRecord
from regrow.catalog.refs import check_name
from regrow.catalog.rows import alias_move_record, alias_record
from regrow.errors import AliasConflict, CatalogError, ConfigError, NotFound, PromotionRefused

__all__ = ["AliasesMixin", "current", "missing", "move", "previous_holder"]

# A move is on the hot path of every promotion and rollback: its statements are built once,
# as plain Core on the tables (no ORM row loading; manifests can be large).
_ALIASES = cast(sa.Table, Alias.__table__)
_VERSIONS = cast(sa.Table, SystemVersion.__table__)
_HELD = sa.select(_ALIASES.c.version_id, _ALIASES.c.revision).where(
    _ALIASES.c.system == sa.bindparam("system"), _ALIASES.c.name == sa.bindparam("alias")
)
_REFS = sa.select(_VERSIONS.c.id, _VERSIONS.c.system, _VERSIONS.c.number).where(
    _VERSIONS.c.id.in_(sa.bindparam("ids", expanding=True))
)
_LOCK = _HELD.with_for_update()
_CREATE = sa.insert(_ALIASES)
_CAS = sa.update(_ALIASES).where(
    _ALIASES.c.system == sa.bindparam("b_system"),
    _ALIASES.c.name == sa.bindparam("b_name"),
    _ALIASES.c.revision == sa.bindparam("b_revision"),
)
_RECORD_MOVE = sa.insert(cast(sa.Table, AliasMove.__table__))
_NEWEST_MOVE = sa.select(sa.func.max(AliasMove.id)).where(
    AliasMove.system == sa.bindparam("s"), AliasMove.alias == sa.bindparam("a")
)


class AliasesMixin(CatalogCore):
    """Catalog methods for aliases and their history."""

    def move_alias(
        self,
        system: str,
        alias: str,
        version_id: str,
        *,
        expected_revision: int | None = None,
        actor: str | None = None,
        reason: str = "",
        rules: PromotionRules | None = None,
        force: bool = False,
    ) -> AliasRecord:
        """Point ``system@alias`` at a version of ``system``, by compare-and-set.

        With ``expected_revision`` (``0`` for an alias that does not exist yet) the move
        happens only if the alias is still at that revision. Without it, the move is still
        guarded by the revision read in the same transaction. Losing a race raises
        :class:`~regrow.errors.AliasConflict`. The move, its history row and its audit event
        (``alias.move``) are written together. A move to the version the alias already holds
        is refused.

        With ``rules`` a protected alias moves only when nothing is :func:`.promotion.missing`
        (checked in the move's transaction); otherwise
        :class:`~regrow.errors.PromotionRefused` names everything missing, the attempt is
        audited (``promotion.refused``) and nothing moves. ``force`` (for an admin: the
        caller checks the role) moves it anyway, with a ``reason``, audited ``alias.force``.
        """
        who = self._who(actor)
        forced: list[str] = []

        def write(session: Session) -> AliasRecord:
            # Lock the alias row (PostgreSQL; SQLite's write transaction holds the database):
            # the rules are checked against the holder this move then replaces.
            held = session.execute(_LOCK, {"system": system, "alias": alias}).one_or_none()
            revision = held.revision if held is not None else 0
            if expected_revision is not None and revision != expected_revision:
                _conflict(system, alias, revision, expected_revision)  # a lost race, not a refusal
            lacks = (
                promotion.missing(session, rules, system=system, alias=alias, version_id=version_id)
                if rules is not None
                else []
            )
            if lacks and lacks[0].endswith("would change nothing"):
                raise PromotionRefused(
                    lacks[0].replace(": the move", ", so the move"),
                    hint=f"nothing to do; `regrow aliases {system}` shows where each alias is",
                )
            if lacks and not force:
                raise PromotionRefused(
                    f"{system}@{alias} cannot move to {_ref_of(session, version_id)}: it lacks "
                    + "; ".join(lacks),
                    hint="fix what is listed, or (an admin) --force with a --reason",
                )
            forced.extend(lacks)
            return move(
                session,
                system=system,
                alias=alias,
                version_id=version_id,
                expected_revision=revision,
                actor=who,
                reason=reason,
                action="alias.force" if force else "alias.move",
                kind="force" if force else "move",
                bypassed=forced,
                policy=rules.policy_id if rules is not None else None,
            )

        try:
            self._check_move(system, alias, reason)
            if (
                expected_revision is not None
                and checks.integer("expected_revision", expected_revision) < 0
            ):
                raise ConfigError(f"'expected_revision' must be >= 0 (got {expected_revision!r})")
            if force and not reason.strip():
                raise ConfigError(
                    "a forced promotion needs a reason (got an empty one)",
                    hint="say why the gates and approvals are bypassed: --reason '...'",
                )
            record: AliasRecord = self._write(write)
        except (PromotionRefused, ConfigError) as refused:  # the attempt is audited
            text = str(refused)
            self._write(
                lambda session: audit.append(
                    session,
                    actor=who,
                    action="promotion.refused",
                    subject=f"alias:{system}@{alias}",
                    payload={
                        "to": version_id,
                        "reason": reason,
                        "refused": text,
                        "rules": rules.as_dict() if rules is not None else None,
                    },
                )
            )
            raise
        return record

    def rollback_alias(
        self, system: str, alias: str, *, actor: str | None = None, reason: str = ""
    ) -> AliasRecord:
        """Move ``system@alias`` back one step in its history of holders.

        The first rollback goes to the holder before the current one, the next to the one
        before that (:func:`.promotion.holders`): it never toggles between two versions. A
        move like any other (compare-and-set, history, audit action ``alias.rollback``). An
        alias with no earlier holder raises :class:`~regrow.errors.CatalogError`.
        """
        self._check_move(system, alias, reason)
        who = self._who(actor)

        def write(session: Session) -> AliasRecord:
            previous, revision = previous_holder(session, system, alias)
            return move(
                session,
                system=system,
                alias=alias,
                version_id=previous,
                expected_revision=revision,
                actor=who,
                reason=reason,
                action="alias.rollback",
                kind="rollback",
            )

        return self._write(write)

    @property
    def approvals(self) -> promotion.Approvals:
        """Approvals of versions for aliases (see :mod:`.promotion`)."""
        return promotion.Approvals(self)

    def promotion_lacks(
        self, system: str, alias: str, version_id: str, *, rules: PromotionRules
    ) -> list[str]:
        """What moving ``system@alias`` to ``version_id`` under ``rules`` lacks now (empty:
        allowed): :func:`.promotion.missing`, the check :meth:`move_alias` runs, read only."""
        with self._read() as session:
            return promotion.missing(
                session, rules, system=system, alias=alias, version_id=version_id
            )

    def get_alias(self, system: str, alias: str) -> AliasRecord:
        """The alias ``system@alias``; :class:`~regrow.errors.NotFound` if it does not exist."""
        with self._read() as session:
            row = current(session, system, alias)
            if row is None:
                raise missing(session, system, alias)
            return alias_record(row)

    def list_aliases(self, system: str | None = None) -> list[AliasRecord]:
        """Every alias (of ``system``, if given), sorted by system and name."""
        query = sa.select(Alias).order_by(Alias.system, Alias.name)
        if system is not None:
            query = query.where(Alias.system == system)
        with self._read() as session:
            return [alias_record(row) for row in session.scalars(query)]

    def alias_history(self, system: str, alias: str) -> list[AliasMoveRecord]:
        """Every move of ``system@alias`` (who, when, why, from, to), newest first."""
        query = (
            sa.select(AliasMove)
            .where(AliasMove.system == system, AliasMove.alias == alias)
            .order_by(AliasMove.id.desc())
        )
        with self._read() as session:
            return [alias_move_record(row) for row in session.scalars(query)]

    def _check_move(self, system: str, alias: str, reason: str) -> None:
        check_name("system", system)
        check_name("alias", alias)
        checks.text("reason", reason, max_length=10_000, empty=True)


def current(session: Session, system: str, alias: str) -> Alias | None:
    """The alias row, or None when the alias does not exist."""
    return session.get(Alias, (system, alias), populate_existing=True)


def move(
    session: Session,
    *,
    system: str,
    alias: str,
    version_id: str,
    expected_revision: int | None,
    actor: str,
    reason: str,
    action: str = "alias.move",
    kind: str = "move",
    bypassed: list[str] | None = None,
    policy: str | None = None,
) -> AliasRecord:
    """Point ``system@alias`` at ``version_id`` by compare-and-set (see the module docstring).

    ``kind`` is kept in the history (``move``, ``rollback``, ``force``); ``bypassed`` lists
    what a forced move lacked (kept in its audit event).
    """
    conn = session.connection()
    held = conn.execute(_HELD, {"system": system, "alias": alias}).one_or_none()
    from_id, revision = (held.version_id, held.revision) if held is not None else (None, 0)
    ids = [version_id] if from_id is None else [version_id, from_id]
    refs = {row.id: (row.system, row.number) for row in conn.execute(_REFS, {"ids": ids})}
    if version_id not in refs:
        lookup.version_by_id(session, version_id)  # raises VersionNotFound with a hint
    target_system, number = refs[version_id]
    if expected_revision is not None and expected_revision != revision:
        _conflict(system, alias, revision, expected_revision)
    if from_id == version_id:
        raise CatalogError(
            f"{target_system}:v{number} already holds {system}@{alias}: the move would change "
            "nothing",
            hint="promote another version, or roll back with `regrow rollback`",
        )
    if target_system != system:
        raise CatalogError(
            f"version {target_system}:v{number} ({version_id}) belongs to system "
            f"{target_system!r}, not {system!r}",
            hint=f"aliases of {system!r} can only point at versions of {system!r}",
        )
    now = datetime.now(UTC)
    values = {"version_id": version_id, "revision": revision + 1, "updated_at": now}
    if held is None:
        try:
            with conn.begin_nested():  # a savepoint: a lost race leaves the transaction usable
                conn.execute(_CREATE, {"system": system, "name": alias, **values})
        except IntegrityError:
            _conflict(system, alias, _revision_now(session, system, alias), revision)
    else:
        where = {"b_system": system, "b_name": alias, "b_revision": revision}
        if conn.execute(_CAS, {**where, **values}).rowcount != 1:
            _conflict(system, alias, _revision_now(session, system, alias), revision)
    conn.execute(
        _RECORD_MOVE,
        {
            "system": system,
            "alias": alias,
            "from_version_id": from_id,
            "to_version_id": version_id,
            "revision": revision + 1,
            "actor": actor,
            "reason": reason,
            "at": now,
            "kind": kind,
        },
    )
    from_ref = f"{refs[from_id][0]}:v{refs[from_id][1]}" if from_id in refs else None
    audit.append(
        session,
        actor=actor,
        action=action,
        subject=f"alias:{system}@{alias}",
        rows=[
            ("aliases", (system, alias)),
            # the alias row is locked (or serialized) by this move: its newest move is ours
            ("alias_moves", conn.execute(_NEWEST_MOVE, {"s": system, "a": alias}).scalar_one()),
        ],
        payload={
            "from": from_id,
            "from_ref": from_ref,
            "to": version_id,
            "to_ref": f"{system}:v{number}",
            "revision": revision + 1,
            "reason": reason,
            **({"bypassed": bypassed} if bypassed else {}),
            **({"policy": policy} if policy else {}),
        },
    )
    return AliasRecord(
        system=system, name=alias, version_id=version_id, revision=revision + 1, updated_at=now
    )


def previous_holder(session: Session, system: str, alias: str) -> tuple[str, int]:
    """The holder a rollback of ``system@alias`` goes back to, and the alias's revision now."""
    row = current(session, system, alias)
    if row is None:
        raise missing(session, system, alias)
    stack = promotion.holders(session, system, alias)
    if len(stack) < 2 or stack[-1] != row.version_id:
        raise CatalogError(
            f"alias {system}@{alias} has no earlier holder to roll back to",
            hint=f"its history holds no version before the current one; point it explicitly "
            f"with `regrow promote <version> --alias {alias}`",
        )
    return stack[-2], row.revision


def _ref_of(session: Session, version_id: str) -> str:
    version = lookup.version_by_id(session, version_id)
    return f"{version.system}:v{version.number}"


def missing(session: Session, system: str, alias: str) -> NotFound:
    """The error for an alias that does not exist."""
    return NotFound("alias", f"{system}@{alias}", hint=lookup.alias_hint(session, system))


def _revision_now(session: Session, system: str, alias: str) -> int:
    value = session.scalar(
        sa.select(Alias.revision).where(Alias.system == system, Alias.name == alias)
    )
    return value if value is not None else 0


def _conflict(system: str, alias: str, actual: int, expected: int) -> NoReturn:
    where = (
        f"alias {system}@{alias} does not exist yet (revision 0)"
        if actual == 0
        else f"alias {system}@{alias} is at revision {actual}"
    )
    raise AliasConflict(
        f"{where}, not the expected revision {expected}"
        + (": someone else moved it" if actual > expected else ""),
        hint=f"re-read it (`regrow aliases {system}`, or Workspace.catalog.get_alias) and "
        "retry the move if it still makes sense",
    )
