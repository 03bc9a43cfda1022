"""What the plans and runs pages show: each plan's actions with their reasons, expected gain
and cost next to what the run used and the evaluation measured, and a run's progress.

The plan is the stored one (``regrow plans show``: its estimate at the workspace's prices and
budgets, its outcome once run); expected vs actual gain is its experiment record (``regrow
experiments show``); a run's components are the catalog's component versions it fitted, so a
page that polls :func:`run` while a run is under way sees them arrive one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from regrow._hashing import jsonable
from regrow.ui.systems import require_system

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["plan", "plans", "run"]


def plans(ws: Workspace, system: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Stored plans, newest first (``regrow plans list``), and the latest runs (of
    ``system``, which must exist)."""
    require_system(ws, system)
    catalog = ws.catalog
    records = catalog.list_plans(system, limit=limit)
    refs = {v.id: v.ref for v in catalog.list_system_versions(system)}
    runs = catalog.list_runs(system, limit=limit)
    return jsonable(  # type: ignore[no-any-return]
        {
            "plans": [
                {
                    "id": r.id,
                    "system": r.system,
                    "kind": r.body.get("kind", "plan"),
                    "version": refs.get(r.version_id),
                    "status": r.status,
                    "window": r.window_id,
                    "actions": list((r.body.get("summary") or {}).get("actions") or []),
                    "result": refs.get(r.result_version_id or ""),
                    "run": r.run_id,
                    "created_at": r.created_at,
                }
                for r in records
            ],
            "runs": [_run_row(r, refs) for r in runs],
        }
    )


def _run_row(r: Any, refs: dict[str, str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "system": r.system,
        "kind": r.kind,
        "status": r.state(),
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "version": refs.get(r.version_id or ""),
        "seconds": (r.summary or {}).get("seconds"),
        "cpu_seconds": (r.summary or {}).get("cpu_seconds"),
        "error": r.error,
    }


def plan(ws: Workspace, plan_id: str) -> dict[str, Any]:
    """One stored plan: signals, actions with reasons and expected gain and cost, rationale,
    contingency, the estimate and budgets (``regrow plans show``), its outcome, and expected vs
    actual (its experiment: the evaluation of what it produced)."""
    from regrow.plan.plan import Plan
    from regrow.run.budget import RunBudget, estimate_plan

    catalog = ws.catalog
    record = catalog.get_plan(plan_id)
    stored = Plan.from_dict(record.body)
    where = ws.config.backend
    estimate = estimate_plan(catalog, stored, ws.config.costs, where)
    budget = RunBudget.of(ws.policy().budgets, ws.config.costs, where)
    refs = {v.id: v.ref for v in catalog.list_system_versions(record.system)}
    experiment = next(iter(catalog.experiments.list(subject_id=record.id)), None)
    actual_cpu = (record.outcome or {}).get("per_component_cpu_seconds") or {}
    actions = [
        {"n": n, "kind": a.kind, "component": a.component, "recipe": a.recipe,
         "params": a.params(), "reason": a.reason, "approval": a.approval,
         "gain": None if a.gain is None else
         {"value": a.gain.value, "low": a.gain.low, "high": a.gain.high},
         "estimated_cpu_seconds": a.cost.cpu_seconds if a.cost else None,
         "cost_basis": a.cost.basis if a.cost else None,
         "actual_cpu_seconds": actual_cpu.get(a.component)}
        for n, a in enumerate(stored.actions, 1)
    ]  # fmt: skip
    return jsonable(  # type: ignore[no-any-return]
        {
            "id": record.id,
            "system": record.system,
            "version": refs.get(record.version_id),
            "window": record.window_id,
            "status": record.status,
            "created_at": record.created_at,
            "escalated": stored.escalated,
            "empty": stored.empty,
            "needs_approval": stored.needs_approval,
            "signals": stored.signals,
            "actions": actions,
            "rationale": list(stored.rationale),
            "expected": stored.expected,
            "cost": stored.cost,
            "contingency": stored.contingency,
            "estimate": {
                "cpu_seconds": estimate.cpu_seconds,
                "gpu_seconds": estimate.gpu_seconds,
                "cost": estimate.money,
                "currency": estimate.currency or None,
                "notes": list(budget.notes_on(estimate)),
            },
            "over_budget": [str(c) for c in budget.crossed(estimate)],
            "outcome": record.outcome,
            "run": record.run_id,
            "result": refs.get(record.result_version_id or ""),
            "experiment": None
            if experiment is None
            else {
                "id": experiment.id,
                "expected": experiment.expected,
                "actual": experiment.actual,
                "tags": list(experiment.tags),
            },
        }
    )


def run(ws: Workspace, run_id: str) -> dict[str, Any]:
    """One run and its progress: its state (a run whose lease lapsed is ``abandoned``), the
    components it has fitted so far, what it reused, and its usage once finished."""
    catalog = ws.catalog
    record = catalog.get_run(run_id)  # an id or a unique prefix, as plans take
    refs = {v.id: v.ref for v in catalog.list_system_versions(record.system)}
    summary = record.summary or {}
    fitted = [
        {"component": c.component, "kind": c.kind, "version_id": c.id,
         "seconds": c.train_seconds, "at": c.created_at}
        for c in _fitted_by(ws, record.system, record.id)
    ]  # fmt: skip
    planned = [str(a) for a in (record.params or {}).get("actions") or ()]
    return jsonable(  # type: ignore[no-any-return]
        {
            **_run_row(record, refs),
            "params": record.params,
            "seed": record.seed,
            "heartbeat_at": record.heartbeat_at,
            "holder": record.holder,
            "fitted": fitted,
            "reused": list(summary.get("reused") or []),
            "causes": summary.get("causes") or {},
            "planned": planned,
            "done": record.state() != "running",
        }
    )


def _fitted_by(ws: Workspace, system: str, run_id: str) -> list[Any]:
    """The component versions run ``run_id`` fitted, oldest first (every component's history
    of ``system``, filtered: a small system has few)."""
    catalog = ws.catalog
    names: set[str] = set()
    for v in catalog.list_system_versions(system):
        names.update(v.manifest)
    found = [
        c for name in sorted(names) for c in catalog.component_history(system, name)
        if c.run_id == run_id
    ]  # fmt: skip
    return sorted(found, key=lambda c: c.created_at)
