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
from regrow.monitoring import monitor_version
from regrow.plan.actions import (
    Action,
    AddMember,
    Continue,
    Finetune,
    FullRetrain,
    LeafRefit,
    Refit,
    RetireMember,
    Reweight,
)
from regrow.plan.costs import CostModel
from regrow.plan.diagnostics import Diagnosis, diagnose, domain_check
from regrow.plan.plan import Plan
from regrow.plan.policy import Policy
from regrow.plan.updates import supports
from regrow.run.runner import Binding, RunEvent, RunResult, execute, partial_bindings
from regrow.system import System

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
    win = ws.catalog.get_snapshot(window) if isinstance(window, str) else window
    model = ws.load(version.ref)
    system = model.definition()
    # The diagnostics measure the loss on held-out rows: the monitor's performance report
    # would predict the whole window once more.
    frame = ws.frame(win.id)
    monitored = monitor_version(
        ws, version.ref, win, record=record, performance=False, model=model, frame=frame
    )
    esc = policy.escalation
    planning = policy.planning

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
    rationale: list[str] = [
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

    if not drifted and esc.unexplained_multivariate == "escalate" and version.snapshot_id:
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
        actions = _actions(system, diagnosis, policy)
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
        rationale.extend(_diagnosis_lines(diagnosis))
    elif not escalate:
        rationale.append(
            f"the window has {labelled} labelled rows (at least {MIN_LABELLED_ROWS} are "
            "needed to fit and check an update): nothing is planned until labels arrive"
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
        data={"mode": planning.data, "window_rows": len(frame), "retained_rows": retained},
        policy=policy.to_dict(),
        needs_approval=needs_approval,
        monitor_report=monitored.record.id if monitored.record else None,
    )
    if record:
        ws.catalog.add_plan(
            id=plan.id,
            system=plan.system,
            version_id=version.id,
            window_id=win.id,
            body={**plan.to_dict(), "summary": plan.summary()},
        )
    return plan


def _after(system: System, actions: list[Action]) -> System:
    return functools.reduce(lambda s, a: a.apply(s), actions, system)


def _actions(system: System, diagnosis: Diagnosis, policy: Policy) -> list[Action]:
    """The diagnosis's chosen moves as actions, with their reasons."""
    planning = policy.planning
    out: list[Action] = []
    ens = system.ensemble
    for move in diagnosis.chosen:
        probe = "a residual probe" if diagnosis.probe == "residual" else f"a {move.update} probe"
        what = "the ensemble relearned" if move.kind == "reweight" else f"{probe} on its inputs"
        if move.kind == "retire-member":
            what = "leaving it out"
        reason = (
            f"{what} cuts the {diagnosis.loss} by {move.gain.value:.4g} "
            f"[{move.gain.low:.4g}, {move.gain.high:.4g}] on {move.gain.rows} held-out rows of "
            f"the window"
        )
        gain = move.gain
        comp = move.component or ""
        if move.kind == "update":
            if move.update == "continue":
                out.append(Continue(comp, reason=reason, gain=gain, extra=planning.continue_extra))
            elif move.update == "leaf-refit":
                out.append(
                    LeafRefit(comp, reason=reason, gain=gain, decay_rate=planning.leaf_refit_decay)
                )
            else:
                out.append(Refit(comp, reason=reason, gain=gain))
        elif move.kind == "add-member":
            name, n = f"{comp}_2", 2
            while name in system:
                n += 1
                name = f"{comp}_{n}"
            out.append(AddMember(comp, reason=reason, gain=gain, new_name=name))
        elif move.kind == "retire-member":
            out.append(RetireMember(comp, reason=reason, gain=gain))
        elif move.kind == "reweight" and ens is not None:
            weights = None
            if diagnosis.weights:
                weights = {
                    k.removesuffix("+new"): v
                    for k, v in diagnosis.weights.items()
                    if not k.endswith("+new")
                }
            out.append(Reweight(ens.name, reason=reason, gain=gain, weights=weights))
    if (
        ens is not None
        and ens.method == "stack"
        and out
        and not any(a.kind == "reweight" for a in out)
    ):
        out.append(
            Reweight(ens.name, reason="a stack is refitted on the window when its members change")
        )
    return out


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


def _diagnosis_lines(d: Diagnosis) -> list[str]:
    how = (
        "a small boosted model of what the system gets wrong, on each member's inputs"
        if d.probe == "residual"
        else "each member refitted"
    )
    lines = [
        f"probes: {how}, fitted on {d.train_rows} labelled rows of the window and scored on "
        f"the other {d.test_rows}; {d.loss} of the current version there: {d.loss_before:.4g}"
    ]
    for m in d.chosen:
        lines.append(f"chosen: {m.kind} {m.component} — {m.why}")
    last: dict[str, Any] = {}
    for m in d.considered:
        if not m.accepted and m.component not in {c.component for c in d.chosen}:
            last[f"{m.kind} {m.component}"] = m
    for label, m in sorted(last.items(), key=lambda kv: -kv[1].gain.value)[:6]:
        lines.append(f"not chosen: {label} — {m.why}")
    if d.chosen:
        lines.append(
            f"expected {d.loss} after the update: {d.loss_after:.4g} (from {d.loss_before:.4g})"
        )
    return lines


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
    data = _training_snapshot(ws, window, base.snapshot_id, plan)
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
    ws: Workspace, window: SnapshotRecord, reference_id: str | None, plan: Plan
) -> SnapshotRecord:
    """The window, or the window with the retained reference rows (``recent+reference``)."""
    if plan.data.get("mode") != "recent+reference" or reference_id is None:
        return window
    retained = int(plan.data.get("retained_rows") or 0)
    ref = ws.catalog.get_snapshot(reference_id)
    ref_frame = ws.frame(ref.id)
    if 0 < retained < len(ref_frame):
        ref_frame = ref_frame.iloc[len(ref_frame) - retained :]
    combined = pd.concat([ref_frame, ws.frame(window.id)], ignore_index=True)
    return ws.snapshot(
        combined,
        name=f"{window.name}-retained",
        time_column=window.time_column,
        slices=window.slices or None,
        parents=[ref.id, window.id],
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
