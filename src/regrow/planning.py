"""Plan an update of a version from what a window shows.

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
   over budget). The plan is stored in the catalog, with the time each step took.

What planning costs is bounded by the window, not by the system's history: attribution and
the probes use at most :data:`~regrow.monitor.sample.SAMPLE_ROWS` rows of a large window (a
seeded sample, stratified by label for classifiers; the rationale says which), every member
is predicted once per row and the rows predicted are stored with the plan (the run of the
plan reads the ones its stack needs), and the multivariate check runs only when its answer
can change the plan: no feature drifted, nothing else escalated it, and on a labelled window
the probes did not already weigh a full retrain against the plan (what it finds there then
escalates only when their evidence says a full retrain pays). Each step is reported to
``progress`` (:mod:`regrow.progress`).

Running a plan, and plans written by hand: :mod:`regrow.plan_runs` (:func:`run_plan`,
:func:`manual_plan`, :class:`PlanRun` are importable from here too).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from regrow.catalog.experiments import check_contingency, check_tags
from regrow.catalog.records import SnapshotRecord, SystemVersionRecord
from regrow.errors import PlanError
from regrow.experiments import record_plan
from regrow.monitor.sample import SAMPLE_ROWS, describe_sample, sample_rows
from regrow.monitoring import check_version, record_report
from regrow.plan.actions import Action, Finetune, FullRetrain
from regrow.plan.costs import CostModel, learned_costs
from regrow.plan.diagnostics import Diagnosis, diagnose, domain_check
from regrow.plan.escalation import Review, retrain_evidence, review_plan
from regrow.plan.plan import Plan
from regrow.plan.policy import ACTION_NAMES, Policy
from regrow.plan.proposals import proposed_actions
from regrow.plan.screen import screen
from regrow.plan.thresholds import Thresholds
from regrow.plan.updates import supports
from regrow.plan_runs import PlanRun, after_actions, manual_plan, retained_rows, run_plan
from regrow.progress import ProgressFn, Timer
from regrow.recipes import get_recipe
from regrow.recipes.choice import choose
from regrow.system import System
from regrow.windows import open_window

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.model import FittedSystem
    from regrow.monitoring import MonitorResult
    from regrow.services import Services

__all__ = ["PlanRun", "cost_model", "make_plan", "manual_plan", "run_plan"]

#: Fewer labelled rows than this and the diagnostics do not run (intervals would be useless).
MIN_LABELLED_ROWS = 100


def cost_model(source: Catalog | Any, system: System) -> CostModel:
    """The cost model learned from every stored version of ``system``'s components.

    ``source`` is a catalog, or anything that has one as ``.catalog`` (services, a
    workspace).
    """
    return learned_costs(getattr(source, "catalog", source), system)


def _labelled(frame: pd.DataFrame, target: str) -> int:
    return int(frame[target].notna().sum()) if target in frame.columns else 0


def make_plan(
    services: Services,
    ref: str,
    window: SnapshotRecord | str,
    *,
    policy: Policy | None = None,
    record: bool = True,
    progress: ProgressFn | None = None,
    tags: Iterable[str] = (),
    contingency: str | None = None,
    why: Sequence[str] = (),
) -> Plan:
    """Plan the update of version ``ref`` for ``window``; stored in the catalog if ``record``.

    ``why`` are the reasons the plan was asked for, put first in its rationale (the watcher's
    decision: an SLA forecast, a persisting drift).

    A stored plan with actions is recorded as an experiment with ``tags`` and
    ``contingency`` (default: keep the version; see :func:`regrow.experiments.record_plan`).
    ``progress`` receives a :class:`~regrow.progress.Step` event as each step starts,
    advances and ends; the plan's ``timings`` say how long each took.
    """
    # Bad tags or contingency are refused before any work.
    tags = check_tags(tags)
    chosen_contingency = check_contingency(contingency) if contingency is not None else None
    timer = Timer(progress)
    policy = policy or Policy.default()
    esc = policy.escalation
    planning = policy.planning
    with timer.step("load"):
        version = services.version(ref)
        window_rows = open_window(services, version, window)
        win = window_rows.record
        model = services.load(version)
    system = model.definition()
    sample = max(SAMPLE_ROWS, math.ceil(planning.probe_max_rows / planning.probe_fraction))
    # The diagnostics measure the loss on held-out rows: the monitor's performance report
    # would predict the whole window once more.
    monitored = check_version(
        services, version, window_rows, performance=False, model=model, timer=timer
    )
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
    _one_class(frame, system.target, model.classes_, win.name)
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
        *(str(line) for line in why),
        *screened.lines,
        *window_rows.notes,
        f"{len(drifted)} of the {len(read)} features the system reads drifted"
        + (f" ({', '.join(drifted)})" if drifted else ""),
    ]
    if monitored.candidates:
        rationale.append(f"the drift raises the loss of {', '.join(monitored.candidates)}")
    rationale.extend(
        f"planning.recipes.{key} names no component of {system.name} nor an action: ignored"
        for key in planning.recipes
        if key not in system and key not in ACTION_NAMES
    )
    rationale.extend(n for n in monitored.notes if n.startswith("impact is estimated on"))

    escalate: list[str] = []
    broad: str | None = None  # broad feature drift alone: the labelled probes have a say
    if share > esc.max_drifted_share:
        broad = (
            f"{share:.0%} of the features drifted, above the policy's "
            f"{esc.max_drifted_share:.0%} (escalation.max_drifted_share)"
        )
    if loss_increase > esc.max_loss_increase:
        escalate.append(
            f"the drift is estimated to raise the loss by {loss_increase:.0%}, above the "
            f"policy's {esc.max_loss_increase:.0%} (escalation.max_loss_increase)"
        )
    if broad is not None and (escalate or labelled < MIN_LABELLED_ROWS):
        escalate.insert(0, broad)
        broad = None

    probing = not escalate and labelled >= MIN_LABELLED_ROWS
    if not probing and not escalate:  # the check is all that could change this plan
        _multivariate(services, version, frame, read, policy, timer, signals, rationale, escalate)

    diagnosis: Diagnosis | None = None
    actions: list[Action] = []
    review: Review | None = None
    if probing:
        rows = _probe_rows(frame, system, planning.seed, sample, rationale)
        stored = services.outputs

        def known(
            part: pd.DataFrame,
        ) -> dict[str, Any]:  # the members' outputs, predicted once per row
            return stored.member_outputs(model, part, snapshot=win.id)

        def made(chosen: Diagnosis) -> list[Action]:  # torch members' blocks chosen, or none
            return [
                kept
                for a in proposed_actions(system, chosen, policy)
                if (kept := _neural(services, model, version, a, frame, policy, rationale))
            ]

        with timer.step("probes"):
            # -- thresholds and escalation after the probes: regrow.plan.thresholds / .escalation --
            thresholds = Thresholds.of(planning, monitored.impacts, drifted, system)
            diagnosis = thresholds.settle(
                diagnose(model, rows, planning=thresholds.search(planning), outputs=known)
            )
            actions = made(diagnosis)
            review = review_plan(
                model, rows, system, diagnosis, actions, policy,
                candidates=monitored.candidates, drifted=drifted, outputs=known,
                thresholds=thresholds,
            )  # fmt: skip
            diagnosis = review.diagnosis
            if review.dropped:  # the partial plan would not win enough (its lines say why)
                actions = []
            elif review.swapped:  # ... and refitting another member alone would
                actions = made(diagnosis)
            escalate.extend(review.reasons)
            signals.update(review.signals)
            rationale.extend(review.lines)
            if broad is not None and len(system.members) == 1:
                rationale.append(
                    f"{broad}, but not escalated: the system has one member, and its update "
                    "(as the probes judged it) is all a full retrain would change, less what "
                    "it keeps (a network's fine-tuning starts from its trained weights)"
                )
            elif broad is not None:
                pays, evidence = retrain_evidence(
                    model, rows, system, review, policy, outputs=known
                )
                if pays:
                    escalate.insert(0, broad)
                    rationale.append(
                        f"{broad}: on the labelled rows, {evidence}"
                        + (
                            "; with drift this broad, a full retrain is weighed against "
                            "keeping the version as it is, not against the partial plan above"
                            if review.weighed
                            else ""
                        )
                    )
                else:
                    rationale.append(
                        f"{broad}, but not escalated: on the labelled rows, {evidence}"
                    )
            # -- end of the hook --
        if not escalate and review is not None:  # a multivariate drift could change it
            _multivariate(
                services, version, frame, read, policy, timer, signals, rationale, escalate,
                labelled=lambda: retrain_evidence(model, rows, system, review, policy,
                                                  outputs=known),
                weighed=review.weighed,
            )  # fmt: skip
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
    if escalate and labelled == 0:  # a full retrain would have no target to learn
        signals["full_retrain_needs_labels"] = list(escalate)
        rationale.append(
            "a full retrain is called for ("
            + "; ".join(escalate)
            + "), but the window has "
            + (
                f"no target column {system.target!r}"
                if system.target not in frame.columns
                else "no labelled usable rows"
            )
            + " to train it on: nothing is planned until labels arrive; plan again on the "
            "window with its labels"
        )
        escalate = []

    retained = retained_rows(services, version, planning)
    data_rows = len(frame) + retained
    costs = learned_costs(services.catalog, system)
    if escalate:
        full = choose(planning, "*", "full-retrain").action("*", reason="; ".join(escalate))
        actions = [replace(full, cost=full.estimate(costs, system, data_rows))]
        rationale.append("escalated to a full retrain: " + "; ".join(escalate))
    else:
        after = after_actions(system, actions)
        actions = [replace(a, cost=a.estimate(costs, after, data_rows)) for a in actions]
    over_recipe = _over_recipe_budget(actions, rationale)
    actions = [
        replace(a, approval=policy.needs_approval(a.kind) or n in over_recipe)
        for n, a in enumerate(actions)
    ]
    for a in actions:
        a.check(policy, system)
    estimated = sum(a.cost.cpu_seconds for a in actions if a.cost)
    full_est = FullRetrain("*").estimate(costs, system, data_rows)
    over_budget = estimated > policy.budgets.max_cpu_seconds
    needs_approval = any(a.approval for a in actions) or over_budget
    if over_budget:
        rationale.append(
            f"the estimated {estimated:,.2f} CPU seconds exceed the policy's budget of "
            f"{policy.budgets.max_cpu_seconds:g} (budgets.max_cpu_seconds): needs approval"
        )
    if not actions:
        rationale.append(
            "nothing to update: no action's expected gain clears its bar"
            if diagnosis is not None
            else "nothing to update"
        )

    expected = review.expected(escalated=bool(escalate)) if review is not None else {}
    contingency = (
        f"if the candidate fails its gates: escalate to a full retrain on {data_rows:,} rows "
        f"(estimated {full_est.cpu_seconds:.1f} CPU s"
        + (", needs approval)" if policy.needs_approval("full-retrain") else ")")
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
        with timer.step("record"):
            plan = _record(services, plan, monitored, window_rows, timer)
            record_plan(services.catalog, plan, tags=tags, contingency=chosen_contingency)
    return replace(plan, timings=dict(timer.seconds))


def _record(
    services: Services, plan: Plan, monitored: MonitorResult, window: Any, timer: Timer
) -> Plan:
    """Store the window (given as rows), the members' outputs predicted, the monitoring
    report and the plan (with the time each step took so far)."""
    monitored = record_report(services, monitored, window)
    assert monitored.record is not None
    plan = replace(
        plan,
        window=monitored.window.id,
        monitor_report=monitored.record.id,
        timings=dict(timer.seconds),
    )
    services.catalog.add_plan(
        id=plan.id,
        system=plan.system,
        version_id=plan.version_id,
        window_id=monitored.window.id,
        body={**plan.to_dict(), "summary": plan.summary()},
    )
    return plan


def _one_class(frame: pd.DataFrame, target: str, classes: Sequence[Any] | None, name: str) -> None:
    """Refuse a classifier's window whose labels are all one class: whatever is planned on it
    (the probes found every member "wrong" and a full retrain, which could not even fit)
    learns to predict that class alone. It is most often a labelling fault."""
    if classes is None or len(classes) < 2 or target not in frame.columns:
        return
    labels = frame[target].dropna()
    seen = labels.unique()
    if len(seen) != 1 or len(labels) < MIN_LABELLED_ROWS:
        return
    value = seen[0].item() if hasattr(seen[0], "item") else seen[0]  # a plain number
    raise PlanError(
        f"window {name!r} has {len(labels):,} labels in {target!r}, all "
        f"{value!r}: an update learnt from it would predict that class alone (the version's "
        f"classes: {list(classes)})",
        hint="check how the labels were joined (missing labels filled with one class?), or "
        "plan on a window that holds every class",
    )


def _probe_rows(
    frame: pd.DataFrame, system: System, seed: int, rows: int, rationale: list[str]
) -> pd.DataFrame:
    """The labelled rows the probes use: all, or a sample of ``rows`` (said in the rationale)."""
    target = system.target
    labelled = frame[frame[target].notna()]
    by = target if system.task == "classification" else None
    sample = sample_rows(labelled, rows, by=by, seed=seed)
    if len(sample) < len(labelled):
        rationale.append(
            "probes on "
            + describe_sample(
                len(sample), len(labelled), "labelled usable rows", stratified=by is not None,
                seed=seed,
            )
            + ": their gains' intervals are those of the sample"
        )  # fmt: skip
    return sample


def _multivariate(
    services: Services,
    version: SystemVersionRecord,
    frame: pd.DataFrame,
    read: list[str],
    policy: Policy,
    timer: Timer,
    signals: dict[str, Any],
    rationale: list[str],
    escalate: list[str],
    *,
    labelled: Callable[[], tuple[bool, str]] | None = None,
    weighed: bool = False,
) -> None:
    """The multivariate check, when no single feature drifted and the policy escalates on
    what it finds (see :func:`domain_check`).

    On a labelled window (``labelled``: the probes' evidence for a full retrain, see
    :func:`~regrow.plan.escalation.retrain_evidence`), what the check finds escalates only
    when that evidence says a full retrain pays, as broad univariate drift does: the labels
    tell whether the changed joint distribution costs anything. When the probes already
    ``weighed`` a full retrain against the plan on those rows, the check cannot change the
    plan and does not run."""
    esc = policy.escalation
    if signals.get("drifted_columns") or esc.unexplained_multivariate != "escalate":
        return
    if not version.snapshot_id:
        return
    if weighed:
        rationale.append(
            "no multivariate check: the probes weighed a full retrain against the plan on the "
            "labelled rows, which show whatever a change in how the features go together costs"
        )
        return
    if len(frame) < MIN_LABELLED_ROWS:
        rationale.append(
            f"no multivariate check: the window has {len(frame):,} usable rows (at least "
            f"{MIN_LABELLED_ROWS} are needed)"
        )
        return
    with timer.step("multivariate check"):
        reference = services.frame(version.snapshot_id, read)
        check = domain_check(reference, frame, read, seed=policy.planning.seed)
    signals["multivariate_auc"] = check.to_dict()
    if check.low <= esc.multivariate_auc:
        rationale.append(
            f"no multivariate drift either: a classifier of window vs reference rows "
            f"reaches AUC {check.auc:.3f} [{check.low:.3f}, {check.high:.3f}]"
        )
        return
    found = (
        f"a classifier tells the window from the reference (AUC {check.auc:.3f}, "
        f"[{check.low:.3f}, {check.high:.3f}]) though no single feature drifted: the "
        f"features changed how they go together"
    )
    if labelled is None:
        escalate.append(f"{found} (escalation.unexplained_multivariate)")
        return
    pays, seen = labelled()
    if pays:
        escalate.append(
            f"{found} (escalation.unexplained_multivariate), and on the labelled rows, {seen}"
        )
    else:
        rationale.append(f"{found}, but not escalated: on the labelled rows, {seen}")


def _over_recipe_budget(actions: list[Action], rationale: list[str]) -> set[int]:
    """Indices of the actions estimated above their recipe's ``max_cpu_seconds`` (each then
    needs approval, and the rationale says so)."""
    over: set[int] = set()
    for n, a in enumerate(actions):
        limit = get_recipe(a.recipe).max_cpu_seconds if a.recipe else None
        if limit is not None and a.cost is not None and a.cost.cpu_seconds > limit:
            over.add(n)
            rationale.append(
                f"{a.describe()}: the estimated {a.cost.cpu_seconds:.1f} CPU seconds exceed "
                f"its recipe {a.recipe}'s budget of {limit:g}: needs approval"
            )
    return over


def _neural(
    services: Services,
    model: FittedSystem,
    version: SystemVersionRecord,
    action: Action,
    window: pd.DataFrame,
    policy: Policy,
    rationale: list[str],
) -> Action | None:
    """A torch member's ``finetune`` (made by its recipe, :mod:`regrow.plan.proposals`) with
    its blocks and budgets: blocks the recipe names are checked against the member's; with
    ``blocks: auto`` the gradient-norm-ratio diagnostic (recent vs reference data) ranks them
    and short probes confirm. None (the member is left alone, and the rationale says why)
    when no probe's gain is significant. Epochs and steps the recipe leaves open are the
    policy's budgets; an open learning rate is the probes' (within the policy's bounds)."""
    if not isinstance(action, Finetune):
        return action
    fitted = model.components.get(action.component)
    if fitted is None or not supports(fitted.estimator, "finetune"):
        return action
    budgets = policy.budgets
    options = dict(action.options)
    options.setdefault("epochs", min(20, budgets.max_epochs))
    options.setdefault("max_steps", budgets.max_steps)
    if action.blocks:
        known = list(getattr(fitted.estimator, "blocks_", {}) or {})
        unknown = [b for b in action.blocks if b not in known]
        if unknown:
            raise PlanError(
                f"{action.recipe or 'finetune'} of {action.component!r} names blocks "
                f"{unknown} the member does not have",
                hint=f"its blocks are {known}: set the recipe's blocks in the policy's "
                f"planning.recipes.{action.component}",
            )
        return replace(action, options=options)
    from regrow.components.fitted import feature_frame
    from regrow.plan.finetune import block_diagnostics
    from regrow.plan.finetune_confirm import confirm_blocks

    records = services.catalog.get_component_versions([version.manifest[action.component]])
    trained_on = next(iter(records.values())).snapshot_id
    if trained_on is None:
        return action
    reference = services.frame(trained_on)
    seed = policy.planning.seed
    reference = reference.sample(min(len(reference), 2000), random_state=seed)
    recent = window[window[model.target].notna()]
    recent = recent.sample(min(len(recent), 2000), random_state=seed)
    transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
    X_recent = feature_frame(fitted.spec, recent, transforms)
    y_recent = recent[model.target].to_numpy()
    diags = block_diagnostics(
        fitted.estimator,
        X_recent,
        y_recent,
        feature_frame(fitted.spec, reference, transforms),
        reference[model.target].to_numpy(),
        seed=seed,
    )
    planning = policy.planning
    choice = confirm_blocks(
        fitted.estimator, X_recent, y_recent, diags, seed=seed,
        confidence=planning.confidence, min_relative_gain=planning.min_relative_gain,
    )  # fmt: skip
    if not choice.update:
        rationale.append(f"{action.component}: " + "; ".join(choice.reasons))
        return None
    if options.get("lr") is None:
        options["lr"] = min(max(float(choice.lr or 1e-3), budgets.lr_min), budgets.lr_max)
    return replace(
        action,
        reason=f"{action.reason}; " + "; ".join(choice.reasons),
        blocks=choice.blocks,
        options=options,
    )
