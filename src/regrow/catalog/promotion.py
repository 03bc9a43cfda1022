"""What moving a protected alias takes: a blessed evaluation and approvals, checked in the move.

:class:`PromotionRules` is the policy's ``promotion`` section as plain data (the catalog does not
read policies). :func:`missing` lists, inside the alias move's own transaction, everything a
promotion still lacks, so the holder the evaluation was judged against is the holder the move
replaces (the move's compare-and-set on the alias's revision guarantees it):

- a version already holding the alias cannot be promoted to it again (a no-op move);
- for a protected alias with a holder, the newest evaluation of the version against that holder
  on a snapshot the rules accept must be ``blessed``; the snapshot is accepted when the rules
  name it, or (when they name none) when the version did not train on it;
- approvals (:class:`Approvals`) by as many active identities with the approver role or above as
  the rules ask, never by the version's author (who recorded it: the actor of its
  ``version.create`` audit event).

:func:`holders` replays an alias's moves into the stack of holders a rollback walks back
through: a promotion pushes, a rollback pops, so rolling back twice goes back two holders and
never toggles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.models import (
    Alias,
    AliasMove,
    Approval,
    AuditEvent,
    ComponentVersion,
    Evaluation,
    Identity,
    Snapshot,
    SystemVersion,
)
from regrow.catalog.refs import check_name
from regrow.errors import CatalogError, ConfigError

__all__ = [
    "APPROVER_ROLES",
    "ApprovalRecord",
    "Approvals",
    "PromotionRules",
    "author",
    "holders",
    "missing",
]

#: Roles whose approvals count (see :mod:`regrow.auth`).
APPROVER_ROLES = ("approver", "admin")


@dataclass(frozen=True)
class PromotionRules:
    """The policy's ``promotion`` section (see :class:`regrow.plan.policy.PromotionPolicy`).

    >>> PromotionRules().protects("champion"), PromotionRules().protects("staging")
    (True, False)
    """

    protected: tuple[str, ...] = ("champion",)
    require_blessed: bool = True
    approvals: int = 1
    evaluation_snapshots: tuple[str, ...] = ()
    policy_id: str | None = None
    """The policy these rules come from: a blessed evaluation counts only when it ran that
    policy's gates (None: any policy's)."""
    gates: Mapping[str, Any] | None = field(default=None, compare=False)
    """That policy's ``gates`` section: an evaluation under another policy with the very same
    gates (one that differs in its planning or promotion sections) ran these gates too."""
    interface: str = "strict"
    """``strict``: the version must take and return what the alias's holder does (its
    serving signature, adapters' aliases included); ``allow``: any interface."""

    def protects(self, alias: str) -> bool:
        """Whether moving ``alias`` needs the evaluation and approvals."""
        return alias in self.protected

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (kept in audit events)."""
        return {
            "protected": list(self.protected),
            "require_blessed": self.require_blessed,
            "approvals": self.approvals,
            "evaluation_snapshots": list(self.evaluation_snapshots),
            "policy": self.policy_id,
            "interface": self.interface,
        }


@dataclass(frozen=True)
class ApprovalRecord:
    """One identity's approval of a version for an alias."""

    id: int
    system: str
    alias: str
    version_id: str
    approver: str
    holder_id: str | None  # the alias's holder when approved: it approves replacing that one
    note: str
    at: datetime


def author(session: Session, version: SystemVersion) -> str | None:
    """Who recorded ``version`` (the actor of its ``version.create`` event), if known."""
    return session.scalar(
        sa.select(AuditEvent.actor)
        .where(
            AuditEvent.subject == f"version:{version.system}:v{version.number}",
            AuditEvent.action == "version.create",
        )
        .order_by(AuditEvent.seq)
        .limit(1)
    )


def holders(session: Session, system: str, alias: str) -> list[str]:
    """The stack of versions ``system@alias`` has held, oldest first; the last holds it now.

    A promotion (or forced move) pushes its version, a rollback pops the current one; a move
    to the version already on top (possible before no-op moves were refused) pushes nothing.
    """
    stack: list[str] = []
    rows = session.execute(
        sa.select(AliasMove.kind, AliasMove.to_version_id)
        .where(AliasMove.system == system, AliasMove.alias == alias)
        .order_by(AliasMove.id)
    )
    for kind, to in rows:
        if kind == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != to:  # a history that does not replay: trust the move
                stack.append(to)
        elif not stack or stack[-1] != to:
            stack.append(to)
    return stack


