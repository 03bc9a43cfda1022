"""What the rollouts pages show, and the moves their buttons make.

Reads go through :mod:`regrow.rollout.machine` as ``regrow rollout status|history`` do; the
moves (pause, resume, promote, abort) call the same functions as ``regrow rollout pause`` and
the others, on a workspace opened as the caller's token: the machine checks the role (operator)
exactly as it does for the command, audits a refusal, and raises
:class:`~regrow.errors.PermissionDenied` for a role too low.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from regrow._hashing import jsonable
from regrow.errors import ConfigError
from regrow.rollout.validate import served_share
from regrow.ui.systems import require_system

if TYPE_CHECKING:
    from regrow.catalog.records import AuditEventRecord
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.workspace import Workspace

__all__ = ["ACTIONS", "act", "rollout", "rollouts"]

#: The moves the dashboard's buttons make (``regrow rollout <move>``).
ACTIONS = ("pause", "resume", "promote", "abort")


def _refs(ws: Workspace, system: str) -> dict[str, str]:
    return {v.id: v.ref for v in ws.catalog.list_system_versions(system)}


def summary(ws: Workspace, r: RolloutRecord) -> dict[str, Any]:
    """A rollout as ``regrow rollout status --json`` lists it (versions by reference; a
    promoted candidate's share is all the traffic, see
    :func:`~regrow.rollout.validate.served_share`)."""
    ref = _refs(ws, r.system)
    return {
        "id": r.id,
        "system": r.system,
        "alias": r.alias,
        "mode": r.mode,
        "state": r.state,
        "active": r.active,
        "step": r.step + 1,
        "steps": list(r.steps),
        "share": served_share(r.state, r.share),
        "stable": ref.get(r.stable_id, r.stable_id[:12]),
        "candidate": ref.get(r.candidate_id, r.candidate_id[:12]),
        "reason": r.reason,
        "evidence": r.evidence,
        "revision": r.revision,
        "created_at": r.created_at,
        "lanes": [
            {
                "lane": x.name,
                "version": ref.get(x.version_id, x.version_id[:12]),
                "dropped": x.dropped,
                "share": x.share,
            }
            for x in r.lanes
        ],
    }


def rollouts(ws: Workspace, system: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Rollouts, newest first: those under way and those finished (of ``system``, which
    must exist)."""
    require_system(ws, system)
    records = ws.catalog.rollouts.list(system=system, limit=limit)
    return jsonable({"rollouts": [summary(ws, r) for r in records]})  # type: ignore[no-any-return]


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _steps(events: list[AuditEventRecord]) -> list[dict[str, Any]]:
    """Every transition with its share and evidence (difference of mean loss, candidate minus
    stable, with its confidence sequence's interval; no difference while a lane has no
    labelled request: ``n 0/0`` has none to show)."""
    out = []
    for n, e in enumerate(events, 1):
        p = e.payload
        ev = p.get("evidence") or {}
        verdicts = ev.get("verdicts") or {}
        measured = bool(ev.get("n_candidate")) and bool(ev.get("n_stable"))
        out.append(
            {"n": n, "at": e.at, "actor": e.actor, "action": e.action.removeprefix("rollout."),
             "from": p.get("from"), "state": p.get("state"), "step": (p.get("step") or 0) + 1,
             "share": served_share(p.get("state"), p.get("share")), "reason": p.get("reason"),
             "decision": ev.get("decision"),
             "difference": _finite(ev.get("difference")) if measured else None,
             "low": _finite(ev.get("lower")), "high": _finite(ev.get("upper")),
             "n_candidate": ev.get("n_candidate"), "n_stable": ev.get("n_stable"),
             "candidate_loss": _finite(ev.get("candidate_loss")),
             "stable_loss": _finite(ev.get("stable_loss")),
             "lanes": {lane: {"decision": v.get("decision"),
                              "difference": _finite(v.get("difference")),
                              "low": _finite(v.get("lower")), "high": _finite(v.get("upper"))}
                       for lane, v in verdicts.items()}}
        )  # fmt: skip
    return out


def states(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The state machine's history: runs of holds in a row as one line (``37 holds``), as
    ``regrow rollout history`` prints it. A run of holds reads from its first hold's time
    and state to its last's, with the last hold's reason and the evidence of that reason.

    >>> hold = {"action": "hold", "actor": "watch"}
    >>> rows = states([{**hold, "n": 1, "at": "10:00", "from": "a", "n_candidate": 0},
    ...                {**hold, "n": 2, "at": "10:05", "from": "b", "n_candidate": 64}])
    >>> [(r["action"], r["count"], r["at"], r["until"], r["from"], r["n_candidate"]) for r in rows]
    [('holds', 2, '10:00', '10:05', 'a', 64)]
    """
    out: list[dict[str, Any]] = []
    for s in steps:
        if s["action"] == "hold" and out and out[-1]["action"] in ("hold", "holds"):
            first = out[-1]
            actors = ", ".join(dict.fromkeys([*first["actor"].split(", "), s["actor"]]))
            out[-1] = {**s, "action": "holds", "count": first["count"] + 1, "n": first["n"],
                       "at": first["at"], "until": s["at"], "from": first["from"],
                       "actor": actors}  # fmt: skip
        else:
            out.append({**s, "count": 1, "until": None})
    return out


def rollout(ws: Workspace, ref: str) -> dict[str, Any]:
    """One rollout: where it stands, every transition with its share and evidence, and the
    state history (holds in a row as one line)."""
    from regrow.rollout import machine

    record = machine.status(ws, ref)[0]
    steps = _steps(machine.history(ws, record.id))
    return jsonable(  # type: ignore[no-any-return]
        {**summary(ws, record), "history": steps, "states": states(steps),
         "actions": list(ACTIONS) if record.active else []}
    )  # fmt: skip


def act(ws: Workspace, ref: str, action: str, *, reason: str = "") -> dict[str, Any]:
    """Make move ``action`` (pause, resume, promote, abort) on rollout ``ref`` as the identity
    of ``ws``, through :mod:`regrow.rollout.machine` (which checks the operator role)."""
    from regrow.rollout import machine

    moves = {"pause": machine.pause, "resume": machine.resume, "promote": machine.promote,
             "abort": machine.abort}  # fmt: skip
    move = moves.get(action)
    if move is None:
        raise ConfigError(
            f"unknown rollout action {action!r}", hint=f"use one of {', '.join(ACTIONS)}"
        )
    record = move(ws, ref, reason=reason or f"dashboard: {action}")
    return jsonable(summary(ws, record))  # type: ignore[no-any-return]
