"""Plan an update of a version from what a window shows, and run the plan.

:func:`make_plan` (``Workspace.plan``, ``regrow plan``) joins the monitor's signals, the
diagnostics and the policy:

1. the **monitor** checks the version on the window: drifted features, and which members the
   drift costs loss (:mod:`regrow.monitoring`);
2. **escalation rules** first: broad feature drift, or a large estimated loss increase, makes
   the plan a full retrain, and the plan says which rule fired;
3. with labels, the **diagnostics** probe each member (:mod:`regrow.plan.diagnostics`) and keep
   the smallest set of updates with a significant gain; many members needing an update
   escalates too; drift that costs loss with no update winning it back escalates (policy);
4. each action gets a **cost** from the model learned on the catalog's history, the plan its
   expected loss after the update, a **contingency** (what happens when the candidate fails its
   gates), and whether it **needs approval** (actions the policy does not allow, or a cost
   over budget). The plan is stored in the catalog.

:func:`run_plan` (``Workspace.run_plan``, ``regrow run PLAN``) executes exactly the planned
actions: every component no action names keeps its data and seed, so its version is reused in
the new manifest. The run and the plan record the actual CPU seconds next to the estimate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from regrow.catalog.records import PlanRecord, SnapshotRecord, SystemVersionRecord
from regrow.errors import PlanError
from regrow.monitoring import check_version, record_report, window_quality
from regrow.plan.actions import Action, Finetune, FullRetrain
from regrow.plan.costs import CostModel
from regrow.plan.diagnostics import Diagnosis, diagnose, domain_check
from regrow.plan.plan import Plan
from regrow.plan.policy import Policy
from regrow.plan.proposals import diagnosis_lines, proposed_actions
from regrow.plan.screen import screen
from regrow.plan.updates import supports
from regrow.run.runner import Binding, RunEvent, RunResult, execute, partial_bindings
from regrow.system import System
from regrow.windows import open_window

if TYPE_CHECKING:
    from regrow.run.backends import ExecutorBackend
    from regrow.workspace import Workspace

__all__ = ["PlanRun", "cost_model", "make_plan", "manual_plan", "run_plan"]

#: Fewer labelled rows than this and the diagnostics do not run (intervals would be useless).
MIN_LABELLED_ROWS = 100


@dataclass(frozen=True)
class PlanRun:
    """A plan that ran: its stored record (now executed) and the run's result."""

    plan: Plan
    record: PlanRecord
    result: RunResult
    estimated_cpu_seconds: float
    actual_cpu_seconds: float


def cost_model(ws: Workspace, system: System) -> CostModel:
    """The cost model learned from every stored version of ``system``'s components."""
    records = []
    for name in system.components:
        records.extend(ws.catalog.component_history(system.name, name))
    return CostModel.from_history(records)


def _labelled(frame: pd.DataFrame, target: str) -> int:
    return int(frame[target].notna().sum()) if target in frame.columns else 0