def missing(
    session: Session,
    rules: PromotionRules,
    *,
    system: str,
    alias: str,
    version_id: str,
) -> list[str]:
    """Everything the promotion of ``version_id`` to ``system@alias`` lacks (empty: allowed)."""
    held = session.get(Alias, (system, alias), populate_existing=True)
    holder = held.version_id if held is not None else None
    version = lookup.version_by_id(session, version_id)
    ref = f"{system}:v{version.number}"
    if holder == version_id:
        return [f"{ref} already holds {system}@{alias}: the move would change nothing"]
    if not rules.protects(alias):
        return []
    lacks: list[str] = []
    if rules.interface == "strict" and holder is not None:
        lacks.extend(_interface_lacks(session, version, ref, holder))
    if (
        rules.require_blessed
        and holder is not None
        and not _same_components(session, version, holder)
    ):
        lacks.extend(_evaluation_lacks(session, rules, version, ref, holder))
    if rules.approvals:
        who = author(session, version)
        valid = [a for a in approvers(session, system, alias, version_id, holder) if a != who]
        if len(valid) < rules.approvals:
            task = (
                f"to replace {_ref(session, holder)}" if holder is not None else "to be its first"
            )
            lacks.append(
                f"{rules.approvals} approval(s) by an approver other than the version's author"
                f" ({who or 'unknown'}) {task}; it has {len(valid)}"
                + (f" ({', '.join(valid)})" if valid else "")
                + f": another identity with the approver role runs `regrow approve {ref} "
                f"--alias {alias}` (`regrow users add NAME --role approver` and `regrow tokens "
                "create NAME` make one; it approves with REGROW_TOKEN set to its token)"
            )
    return lacks


def _same_components(session: Session, version: SystemVersion, holder: str) -> bool:
    """Whether ``version`` holds exactly the holder's fitted components (a version made by
    adding adapters, :meth:`regrow.Workspace.adapt`): it predicts what the holder predicts on
    every row the holder can read, so no evaluation could bless or reject it."""
    return dict(version.manifest) == dict(lookup.version_by_id(session, holder).manifest)


def _interface_lacks(session: Session, version: SystemVersion, ref: str, holder: str) -> list[str]:
    """How ``version``'s serving signature breaks the holder's (empty: it does not)."""
    from regrow.serve.signature import differences

    holder_row = lookup.version_by_id(session, holder)
    old, new = _signature(session, holder_row), _signature(session, version)
    if old is None or new is None:
        return []  # a version without a training snapshot has no known inputs to compare
    found = differences(old, new)
    if not found:
        return []
    holder_ref = f"{holder_row.system}:v{holder_row.number}"
    return [
        f"an interface that clients of {holder_ref} can use ({'; '.join(found)}): bridge an "
        f"input change with an adapter (`regrow adapters propose`), or allow it with the "
        "policy's contracts.interface: allow"
    ]


def _signature(session: Session, version: SystemVersion) -> Any:
    from regrow.catalog.models import Schema
    from regrow.serve.signature import Signature

    if version.snapshot_id is None:
        return None
    snap = session.get(Snapshot, version.snapshot_id)
    if snap is None:
        return None
    schema = (
        session.scalars(
            sa.select(Schema.spec).where(Schema.name == snap.name, Schema.id == snap.schema_id)
        ).first()
        or session.scalars(sa.select(Schema.spec).where(Schema.id == snap.schema_id)).first()
    )
    if schema is None:
        return None
    infos = session.scalars(
        sa.select(ComponentVersion.info).where(
            ComponentVersion.id.in_(list(version.manifest.values())),
            ComponentVersion.kind == "member",
        )
    )
    classes: set[Any] = set()
    for info in infos:
        classes.update((info or {}).get("classes", []))
    spec = version.spec
    known = sorted(classes) if spec.get("task") == "classification" and classes else None
    try:
        return Signature.of(spec, schema, known)
    except CatalogError:
        raise
    except Exception:  # a graph its schema cannot describe: serving refuses it on its own
        return None


#: An evaluation blessed on fewer rows does not let a version through: the interval gates'
#: default ``min_rows`` (:data:`regrow.evaluate.gates.MIN_ROWS`; a test checks they agree),
#: for evaluations recorded before those gates were inconclusive on so few rows.
MIN_EVALUATED_ROWS = 30


