"""Resolving user references to snapshots and system versions, with helpful errors.

Every failed lookup raises a :class:`~regrow.errors.NotFound` (or
:class:`~regrow.errors.VersionNotFound`) that names the reference and hints at what exists:
the newest versions of the system, its aliases, the snapshots with a similar name, or the
candidates an ambiguous id prefix matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog.models import Alias, Component, Snapshot, SystemVersion
from regrow.catalog.refs import MIN_PREFIX, is_hex, is_id_prefix, parse_version_ref
from regrow.errors import ConfigError, NotFound, VersionNotFound

__all__ = [
    "alias_hint",
    "by_id",
    "known_systems",
    "snapshot",
    "system_hint",
    "system_version",
    "version_by_id",
]

_SHOWN = 5
_Row = TypeVar("_Row")


def by_id(
    session: Session,
    model: type[_Row],
    what: str,
    ref: Any,
    *,
    listed: str,
    describe: Callable[[Any], str] = lambda row: row.id[:12],
) -> _Row:
    """The row of ``model`` (a table keyed by ``id``) whose id is ``ref`` or starts with it
    (at least :data:`MIN_PREFIX` characters). :class:`~regrow.errors.NotFound` names ``what``
    and hints where the ids are ``listed`` (a command), or lists an ambiguous prefix's matches
    (each by ``describe``)."""
    if not isinstance(ref, str) or not ref:
        raise NotFound(what, repr(ref), hint=f"pass a {what} id or id prefix")
    row = session.get(model, ref)
    if row is not None:
        return row
    if len(ref) >= MIN_PREFIX:
        column = model.id  # type: ignore[attr-defined]
        query = sa.select(model).where(column.startswith(ref, autoescape=True))
        rows = list(session.scalars(query.order_by(column).limit(_SHOWN + 1)))
        if len(rows) == 1:
            return rows[0]
        if rows:
            more = " and more" if len(rows) > _SHOWN else ""
            matches = ", ".join(describe(r) for r in rows[:_SHOWN])
            raise NotFound(
                what, ref, hint=f"the prefix is ambiguous, it matches {matches}{more}; give "
                "more characters",
            )  # fmt: skip
    raise NotFound(
        what, ref, hint=f"give an id or a prefix of at least {MIN_PREFIX} characters; list them "
        f"with {listed}",
    )  # fmt: skip


def snapshot(session: Session, ref: str) -> Snapshot:
    """The snapshot ``ref`` names: its id, a unique id prefix (>= 6 hex), or its name (newest)."""
    if not isinstance(ref, str) or not ref:
        raise NotFound("snapshot", repr(ref), hint="pass a snapshot id, id prefix or name")
    row = session.get(Snapshot, ref)
    if row is not None:
        return row
    row = session.scalars(
        sa.select(Snapshot)
        .where(Snapshot.name == ref)
        .order_by(Snapshot.created_at.desc(), Snapshot.id)
        .limit(1)
    ).first()
    if row is not None:
        return row
    if is_id_prefix(ref):
        rows = session.scalars(
            sa.select(Snapshot).where(Snapshot.id.startswith(ref)).order_by(Snapshot.id).limit(6)
        ).all()
        if len(rows) == 1:
            return rows[0]
        if rows:
            listed = ", ".join(f"{r.id[:12]} ({r.name})" for r in rows[:_SHOWN])
            raise NotFound(
                "snapshot",
                ref,
                hint=f"the prefix is ambiguous, it matches {listed}"
                f"{' and more' if len(rows) > _SHOWN else ''}; give more characters of the id",
            )
    names = session.scalars(sa.select(Snapshot.name).distinct()).all()
    raise NotFound("snapshot", ref, hint=_snapshot_hint(ref, names))


def system_version(session: Session, ref: str) -> SystemVersion:
    """The system version ``ref`` names (forms: :mod:`regrow.catalog.refs`)."""
    try:
        parsed = parse_version_ref(ref)
    except ConfigError as exc:
        raise VersionNotFound(str(ref), hint=exc.hint) from None
    if parsed.kind == "number":
        assert parsed.system is not None
        row = session.scalars(
            sa.select(SystemVersion).where(
                SystemVersion.system == parsed.system, SystemVersion.number == parsed.number
            )
        ).first()
        if row is None:
            raise VersionNotFound(parsed.text, hint=system_hint(session, parsed.system))
        return row
    if parsed.kind == "alias":
        assert parsed.system is not None
        alias = session.get(Alias, (parsed.system, parsed.alias))
        if alias is None:
            raise VersionNotFound(parsed.text, hint=alias_hint(session, parsed.system))
        return version_by_id(session, alias.version_id)
    row = session.get(SystemVersion, parsed.text)
    if row is not None:
        return row
    row = session.scalars(
        sa.select(SystemVersion)
        .where(SystemVersion.system == parsed.text)
        .order_by(SystemVersion.number.desc())
        .limit(1)
    ).first()
    if row is not None:
        return row
    if is_id_prefix(parsed.text):
        rows = session.scalars(
            sa.select(SystemVersion)
            .where(SystemVersion.id.startswith(parsed.text))
            .order_by(SystemVersion.id)
            .limit(_SHOWN + 1)
        ).all()
        if len(rows) == 1:
            return rows[0]
        if rows:
            listed = ", ".join(f"{r.system}:v{r.number} ({r.id[:12]})" for r in rows[:_SHOWN])
            raise VersionNotFound(
                parsed.text,
                hint=f"the prefix is ambiguous, it matches {listed}; give more characters",
            )
    raise VersionNotFound(parsed.text, hint=system_hint(session, parsed.text))


def version_by_id(session: Session, version_id: str) -> SystemVersion:
    """The system version with exactly this id."""
    row = session.get(SystemVersion, version_id) if isinstance(version_id, str) else None
    if row is None:
        raise VersionNotFound(
            str(version_id),
            hint="pass a system version id (SystemVersionRecord.id); resolve references such "
            "as 'churn:v3' with get_system_version()",
        )
    return row


def known_systems(session: Session) -> list[str]:
    """Every system with a version or a component, sorted."""
    query = sa.union(sa.select(SystemVersion.system), sa.select(Component.system))
    return sorted(set(session.scalars(query).all()))


def system_hint(session: Session, system: str) -> str:
    """What exists instead of the version of ``system`` asked for: its newest versions, else
    why it has none, else the systems with a close name (or all of them)."""
    newest = session.scalars(
        sa.select(SystemVersion.number)
        .where(SystemVersion.system == system)
        .order_by(SystemVersion.number.desc())
        .limit(_SHOWN)
    ).all()
    if newest:
        listed = ", ".join(f"{system}:v{n}" for n in newest)
        return f"the newest versions of {system!r} are {listed}"
    systems = known_systems(session)
    if system in systems:  # components fitted, no version yet (a first train that failed)
        return (
            f"{system!r} has no version yet (its first training did not finish): train it "
            f"with `regrow train FILE.py:{system} --snapshot S`"
        )
    if not systems:
        return "the catalog holds no system versions yet"
    close = difflib.get_close_matches(system, systems, n=3)
    if close:
        return f"no system is named {system!r}; did you mean {_quoted(close)}?"
    shown = _quoted(systems[:10]) + (" ..." if len(systems) > 10 else "")
    short_id = len(system) < MIN_PREFIX and is_hex(system)
    return f"no system is named {system!r} (known systems: {shown})" + (
        f"; an id prefix needs at least {MIN_PREFIX} hex characters" if short_id else ""
    )


def alias_hint(session: Session, system: str) -> str:
    """What exists instead of an alias of ``system`` asked for: its aliases, else that it has
    none yet, else what :func:`system_hint` says of the system."""
    names = session.scalars(
        sa.select(Alias.name).where(Alias.system == system).order_by(Alias.name)
    ).all()
    if names:
        return f"the aliases of {system!r} are {_quoted(names)}"
    if session.scalars(sa.select(SystemVersion.id).where(SystemVersion.system == system)).first():
        return (
            f"{system!r} has no aliases yet; point one at a version with `regrow promote "
            "VERSION --alias ALIAS`"
        )
    return system_hint(session, system)


def _snapshot_hint(ref: str, names: Sequence[str]) -> str:
    from regrow.data.frames import FILE_SUFFIXES  # on this error path only: it imports pyarrow

    if ref.lower().endswith(FILE_SUFFIXES):  # a file `regrow snapshot create` reads, not a name
        stem = ref.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "NAME"
        return (
            f"this command reads a stored snapshot, not a file: store it first with `regrow "
            f"snapshot create {ref} --name {stem}`, then pass the name {stem!r}"
        )
    if not names:
        return "the catalog holds no snapshots yet"
    close = difflib.get_close_matches(ref, list(names), n=3)
    if close:
        return f"did you mean {_quoted(close)}?"
    shown = _quoted(sorted(names)[:10]) + (" ..." if len(names) > 10 else "")
    return f"pass a snapshot id (>= {MIN_PREFIX} hex characters of it) or a name: {shown}"


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)