def make_plan(
    ws: Workspace,
    ref: str,
    window: SnapshotRecord | str,
    *,
    policy: Policy | None = None,
    record: bool = True,
) -> Plan:
    """Plan the update of version ``ref`` for ``window``; stored in the catalog if ``record``."""
    policy = policy or Policy.default()
    version = ws.catalog.get_system_version(ref)
    window_rows = open_window(ws, version, window)
    win = window_rows.record
    model = ws.load(version.ref)
    system = model.definition()
    # The diagnostics measure the loss on held-out rows: the monitor's performance report
    # would predict the whole window once more.
    monitored = check_version(ws, version, window_rows, performance=False, model=model)
    esc = policy.escalation
    planning = policy.planning
    assert monitored.quality is not None
    screened = screen(monitored.quality, planning, target=system.target)
    frame = screened.rows

    read = sorted(system.columns() - {system.target})
    drifted = [c for c in monitored.drifted_columns if c in read]
    share = len(drifted) / len(read) if read else 0.0
    system_impact = next((i for i in monitored.impacts if i.kind == "system"), None)
    loss_increase = (
        system_impact.impact / system_impact.loss_counterfactual
        if system_impact is not None
        and math.isfinite(system_impact.impact)
        and system_impact.loss_counterfactual > 0
        else 0.0
    )
    labelled = _labelled(frame, system.target)
    signals: dict[str, Any] = {
        "drifted_columns": drifted,
        "drifted_share": round(share, 4),
        "columns_read": len(read),
        "impact_candidates": monitored.candidates,
        "estimated_loss_increase": round(loss_increase, 4),
        "labelled_rows": labelled,
    }
    if monitored.quality is not None and monitored.quality.findings:
        signals["data_quality"] = [f.to_dict() for f in monitored.quality.findings]
        signals["set_aside_rows"] = screened.set_aside
    rationale: list[str] = [
        *screened.lines,
        *window_rows.notes,
        f"{len(drifted)} of the {len(read)} features the system reads drifted"
        + (f" ({', '.join(drifted)})" if drifted else ""),
    ]
    if monitored.candidates:
        rationale.append(f"the drift raises the loss of {', '.join(monitored.candidates)}")

    escalate: list[str] = []
    if share > esc.max_drifted_share:
        escalate.append(
            f"{share:.0%} of the features drifted, above the policy's "
            f"{esc.max_drifted_share:.0%} (escalation.max_drifted_share)"
        )
    if loss_increase > esc.max_loss_increase:
        escalate.append(
            f"the drift is estimated to raise the loss by {loss_increase:.0%}, above the "
            f"policy's {esc.max_loss_increase:.0%} (escalation.max_loss_increase)"
        )

    multivariate = esc.unexplained_multivariate == "escalate" and version.snapshot_id
    if not drifted and multivariate and len(frame) < MIN_LABELLED_ROWS:
        rationale.append(
            f"no multivariate check: the window has {len(frame):,} usable rows (at least "
            f"{MIN_LABELLED_ROWS} are needed)"
        )
    elif not drifted and multivariate and version.snapshot_id:
        check = domain_check(ws.frame(version.snapshot_id, read), frame, read, seed=planning.seed)
        signals["multivariate_auc"] = check.to_dict()
        if check.low > esc.multivariate_auc:
            escalate.append(
                f"a classifier tells the window from the reference (AUC {check.auc:.3f}, "
                f"[{check.low:.3f}, {check.high:.3f}]) though no single feature drifted: the "
                f"features changed how they go together (escalation.unexplained_multivariate)"
            )
        else:
            rationale.append(
                f"no multivariate drift either: a classifier of window vs reference rows "
                f"reaches AUC {check.auc:.3f} [{check.low:.3f}, {check.high:.3f}]"
            )

    diagnosis: Diagnosis | None = None
    actions: list[Action] = []
    if not escalate and labelled >= MIN_LABELLED_ROWS:
        diagnosis = diagnose(model, frame, planning=planning)
        actions = proposed_actions(system, diagnosis, policy)
        actions = [_neural(ws, model, version, a, frame, policy) for a in actions]
        members = len(system.members)
        degraded = len(
            {a.component for a in actions if a.kind not in ("reweight", "retire-member")}
        )
        if degraded >= esc.max_degraded_members and degraded > members / 2:
            escalate.append(
                f"{degraded} of {members} members need an update, at least the policy's "
                f"{esc.max_degraded_members} (escalation.max_degraded_members)"
            )
        elif members and degraded / members > esc.max_degraded_share:
            escalate.append(
                f"{degraded} of {members} members need an update, above the policy's "
                f"{esc.max_degraded_share:.0%} (escalation.max_degraded_share)"
            )
        if not actions and monitored.candidates and esc.unexplained_drift == "escalate":
            escalate.append(
                f"the drift raises the loss of {', '.join(monitored.candidates)} but no "
                "member's update wins it back (escalation.unexplained_drift)"
            )
        rationale.extend(diagnosis_lines(diagnosis))
    elif not escalate:
        rationale.append(
            (
                f"the window has no target column {system.target!r}: the probes cannot run"
                if system.target not in frame.columns
                else f"the window has {labelled:,} labelled usable row(s): the probes cannot run"
            )
            + f" (they need at least {MIN_LABELLED_ROWS} labelled rows to fit and check an "
            "update): nothing is planned until labels arrive"
        )

    data_rows = len(frame)
    retained = 0
    if planning.data == "recent+reference" and version.snapshot_id:
        ref_rows = ws.catalog.get_snapshot(version.snapshot_id).rows
        retained = (
            ref_rows if planning.retained_rows == 0 else min(planning.retained_rows, ref_rows)
        )
        data_rows += retained
    costs = cost_model(ws, system)
    if escalate:
        full = FullRetrain("*", reason="; ".join(escalate))
        actions = [replace(full, cost=full.estimate(costs, system, data_rows))]
        rationale.append("escalated to a full retrain: " + "; ".join(escalate))
    else:
        actions = [
            replace(a, cost=a.estimate(costs, _after(system, actions), data_rows)) for a in actions
        ]
    actions = [replace(a, approval=policy.needs_approval(a.kind)) for a in actions]
    for a in actions:
        a.check(policy, system)
    estimated = sum(a.cost.cpu_seconds for a in actions if a.cost)
    full_est = FullRetrain("*").estimate(costs, system, data_rows)
    over_budget = estimated > policy.budgets.max_cpu_seconds
    needs_approval = any(a.approval for a in actions) or over_budget
    if over_budget:
        rationale.append(
            f"the estimated {estimated:.1f} CPU seconds exceed the policy's budget of "
            f"{policy.budgets.max_cpu_seconds:g} (budgets.max_cpu_seconds): needs approval"
        )
    if not actions:
        rationale.append("nothing to update: no action has a significant expected gain")

    expected: dict[str, Any] = {}
    if diagnosis is not None:
        expected = {
            "loss": diagnosis.loss,
            "before": round(diagnosis.loss_before, 6),
            "after": None if escalate else round(diagnosis.loss_after, 6),
            "on_rows": diagnosis.test_rows,
        }
    contingency = (
        f"if the candidate fails its gates: escalate to a full retrain on {data_rows:,} rows "
        f"(estimated {full_est.cpu_seconds:.1f} CPU s, needs approval: "
        f"{policy.needs_approval('full-retrain')})"
        if actions and not escalate
        else "if the candidate fails its gates: keep the champion, roll back any rollout, "
        "and alert: a full retrain did not fix it, so the data or the model needs a human"
        if escalate
        else "none: nothing runs"
    )
    plan = Plan(
        system=system.name,
        version=version.ref,
        version_id=version.id,
        window=win.id,
        actions=tuple(actions),
        escalated=bool(escalate),
        rationale=tuple(rationale),
        contingency=contingency,
        signals=signals,
        diagnosis=diagnosis.to_dict() if diagnosis is not None else None,
        expected=expected,
        cost={
            "estimated_cpu_seconds": round(estimated, 4),
            "full_retrain_cpu_seconds": round(full_est.cpu_seconds, 4),
            "diagnostics_cpu_seconds": round(diagnosis.cpu_seconds, 4) if diagnosis else 0.0,
        },
        data={
            "mode": planning.data,
            "window_rows": len(frame),
            "retained_rows": retained,
            **screened.data(),
        },
        policy=policy.to_dict(),
        needs_approval=needs_approval,
    )
    if record:
        # Only now is a window given as rows stored, with the report and the plan.
        monitored = record_report(ws, monitored, window_rows)
        assert monitored.record is not None
        plan = replace(plan, window=monitored.window.id, monitor_report=monitored.record.id)
        ws.catalog.add_plan(
            id=plan.id,
            system=plan.system,
            version_id=version.id,
            window_id=monitored.window.id,
            body={**plan.to_dict(), "summary": plan.summary()},
        )
    return plan