def _evaluation_lacks(
    session: Session, rules: PromotionRules, version: SystemVersion, ref: str, holder: str
) -> list[str]:
    """Why no evaluation of ``version`` against ``holder`` lets it through (empty: one does)."""
    holder_row = lookup.version_by_id(session, holder)
    holder_ref = f"{holder_row.system}:v{holder_row.number}"
    trained = set(
        session.scalars(
            sa.select(ComponentVersion.snapshot_id).where(
                ComponentVersion.id.in_(list(version.manifest.values()))
            )
        )
    )
    trained.discard(None)
    rows = session.execute(
        sa.select(
            Evaluation.id,
            Evaluation.verdict,
            Evaluation.reasons,
            Snapshot.id,
            Snapshot.name,
            Evaluation.results,
        )
        .join(Snapshot, Snapshot.id == Evaluation.snapshot_id)
        .where(Evaluation.candidate_id == version.id, Evaluation.baseline_id == holder)
        .order_by(Evaluation.created_at.desc(), Evaluation.id)
    ).all()
    # without --policy an evaluation runs the workspace's policy: the one that counts
    evaluate = f"`regrow evaluate {ref} --baseline {holder_ref} --snapshot <labelled snapshot>`"
    if not rows:
        return [
            f"a blessed evaluation of {ref} against the holder {holder_ref}: none yet; {evaluate}"
        ]
    if rules.policy_id is not None:  # evaluated under the gates of the rules' own policy
        under = [r for r in rows if _under(r[5], rules.policy_id, rules.gates)]
        if not under:
            return [
                f"a blessed evaluation of {ref} against {holder_ref} under the workspace's policy "
                f"{rules.policy_id}: its {len(rows)} evaluation(s) ran other gates (another "
                f"policy, or gates given by the caller); {evaluate}"
            ]
        rows = under
    accepted = [
        r
        for r in rows
        if (
            r[4] in rules.evaluation_snapshots
            if rules.evaluation_snapshots
            else r[3] not in trained
        )
    ]
    if not accepted:
        which = (
            f"on one of the snapshots {list(rules.evaluation_snapshots)}"
            if rules.evaluation_snapshots
            else "on a snapshot it did not train on"
        )
        used = (
            "use other snapshots"
            if rules.evaluation_snapshots
            else "are on snapshots it trained on (its score there is in-sample)"
        )
        return [
            f"a blessed evaluation of {ref} against {holder_ref} {which}: its "
            f"{len(rows)} evaluation(s) {used}; {evaluate}"
        ]
    newest = accepted[0]
    counted = (newest[5] or {}).get("rows") if isinstance(newest[5], dict) else None
    if (
        newest[1] == "blessed"
        and isinstance(counted, int)
        and counted < MIN_EVALUATED_ROWS
        and not _sets_min_rows(newest[5])
    ):
        # blessed before evaluations on a handful of rows were inconclusive (regrow.evaluate.gates)
        return [
            f"a blessed evaluation of {ref} against {holder_ref}: the newest one "
            f"({newest[0][:12]}, snapshot {newest[4]!r}) was blessed on {counted} row(s), too "
            f"few to tell (at least {MIN_EVALUATED_ROWS}); {evaluate}"
        ]
    if newest[1] != "blessed":
        reasons = [str(r) for r in (newest[2] or [])]
        why = ""
        if reasons:
            first = reasons[0] if len(reasons[0]) <= 160 else reasons[0][:157] + "..."
            more = f", and {len(reasons) - 1} more reason(s)" if len(reasons) > 1 else ""
            why = f" ({first}{more})"
        return [
            f"a blessed evaluation of {ref} against {holder_ref}: the newest one "
            f"({newest[0][:12]}, snapshot {newest[4]!r}) is {newest[1]}{why}"
        ]
    return []


def _sets_min_rows(results: Any) -> bool:
    """Whether the gates of an evaluation's ``results`` set their own ``min_rows`` (a policy
    that chose to judge fewer rows than the default is taken at its word)."""
    settings = results.get("gate_settings") if isinstance(results, dict) else None
    return any(isinstance(s, dict) and "min_rows" in s for s in settings or ())


def _under(results: Any, policy_id: str, gates: Mapping[str, Any] | None = None) -> bool:
    """Whether an evaluation's ``results`` ran the gates of policy ``policy_id`` (or, given
    that policy's ``gates`` section, the same gates under another policy)."""
    if not isinstance(results, dict) or results.get("gate_source", "policy") != "policy":
        return False
    if results.get("policy") == policy_id:
        return True
    ran = results.get("gate_policy")
    return gates is not None and isinstance(ran, dict) and ran == audit.normalize(gates)


def _ref(session: Session, version_id: str) -> str:
    row = lookup.version_by_id(session, version_id)
    return f"{row.system}:v{row.number}"


def approvers(
    session: Session, system: str, alias: str, version_id: str, holder: str | None
) -> list[str]:
    """Active identities with an approving role that approved ``version_id`` for the alias
    while ``holder`` held it (an approval is for replacing that version: it does not carry
    over to a later promotion over another holder)."""
    return list(
        session.scalars(
            sa.select(Approval.approver)
            .join(Identity, Identity.name == Approval.approver)
            .where(
                Approval.system == system,
                Approval.alias == alias,
                Approval.version_id == version_id,
                Approval.holder_id.is_(None) if holder is None else Approval.holder_id == holder,
                Identity.revoked_at.is_(None),
                Identity.role.in_(APPROVER_ROLES),
            )
            .group_by(Approval.approver)  # each identity counts once
            .order_by(sa.func.min(Approval.id))
        )
    )


