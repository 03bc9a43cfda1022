"""Run a plan, and plans written by hand.

:func:`run_plan` (``Workspace.run_plan``, ``regrow run PLAN``) executes exactly the planned
actions: every component no action names keeps its data and seed, so its version is reused in
the new manifest. The run and the plan record the actual CPU and GPU seconds next to the
estimate, and money when ``[costs]`` sets prices; the policy's budgets hold while it runs
(:mod:`regrow.run.budget`).

A stacked ensemble refitted by the run learns from its members' outputs on the run's rows (on
a held-out fifth of them, when the run keeps some members: :mod:`regrow.components.stack_rows`);
the outputs of the members the run keeps were predicted on those rows when the plan was made,
and stored (``catalog.outputs``): the run reads them instead of predicting again.

:func:`manual_plan` (``Workspace.apply``) makes a plan of actions given by hand, with the same
checks, costs, records and approvals as a planned update.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from regrow._signals import signals_held
from regrow.catalog import checks
from regrow.catalog.experiments import check_contingency, check_tags
from regrow.catalog.records import PlanRecord, SnapshotRecord, SystemVersionRecord
from regrow.components.base import Ensemble
from regrow.components.outputs import output_key
from regrow.costs import CostProfile
from regrow.errors import PlanError
from regrow.experiments import record_candidate, record_plan
from regrow.monitoring import window_quality
from regrow.plan.actions import Action
from regrow.plan.costs import learned_costs
from regrow.plan.plan import Plan
from regrow.plan.policy import Planning, Policy
from regrow.plan.screen import screen
from regrow.progress import Timer
from regrow.run.backends import check_workers
from regrow.run.budget import PlanEstimate, RunBudget
from regrow.run.runner import Binding, RunResult, execute, partial_bindings

if TYPE_CHECKING:
    import pandas as pd

    from regrow.model import FittedSystem
    from regrow.run.backends import ExecutorBackend
    from regrow.services import Services
    from regrow.system import System

__all__ = ["PlanRun", "after_actions", "manual_plan", "retained_rows", "run_plan"]


@dataclass(frozen=True)
class PlanRun:
    """A plan that ran: its stored record (now executed), the run's result, the seconds each
    step took (``run`` is the runner's, reported by its own events), and what the components
    it fitted used next to the estimate: GPU seconds, and money in ``currency`` (None when
    no price is set). ``notes`` say what the budgets or the estimate left out."""

    plan: Plan
    record: PlanRecord
    result: RunResult
    estimated_cpu_seconds: float
    actual_cpu_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    estimated_gpu_seconds: float = 0.0
    actual_gpu_seconds: float = 0.0
    estimated_cost: float | None = None
    actual_cost: float | None = None
    currency: str = ""
    notes: tuple[str, ...] = ()


def after_actions(system: System, actions: Sequence[Action]) -> System:
    """``system`` once ``actions`` are applied to its definition, in order."""
    return functools.reduce(lambda s, a: a.apply(s), actions, system)


def _with_recipe(action: Action, planning: Planning, system: System) -> Action:
    """``action`` naming the recipe the planner would use for it (what lineage shows as
    having built the component), with the action's own values of that recipe's parameters;
    as it is when it names one, or when no recipe makes it."""
    from regrow.recipes.choice import choose

    if action.recipe:
        return action
    try:
        target = "*" if action.component == "*" else system[action.component]
        choice = choose(planning, target, action.kind)
    except (PlanError, KeyError):
        return action
    own = action.params()
    params = {k: own.get(k, v) for k, v in choice.params.items()}
    return replace(action, recipe=choice.recipe.ref, recipe_params=params)


def manual_plan(
    services: Services,
    ref: str,
    window: SnapshotRecord | str,
    actions: Sequence[Action],
    *,
    policy: Policy | None = None,
    note: str | Sequence[str] = "written by hand",
    tags: Iterable[str] = (),
    contingency: str | None = None,
    kind: Literal["manual", "plan"] = "manual",
) -> Plan:
    """A plan of the ``actions`` given (no monitoring or probes), checked, costed and stored;
    ``note`` is its rationale (a line, or several). ``kind`` is its experiment's: ``plan``
    for one a program decided on (``regrow watch``'s escalation to a full retrain).

    The way to fine-tune chosen blocks of a torch member by hand, continue a GBDT, or retire a
    member, with the same records and approvals as a planned update. It is recorded as a
    ``manual`` experiment with ``tags`` and ``contingency`` (see :mod:`regrow.experiments`).
    """
    tags = check_tags(tags)
    if contingency is not None:
        contingency = check_contingency(contingency)
    lines = (note,) if isinstance(note, str) else tuple(note)
    policy = policy or Policy.default()
    version = services.version(ref)
    win = services.record(window)
    model = services.load(version)
    system = model.definition()
    if not actions:
        raise PlanError("a plan by hand needs at least one action", hint="e.g. [Refit('geo')]")
    # The window screened as a planned update's is: a column the version reads that is
    # broken is refused now, and rows a member cannot take (nulls a LogisticRegression
    # cannot read) are set aside for the run, which would otherwise fail on them.
    screened = screen(
        window_quality(services, version, services.frame(win.id), model),
        policy.planning,
        target=system.target,
    )
    costs = learned_costs(services.catalog, system)
    retained = retained_rows(services, version, policy.planning)
    checked: list[Action] = []
    for a in actions:
        a.check(policy, system)
        a = _with_recipe(a, policy.planning, system)
        cost = a.estimate(costs, after_actions(system, checked), win.rows + retained)
        checked.append(replace(a, cost=cost, approval=policy.needs_approval(a.kind),
                               reason=a.reason or "; ".join(lines)))  # fmt: skip
    estimated = sum(a.cost.cpu_seconds for a in checked if a.cost)
    plan = Plan(
        system=system.name,
        version=version.ref,
        version_id=version.id,
        window=win.id,
        actions=tuple(checked),
        rationale=(*lines, *screened.lines),
        contingency="if the candidate fails its gates: keep the champion",
        cost={"estimated_cpu_seconds": round(estimated, 4)},
        data={
            "mode": policy.planning.data,
            "window_rows": len(screened.rows),
            "retained_rows": retained,
            **screened.data(),
        },
        policy=policy.to_dict(),
        needs_approval=any(a.approval for a in checked)
        or estimated > policy.budgets.max_cpu_seconds,
    )
    services.catalog.add_plan(id=plan.id, system=plan.system, version_id=version.id,
                              window_id=win.id,
                              body={**plan.to_dict(), "summary": plan.summary()})  # fmt: skip
    record_plan(services.catalog, plan, kind=kind, tags=tags, contingency=contingency)
    return plan


def retained_rows(services: Services, version: SystemVersionRecord, planning: Planning) -> int:
    """How many of ``version``'s training rows an update keeps beside the window under
    ``planning.data: recent+reference`` (at most; rows as old as the window's are left out
    when it runs, see :func:`_retained`): 0 under ``recent``."""
    if planning.data != "recent+reference" or not version.snapshot_id:
        return 0
    rows = services.catalog.get_snapshot(version.snapshot_id).rows
    return rows if planning.retained_rows == 0 else min(planning.retained_rows, rows)


def run_plan(
    services: Services,
    ref: str | Plan,
    *,
    approve: bool = False,
    seed: int | None = None,
    workers: int | None = None,
    backend: ExecutorBackend | None = None,
    progress: Callable[[Any], None] | None = None,
    cpu_budget: RunBudget | float | None = None,
    estimate: PlanEstimate | None = None,
    profile: CostProfile | None = None,
) -> PlanRun:
    """Execute plan ``ref`` (its id, an id prefix, or a :class:`Plan`) and record the outcome.

    ``cpu_budget`` (a :class:`~regrow.run.budget.RunBudget`, or CPU seconds) stops the run
    once its components used more (see :func:`regrow.run.budget.check`); the plan is then
    ``failed`` and may be run again: it resumes. ``estimate`` is the plan's priced estimate
    (:func:`~regrow.run.budget.estimate_plan`; default: its CPU seconds only) and ``profile``
    prices what the run used (default: no prices).

    ``progress`` receives :class:`~regrow.progress.Step` events for the steps before the run
    (``load``, ``training data``) and the runner's :class:`~regrow.run.runner.RunEvent` s.
    """
    timer = Timer(progress)
    catalog = services.catalog
    # options first: a bad one found once the plan is running left it failed, with records
    if seed is not None:
        checks.integer("seed", seed)
    if workers is not None:
        check_workers(workers)
    plan_id = ref.id if isinstance(ref, Plan) else ref
    stored = catalog.get_plan(plan_id)
    plan = Plan.from_dict(stored.body)
    if stored.status == "executed":
        made = (
            catalog.get_system_version(stored.result_version_id).ref
            if stored.result_version_id
            else None
        )
        raise PlanError(
            f"plan {stored.id[:12]} ran already" + (f": it made {made}" if made else ""),
            hint=f"see `regrow plans show {stored.id[:12]}`; to update again, plan again on a "
            "newer window",
        )
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
            hint=f"review it with `regrow plans show {stored.id[:12]}`, then run it with --approve",
        )
    with timer.step("load"):
        base = catalog.get_system_version(plan.version_id)
        model = services.load(base)
        system = model.definition()
    run_seed = system.seed if seed is None else seed
    window = catalog.get_snapshot(plan.window)
    with timer.step("training data"):
        data = _training_snapshot(services, window, base, plan, model)
    new_system = after_actions(system, plan.actions)
    bindings = _bindings(services, base, system, new_system, plan, data, run_seed)
    bindings = _with_outputs(services, model, new_system, bindings, data)
    estimated = float(plan.cost.get("estimated_cpu_seconds") or 0.0)
    guess = estimate or PlanEstimate(cpu_seconds=estimated)
    notes = cpu_budget.notes_on(guess) if isinstance(cpu_budget, RunBudget) else ()
    catalog.move_plan(stored.id, expected=("proposed", "failed"), status="running")
    started = time.perf_counter()
    try:
        result = execute(
            catalog,
            services.store,
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
                "estimated_gpu_seconds": guess.gpu_seconds,
                "estimated_cost": _rounded(guess.money),
            },
            backend=backend,
            workers=workers,
            progress=progress,
            note=f"plan {stored.id[:12]}: " + "; ".join(a.describe() for a in plan.actions),
            cpu_budget=cpu_budget,
        )
    except BaseException as exc:
        stopped = isinstance(exc, KeyboardInterrupt)  # Ctrl-C, or SIGTERM handled as it
        catalog.move_plan(
            stored.id,
            expected="running",
            status="failed",
            outcome={"error": "interrupted", "interrupted": True}
            if stopped
            else {"error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    # The run made its version: the plan is recorded as executed whole, Ctrl-C held till
    # then (landing in the write, it left the plan "running": neither run again nor
    # recorded as having made the version).
    with signals_held():
        timer.seconds["run"] = time.perf_counter() - started
        actual = sum(o.cpu_seconds for o in result.components.values())
        touched = [n for n, o in result.components.items() if o.action == "trained"]
        usages = [o.usage for o in result.components.values() if o.usage is not None]
        gpu = sum(u.gpu_seconds for u in usages)
        prices = profile or CostProfile()
        where = backend.name if backend is not None else "local"
        money = sum(prices.money(where, u) for u in usages) if prices.priced else None
        record = catalog.move_plan(
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
                "estimated_gpu_seconds": round(guess.gpu_seconds, 4),
                "actual_gpu_seconds": round(gpu, 4),
                "estimated_cost": _rounded(guess.money),
                "actual_cost": _rounded(money),
                "currency": prices.currency if prices.priced else None,
                "notes": list(notes),
                "per_component_cpu_seconds": {
                    n: round(o.cpu_seconds, 4)
                    for n, o in result.components.items()
                    if o.action == "trained"
                },
                "timings": {k: round(v, 4) for k, v in timer.seconds.items()},
            },
        )
        record_candidate(catalog, stored.id, result.version.id)
        return PlanRun(
            plan, record, result, estimated, actual, dict(timer.seconds),
            estimated_gpu_seconds=guess.gpu_seconds, actual_gpu_seconds=gpu,
            estimated_cost=guess.money, actual_cost=money,
            currency=prices.currency if prices.priced else "", notes=notes,
        )  # fmt: skip


def _rounded(money: float | None) -> float | None:
    """Money as stored: to a millionth of the currency's unit (None: not priced)."""
    return None if money is None else round(money, 6)


def _training_snapshot(
    services: Services,
    window: SnapshotRecord,
    base: SystemVersionRecord,
    plan: Plan,
    model: FittedSystem,
) -> SnapshotRecord:
    """The window, or the window with the retained reference rows (``recent+reference``).

    When planning set rows aside or read columns as the version was trained on them
    (``plan.data["as_trained"]``), the rows are those again: the same check on the same
    version and window gives the same rows, stored as ``<window>-usable``; rows without a
    label are left out too, since no update can learn from them.
    """
    import pandas as pd

    reference_id = base.snapshot_id
    recent = plan.data.get("mode") == "recent+reference" and reference_id is not None
    if not plan.data.get("as_trained") and not recent:
        return window
    frame = services.frame(window.id)
    name, parents = window.name, [window.id]
    if plan.data.get("as_trained"):
        frame = window_quality(services, base, frame, model).usable
        frame = frame[frame[model.target].notna()].reset_index(drop=True)
        name = f"{name}-usable"
    watched = None
    if recent and reference_id is not None:
        retained = int(plan.data.get("retained_rows") or 0)
        ref_frame = _retained(services.frame(reference_id), frame, window.time_column, retained)
        # The new version is monitored against the window alone: the retained rows are from
        # before it, and against them a drift the update has learnt would be found again in
        # every later window.
        watched = window.id
        frame = pd.concat([ref_frame, frame], ignore_index=True)
        name, parents = f"{name}-retained", [reference_id, *parents]
    # Rows derived from snapshots already stored: nothing to review again.
    return services.snapshot(
        frame,
        name=name,
        time_column=window.time_column,
        slices=window.slices or None,
        parents=parents,
        check_schema=False,
        monitor_reference=watched,
    )


def _retained(
    reference: pd.DataFrame, window: pd.DataFrame, time_column: str | None, rows: int
) -> pd.DataFrame:
    """The reference rows a ``recent+reference`` update learns from beside the window.

    With a time column: the rows older than the window's oldest, in time order. A reference
    that overlaps the window (the version was trained on an earlier window, itself with
    retained rows) would otherwise give the rows both hold twice. Of those, the newest
    ``rows`` (0: all).
    """
    import pandas as pd

    if time_column and time_column in reference.columns and time_column in window.columns:
        start = window[time_column].min()
        if not pd.isna(start):
            try:
                older = reference[time_column] < start
            except TypeError:  # times of other kinds (naive and aware): nothing to compare
                older = None
            if older is not None:
                reference = reference[older].sort_values(time_column, kind="stable")
    if 0 < rows < len(reference):
        reference = reference.iloc[len(reference) - rows :]
    return reference


def _bindings(
    services: Services,
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
        if ens is not None and ens.learns_from_data and changed:
            fresh.add(ens.name)  # a stack (or learned gate) learns from its members: refit it
    return partial_bindings(
        services.catalog, system, base, data, run_seed, fresh=fresh, updates=updates
    )


def _with_outputs(
    services: Services,
    model: FittedSystem,
    system: System,
    bindings: dict[str, Binding],
    data: SnapshotRecord,
) -> dict[str, Binding]:
    """A stack fitted on ``data`` gets the stored outputs of the members it keeps on its rows
    (those the plan predicted): the run reads them instead of predicting them again.

    The tables are named by output key (member artifact, transforms, classes); the task uses
    one only when the member it fits on has that key, so a member refitted meanwhile is
    predicted, never read from another version's table.
    """
    ens = system.ensemble
    binding = bindings.get(ens.name) if ens is not None else None
    if not isinstance(ens, Ensemble) or ens.method != "stack" or binding is None:
        return bindings
    if binding.snapshot is None or binding.snapshot.id != data.id:
        return bindings
    keys = [
        key
        for m in ens.members
        if m in model.components
        and (b := bindings[m]).update is None
        and b.snapshot is not None
        and b.snapshot.id != data.id  # fitted on other rows: its outputs are predicted
        and (key := output_key(m, model.components, model.artifacts, model.classes_))
    ]
    stored = services.outputs.stored(keys, [data.id, *data.parent_ids])
    hints = {key: tuple(found) for key, found in stored.items() if found}
    return {**bindings, ens.name: replace(binding, outputs=hints)} if hints else bindings