def _after(system: System, actions: list[Action]) -> System:
    return functools.reduce(lambda s, a: a.apply(s), actions, system)


def _neural(
    ws: Workspace,
    model: Any,
    version: Any,
    action: Action,
    window: pd.DataFrame,
    policy: Policy,
) -> Action:
    """A torch member chosen for a refit is fine-tuned instead, on the blocks its diagnostic
    (gradient-norm ratio, recent vs reference data) points at."""
    if action.kind != "refit" or policy.planning.neural != "finetune":
        return action
    fitted = model.components.get(action.component)
    if fitted is None or not supports(fitted.estimator, "finetune"):
        return action
    from regrow.components.fitted import feature_frame
    from regrow.plan.finetune import block_diagnostics, choose_blocks

    records = ws.catalog.get_component_versions([version.manifest[action.component]])
    trained_on = next(iter(records.values())).snapshot_id
    if trained_on is None:
        return action
    reference = ws.frame(trained_on)
    seed = policy.planning.seed
    reference = reference.sample(min(len(reference), 2000), random_state=seed)
    recent = window[window[model.target].notna()]
    recent = recent.sample(min(len(recent), 2000), random_state=seed)
    transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
    diags = block_diagnostics(
        fitted.estimator,
        feature_frame(fitted.spec, recent, transforms),
        recent[model.target].to_numpy(),
        feature_frame(fitted.spec, reference, transforms),
        reference[model.target].to_numpy(),
        seed=seed,
    )
    choice = choose_blocks(diags)
    budgets = policy.budgets
    lr = min(max(float(getattr(fitted.estimator, "lr", 1e-3)), budgets.lr_min), budgets.lr_max)
    scores = ", ".join(f"{b} {s:.3g}" for b, s in choice.scores.items())
    return Finetune(
        action.component,
        reason=f"{action.reason}; blocks by {choice.criterion} ({scores}): "
        + "; ".join(choice.reasons),
        gain=action.gain,
        blocks=choice.blocks,
        options={"lr": lr, "epochs": min(20, budgets.max_epochs), "max_steps": budgets.max_steps},
    )