class Approvals:
    """Approvals of versions for aliases (``catalog.approvals``)."""

    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog

    def add(
        self,
        version_id: str,
        alias: str,
        *,
        actor: str | None = None,
        note: str = "",
    ) -> ApprovalRecord:
        """Record that ``actor`` approves ``version_id`` for ``alias`` (audited ``approval.add``).

        Refused, naming why, with an audit event for the attempt (``approval.refused``) and
        nothing else written: the actor is not an active identity with the approver role or
        above, is the version's author, or already approved it; or the version is unknown.
        """
        check_name("alias", alias)
        checks.text("note", note, max_length=10_000, empty=True)
        who = self._catalog._who(actor)

        def write(session: Session) -> ApprovalRecord:
            version = lookup.version_by_id(session, version_id)
            ref = f"{version.system}:v{version.number}"
            identity = session.get(Identity, who)
            if identity is None or identity.revoked_at is not None:
                state = "unknown" if identity is None else "revoked"
                raise ConfigError(
                    f"cannot approve {ref}: {who!r} is a {state} identity",
                    hint="approvals come from identities with the approver role: "
                    "`regrow users add NAME --role approver`",
                )
            if identity.role not in APPROVER_ROLES:
                raise ConfigError(
                    f"cannot approve {ref}: {who!r} has the role {identity.role!r}, and "
                    f"approving needs one of {list(APPROVER_ROLES)}",
                    hint=f"an admin can grant it: `regrow users role {who} approver`",
                )
            if author(session, version) == who:
                raise ConfigError(
                    f"cannot approve {ref}: {who!r} recorded it, and the author of a version "
                    "cannot approve it (four eyes)",
                    hint="ask another approver to run `regrow approve`",
                )
            held = session.get(Alias, (version.system, alias), populate_existing=True)
            holder = held.version_id if held is not None else None
            if holder == version.id:
                raise CatalogError(
                    f"{ref} already holds {version.system}@{alias}: there is nothing to approve",
                    hint="approve the version that should replace it",
                )
            row = Approval(
                system=version.system,
                alias=alias,
                version_id=version.id,
                approver=who,
                holder_id=holder,
                note=note,
                at=datetime.now(UTC),
            )
            if who in approvers(session, version.system, alias, version.id, holder):
                raise CatalogError(
                    f"{who!r} already approved {ref} for {version.system}@{alias} (to replace "
                    f"{_ref(session, holder) if holder else 'no version'})",
                    hint="one approval per identity counts; ask another approver",
                )
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="approval.add",
                subject=f"alias:{version.system}@{alias}",
                payload={
                    "version": version.id,
                    "version_ref": ref,
                    "holder": holder,
                    "note": note,
                },
                rows=[("approvals", row.id)],
            )
            return _record(row)

        try:
            record: ApprovalRecord = self._catalog._write(write)
        except (ConfigError, CatalogError) as refused:  # the attempt is audited; nothing else
            text = str(refused)
            self._catalog._write(
                lambda session: audit.append(
                    session,
                    actor=who,
                    action="approval.refused",
                    subject=f"alias:{alias}",
                    payload={"version": version_id, "alias": alias, "refused": text},
                )
            )
            raise
        return record

    def counting(self, version_id: str, alias: str) -> list[str]:
        """The identities whose approval of ``version_id`` for ``alias`` counts now: active,
        with an approving role, given to replace the alias's current holder."""
        with self._catalog._read() as session:
            version = lookup.version_by_id(session, version_id)
            held = session.get(Alias, (version.system, alias))
            holder = held.version_id if held is not None else None
            return approvers(session, version.system, alias, version.id, holder)

    def list(
        self, system: str | None = None, *, alias: str | None = None, version_id: str | None = None
    ) -> list[ApprovalRecord]:
        """Approvals (of ``system``, ``alias``, ``version_id`` when given), oldest first."""
        query = sa.select(Approval).order_by(Approval.id)
        if system is not None:
            query = query.where(Approval.system == system)
        if alias is not None:
            query = query.where(Approval.alias == alias)
        if version_id is not None:
            query = query.where(Approval.version_id == version_id)
        with self._catalog._read() as session:
            return [_record(row) for row in session.scalars(query)]


def _record(row: Approval) -> ApprovalRecord:
    return ApprovalRecord(
        id=row.id,
        system=row.system,
        alias=row.alias,
        version_id=row.version_id,
        approver=row.approver,
        holder_id=row.holder_id,
        note=row.note,
        at=row.at,
    )
