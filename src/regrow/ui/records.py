"""What the governance, lineage and audit pages show.

Governance is ``regrow approvals`` and the stored evaluations (each with its gate table, as
``regrow evaluate`` prints it), plus what a promotion of each version not yet on its
system's champion would lack (``Workspace.promotion_lacks``: the approvals still pending).
Lineage is ``regrow lineage`` (:meth:`~regrow.Workspace.lineage`). Audit is ``regrow audit
--verify``: the latest events, filtered, and the hash chain's verification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from regrow._hashing import jsonable

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["audit", "governance", "lineage", "verification"]


def governance(ws: Workspace, alias: str = "champion") -> dict[str, Any]:
    """Evaluations with their gates, approvals given, and what promoting each newer version
    to ``alias`` would still lack."""
    catalog = ws.catalog
    versions = catalog.list_system_versions()
    refs = {v.id: v.ref for v in versions}
    held = {(a.system, a.name): a.version_id for a in catalog.list_aliases()}
    evaluations = [
        {"id": e.id, "candidate": refs.get(e.candidate_id),
         "baseline": refs.get(e.baseline_id or ""),
         "snapshot": e.snapshot_id, "metric": e.metric, "verdict": e.verdict,
         "reasons": list(e.reasons), "created_at": e.created_at,
         "candidate_value": (e.results or {}).get("candidate"),
         "baseline_value": (e.results or {}).get("baseline"),
         "delta": (e.results or {}).get("delta"), "delta_ci": (e.results or {}).get("delta_ci"),
         "gates": [
             {"name": g.get("name"), "status": g.get("status"), "measure": g.get("measure"),
              "value": g.get("value"), "interval": g.get("interval"),
              "threshold": g.get("threshold"), "why": g.get("why")}
             for g in (e.results or {}).get("gates") or ()
         ]}
        for e in catalog.list_evaluations()
    ]  # fmt: skip
    approvals = [
        {"version": refs.get(r.version_id, r.version_id[:12]), "system": r.system,
         "alias": r.alias, "approver": r.approver, "at": r.at, "note": r.note}
        for r in catalog.approvals.list()
    ]  # fmt: skip
    pending = []
    for v in versions:
        current = held.get((v.system, alias))
        newest_held = max((w.number for w in versions if w.id == current), default=0)
        if v.id == current or v.number < newest_held:
            continue
        pending.append(
            {"version": v.ref, "alias": alias, "lacks": ws.promotion_lacks(v.ref, alias)}
        )
    return jsonable(  # type: ignore[no-any-return]
        {"evaluations": evaluations, "approvals": approvals, "pending": pending}
    )


def lineage(ws: Workspace, ref: str) -> dict[str, Any]:
    """Where version ``ref`` came from (``regrow lineage --json``), plus its evaluations and
    the approvals it got."""
    catalog = ws.catalog
    report = ws.lineage(ref)
    version = catalog.get_system_version(ref)
    refs = {v.id: v.ref for v in catalog.list_system_versions(version.system)}
    evaluations = [
        {"id": e.id, "baseline": refs.get(e.baseline_id or ""), "metric": e.metric,
         "verdict": e.verdict, "reasons": list(e.reasons), "created_at": e.created_at}
        for e in catalog.list_evaluations(version.id)
    ]  # fmt: skip
    approvals = [
        {"alias": r.alias, "approver": r.approver, "at": r.at, "note": r.note}
        for r in catalog.approvals.list(version_id=version.id)
    ]  # fmt: skip
    return jsonable(  # type: ignore[no-any-return]
        {**report, "system": version.system, "versions": list(refs.values()),
         "evaluations": evaluations, "approvals": approvals}
    )  # fmt: skip


def verification(ws: Workspace) -> dict[str, Any]:
    """Whether the audit log's hash chain, and every record it covers, verifies (``regrow
    audit --verify``): ``{"ok": true, "events": n}`` or ``{"ok": false, "broken": ...,
    "hint": ...}``."""
    from regrow.errors import AuditChainBroken

    try:
        return {"ok": True, "events": ws.catalog.verify_audit()}
    except AuditChainBroken as exc:
        return {"ok": False, "broken": exc.message, "hint": exc.hint}


def audit(
    ws: Workspace,
    *,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    limit: int = 200,
    verified: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The latest ``limit`` audit events (newest first) whose action starts with ``action``,
    by ``actor``, about a subject starting with ``subject``; and whether the whole chain
    verifies (:func:`verification`, or ``verified()`` when given: the dashboard's, which
    remembers the answer for a few seconds)."""
    from regrow.errors import ConfigError

    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise ConfigError(
            f"the audit limit must be an int in [1, 10000]; got {limit!r}",
            hint="the dashboard lists the newest 200 by default",
        )
    catalog = ws.catalog
    filtered = bool(action or actor or subject)
    wanted = [
        e for e in catalog.audit_events(limit=10_000 if filtered else limit)
        if (not action or e.action.startswith(action)) and (not actor or e.actor == actor)
        and (not subject or e.subject.startswith(subject))
    ][:limit]  # fmt: skip
    return jsonable(  # type: ignore[no-any-return]
        {"verified": verified() if verified is not None else verification(ws),
         "filters": {"action": action, "actor": actor, "subject": subject},
         "events": [{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                     "subject": e.subject, "payload": e.payload} for e in wanted]}
    )  # fmt: skip