def manual_plan(
    ws: Workspace,
    ref: str,
    window: SnapshotRecord | str,
    actions: Sequence[Action],
    *,
    policy: Policy | None = None,
    note: str = "written by hand",
) -> Plan:
    """A plan of the ``actions`` given (no monitoring or probes), checked, costed and stored.

    The way to fine-tune chosen blocks of a torch member by hand, continue a GBDT, or retire a
    member, with the same records and approvals as a planned update.
    """
    policy = policy or Policy.default()
    version = ws.catalog.get_system_version(ref)
    win = ws.catalog.get_snapshot(window) if isinstance(window, str) else window
    system = ws.system(version.ref)
    if not actions:
        raise PlanError("a plan by hand needs at least one action", hint="e.g. [Refit('geo')]")
    costs = cost_model(ws, system)
    checked: list[Action] = []
    for a in actions:
        a.check(policy, system)
        cost = a.estimate(costs, _after(system, checked), win.rows)
        checked.append(replace(a, cost=cost, approval=policy.needs_approval(a.kind),
                               reason=a.reason or note))  # fmt: skip
    estimated = sum(a.cost.cpu_seconds for a in checked if a.cost)
    plan = Plan(
        system=system.name,
        version=version.ref,
        version_id=version.id,
        window=win.id,
        actions=tuple(checked),
        rationale=(note,),
        contingency="if the candidate fails its gates: keep the champion",
        cost={"estimated_cpu_seconds": round(estimated, 4)},
        data={"mode": "recent", "window_rows": win.rows, "retained_rows": 0},
        policy=policy.to_dict(),
        needs_approval=any(a.approval for a in checked)
        or estimated > policy.budgets.max_cpu_seconds,
    )
    ws.catalog.add_plan(id=plan.id, system=plan.system, version_id=version.id, window_id=win.id,
                        body={**plan.to_dict(), "summary": plan.summary()})  # fmt: skip
    return plan


