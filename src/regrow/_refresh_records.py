"""The records an ensemble refresh keeps in the catalog (see :mod:`regrow.refreshing`).

=================== =======================================================================
``member_rows``     a row per member: its loss, its weight before and after, its events
``current_state``   the version's ensemble as a refresh state, with the stored ages, streaks
``stored_state``    the state the newest executed refresh plan that resulted in a version
                    (or its nearest ancestor) stored, not counting the same window twice
``store_plan``      the refresh plan (body ``"kind": "refresh"``) and its experiment
``audit_refresh``   one ``ensemble.<event>`` per membership change, then ``ensemble.weights``
=================== =======================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from regrow.components.base import Ensemble
from regrow.errors import NotFound
from regrow.experiments import record_plan
from regrow.plan.plan import Plan
from regrow.rollout.refresh import EnsembleState, Entrant, Refreshed, RefreshPolicy
from regrow.rollout.refresh import Member as Weighted

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord

__all__ = [
    "MemberRow",
    "audit_refresh",
    "current_state",
    "member_rows",
    "state_dict",
    "store_plan",
    "stored_state",
]

#: How many ancestors, and how many of the system's newest plans, the state is searched in.
_DEPTH = 100
_PLANS = 1000


@dataclass(frozen=True)
class MemberRow:
    """One member in a refresh: its loss on the window (None: not scored), its weight before
    and after, and what happened to it."""

    member: str
    loss: float | None
    before: float
    after: float
    events: tuple[str, ...] = ()


def member_rows(
    ens: Ensemble,
    before: EnsembleState,
    out: Refreshed,
    losses: Mapping[str, float],
    newcomer: Entrant | None,
) -> tuple[MemberRow, ...]:
    """A row per member of the version's ensemble, and one for the newcomer."""
    scored = dict(losses)
    names = list(ens.members)
    if newcomer is not None:
        scored[newcomer.name] = newcomer.loss
        names.append(newcomer.name)
    was, now = before.weights(), out.state.weights()
    kept = set(now) | set(out.state.pool)
    rows = []
    for n in names:
        events: tuple[str, ...] = tuple(e.kind for e in out.events if e.member == n)
        if n in ens.members and n not in kept:
            events += ("removed",)
        rows.append(MemberRow(n, scored.get(n), was.get(n, 0.0), now.get(n, 0.0), events))
    return tuple(rows)


def current_state(
    ens: Ensemble, stored: Mapping[str, Any] | None, rules: RefreshPolicy
) -> EnsembleState:
    """The refresh state of ``ens`` as the version holds it, with the ages, streaks and pool
    order of the ``stored`` state where it knows the members.

    A member with a weight is a member (weights renormalised); one at weight 0 is in the
    pool. A member the stored state does not know is established (past probation).

    >>> ens = Ensemble("e", weights={"a": 3.0, "b": 1.0, "c": 0.0})
    >>> current_state(ens, None, RefreshPolicy())
    EnsembleState(members=(Member(name='a', weight=0.75, age=1, low=0), \
Member(name='b', weight=0.25, age=1, low=0)), pool=('c',))
    """
    known = {str(m["name"]): m for m in (stored or {}).get("members", [])}
    live = [m for m in ens.members if ens.weights[m] > 0]
    total = sum(ens.weights[m] for m in live)
    members = tuple(
        Weighted(
            m,
            ens.weights[m] / total,
            age=int(known[m]["age"]) if m in known else rules.probation,
            low=int(known[m]["low"]) if m in known else 0,
        )
        for m in live
    )
    zero = [m for m in ens.members if ens.weights[m] == 0]
    pooled = [str(p) for p in (stored or {}).get("pool", []) if p in zero]
    return EnsembleState(members, tuple(pooled + [m for m in zero if m not in pooled]))


def state_dict(state: EnsembleState) -> dict[str, Any]:
    return {"members": [asdict(m) for m in state.members], "pool": list(state.pool)}


def stored_state(
    catalog: Catalog, version: SystemVersionRecord, window_id: str
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The state stored by the newest executed refresh plan that resulted in ``version`` (or
    in its nearest ancestor that one resulted in), and that version's reference.

    A refresh whose weights did not move makes no new version: its run resulted in the
    version it started from, so its state (ages, streaks) is still found. A refresh of this
    version on this window (snapshot ``window_id``) is the refresh being made again, so its
    state is not: a window counts once, and the same refresh made again is the same plan.
    """
    found: dict[str, Mapping[str, Any]] = {}
    for p in catalog.list_plans(version.system, limit=_PLANS):  # newest first
        refresh = (p.body.get("signals") or {}).get("refresh")
        again = p.version_id == version.id and p.window_id == window_id
        if p.status == "executed" and p.result_version_id and refresh and not again:
            found.setdefault(p.result_version_id, refresh["state"])
    current: SystemVersionRecord | None = version
    for _ in range(_DEPTH):
        if current is None or current.id in found:
            break
        parent = current.parent_id
        current = catalog.get_system_version(parent) if parent else None
    if current is None or current.id not in found:
        return None, None
    return found[current.id], current.ref


def store_plan(catalog: Catalog, plan: Plan) -> bool:
    """Store the plan (kind ``refresh``) and its experiment; False when it was stored before."""
    try:
        catalog.get_plan(plan.id)
        return False
    except NotFound:
        pass
    catalog.add_plan(id=plan.id, system=plan.system, version_id=plan.version_id,
                     window_id=plan.window,
                     body={**plan.to_dict(), "summary": plan.summary(),
                           "kind": "refresh"})  # fmt: skip
    record_plan(catalog, plan)
    return True


def audit_refresh(
    catalog: Catalog, plan: Plan, record: Mapping[str, Any], rows: tuple[MemberRow, ...]
) -> None:
    """One ``ensemble.<event>`` per membership event, then ``ensemble.weights``."""
    subject = f"ensemble:{plan.system}"
    base = {"plan": plan.id, "version": plan.version, "window": plan.window,
            "ensemble": record["ensemble"], "loss": record["loss"]}  # fmt: skip
    by_name = {r.member: r for r in rows}
    for ev in record["events"]:
        row = by_name.get(ev["member"])
        catalog.audit(f"ensemble.{ev['kind']}", subject, {
            **base, "member": ev["member"], "reason": ev["reason"],
            "member_loss": row.loss if row else None,
            "weight_before": row.before if row else None,
            "weight_after": row.after if row else None,
        })  # fmt: skip
    for row in rows:
        if "removed" in row.events:
            catalog.audit("ensemble.removed", subject, {**base, "member": row.member,
                          "reason": "out of the pool (policy ensemble.pool_size)"})  # fmt: skip
    catalog.audit("ensemble.weights", subject, {
        **base, "losses": record["losses"], "before": record["before"],
        "after": record["after"], "ensemble_loss": record["ensemble_loss"],
        "state": record["state"],
    })  # fmt: skip