def run_plan(
    ws: Workspace,
    ref: str | Plan,
    *,
    approve: bool = False,
    seed: int | None = None,
    workers: int | None = None,
    backend: ExecutorBackend | None = None,
    progress: Callable[[RunEvent], None] | None = None,
) -> PlanRun:
    """Execute plan ``ref`` (its id, an id prefix, or a :class:`Plan`) and record the outcome."""
    plan_id = ref.id if isinstance(ref, Plan) else ref
    stored = ws.catalog.get_plan(plan_id)
    plan = Plan.from_dict(stored.body)
    if plan.empty:
        raise PlanError(
            f"plan {stored.id[:12]} has no actions: there is nothing to run",
            hint="plan again on a newer window",
        )
    if plan.needs_approval and not approve:
        waiting = [a.describe() for a in plan.actions if a.approval]
        raise PlanError(
            f"plan {stored.id[:12]} needs approval"
            + (f" for {', '.join(waiting)}" if waiting else " (over the CPU budget)"),
            hint="review it with `regrow plan show`, then run it with --approve",
        )
    base = ws.catalog.get_system_version(plan.version_id)
    system = ws.system(base.ref)
    run_seed = system.seed if seed is None else seed
    window = ws.catalog.get_snapshot(plan.window)
    data = _training_snapshot(ws, window, base, plan)
    new_system = _after(system, list(plan.actions))
    bindings = _bindings(ws, base, system, new_system, plan, data, run_seed)
    estimated = float(plan.cost.get("estimated_cpu_seconds") or 0.0)
    ws.catalog.move_plan(stored.id, expected=("proposed", "failed"), status="running")
    try:
        result = execute(
            ws.catalog,
            ws.store,
            new_system,
            bindings,
            kind="plan",
            run_seed=run_seed,
            parent=base,
            params={
                "plan": stored.id,
                "snapshot": data.id,
                "actions": [a.describe() for a in plan.actions],
                "estimated_cpu_seconds": estimated,
            },
            backend=backend,
            workers=workers,
            progress=progress,
            note=f"plan {stored.id[:12]}: " + "; ".join(a.describe() for a in plan.actions),
        )
    except BaseException as exc:
        ws.catalog.move_plan(
            stored.id,
            expected="running",
            status="failed",
            outcome={"error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    actual = sum(o.cpu_seconds for o in result.components.values())
    touched = [n for n, o in result.components.items() if o.action == "trained"]
    record = ws.catalog.move_plan(
        stored.id,
        expected="running",
        status="executed",
        run_id=result.run.id,
        result_version_id=result.version.id,
        outcome={
            "version": result.version.ref,
            "trained": touched,
            "reused": result.reused,
            "estimated_cpu_seconds": estimated,
            "actual_cpu_seconds": round(actual, 4),
            "per_component_cpu_seconds": {
                n: round(o.cpu_seconds, 4)
                for n, o in result.components.items()
                if o.action == "trained"
            },
        },
    )
    return PlanRun(plan, record, result, estimated, actual)


def _training_snapshot(
    ws: Workspace, window: SnapshotRecord, base: SystemVersionRecord, plan: Plan
) -> SnapshotRecord:
    """The window, or the window with the retained reference rows (``recent+reference``).

    When planning set rows aside or read columns as the version was trained on them
    (``plan.data["as_trained"]``), the rows are those again: the same check on the same
    version and window gives the same rows, stored as ``<window>-usable``; rows without a
    label are left out too, since no update can learn from them.
    """
    reference_id = base.snapshot_id
    recent = plan.data.get("mode") == "recent+reference" and reference_id is not None
    if not plan.data.get("as_trained") and not recent:
        return window
    frame = ws.frame(window.id)
    name, parents = window.name, [window.id]
    if plan.data.get("as_trained"):
        model = ws.load(base.ref)
        frame = window_quality(ws, base, frame, model).usable
        frame = frame[frame[model.target].notna()].reset_index(drop=True)
        name = f"{name}-usable"
    if recent and reference_id is not None:
        retained = int(plan.data.get("retained_rows") or 0)
        ref_frame = ws.frame(reference_id)
        if 0 < retained < len(ref_frame):
            ref_frame = ref_frame.iloc[len(ref_frame) - retained :]
        frame = pd.concat([ref_frame, frame], ignore_index=True)
        name, parents = f"{name}-retained", [reference_id, *parents]
    # Rows derived from snapshots already stored: nothing to review again.
    return ws.snapshot(
        frame,
        name=name,
        time_column=window.time_column,
        slices=window.slices or None,
        parents=parents,
        check_schema=False,
    )


def _bindings(
    ws: Workspace,
    base: SystemVersionRecord,
    old_system: System,
    system: System,
    plan: Plan,
    data: SnapshotRecord,
    run_seed: int,
) -> dict[str, Binding]:
    if any(a.kind == "full-retrain" for a in plan.actions):
        fresh: set[str] = set(system.components)
        updates: dict[str, tuple[str, Mapping[str, Any]]] = {}
    else:
        fresh, updates = set(), {}
        for a in plan.actions:
            spec = a.update_spec()
            if spec is not None:
                updates[a.component] = spec
            else:
                fresh.update(a.refits(old_system if a.kind != "add-member" else system))
        ens = system.ensemble
        changed = (
            updates or fresh or any(a.kind in ("add-member", "retire-member") for a in plan.actions)
        )
        if ens is not None and ens.method == "stack" and changed:
            fresh.add(ens.name)  # a stack learns from its members: refit it on the window
    return partial_bindings(ws.catalog, system, base, data, run_seed, fresh=fresh, updates=updates)
