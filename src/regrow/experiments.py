"""Experiments: every change to a system, with what it was expected to do and what it did.

The records live in the catalog (:mod:`regrow.catalog.experiments`); this module fills them
from the services that make changes:

* :func:`record_plan`: a stored plan with actions (``regrow plan``, kind ``plan``) or a plan
  of actions given by hand (``Workspace.apply``, kind ``manual``): its rationale, the metrics
  it expects (:func:`plan_expected`), the contingency and tags;
* :func:`record_candidate`: the version the run of a plan produced;
* :func:`record_update`: a partial update run by hand without a plan (``Workspace.update``);
* :func:`record_evaluation`: the evaluation of a candidate, as what actually happened
  (:func:`actual_of`).

The contingency defaults to keeping (or rolling back to) the version the change started from
(:func:`default_contingency`), followed by the plan's own next step when it has one.

>>> print(default_contingency("churn:v3"))
if the evaluation rejects the candidate or it regresses in production, keep (or roll back to)
churn:v3
>>> actual_of_results({"metric": "rmse", "higher_is_better": False, "candidate": 0.9,
...     "baseline": 1.0, "delta": -0.1, "delta_ci": [-0.15, -0.05], "rows": 500},
...     verdict="blessed")["improvement_ci"]
[0.05, 0.15]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from regrow.catalog.experiments import ExperimentRecord, check_contingency, check_tags

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import EvaluationRecord
    from regrow.plan.plan import Plan
    from regrow.run.runner import RunResult

__all__ = [
    "actual_of",
    "actual_of_results",
    "default_contingency",
    "expectation_met",
    "plan_expected",
    "record_candidate",
    "record_earlier_evaluation",
    "record_evaluation",
    "record_plan",
    "record_update",
]

_GATES_PREFIX = "if the candidate fails its gates: "


def default_contingency(version: str, then: str = "") -> str:
    """What happens when a change from ``version`` fails; ``then`` is a next step to add."""
    text = (
        "if the evaluation rejects the candidate or it regresses in production, keep "
        f"(or roll back to) {version}"
    )
    return f"{text}; then {then}" if then else text


def plan_expected(plan: Plan) -> dict[str, Any]:
    """What ``plan`` expects: the loss before and after, the gain with an interval, each
    action's gain, and the estimated CPU cost.

    The gain is the loss before minus after on the probes' held-out rows: the sum of the
    gains of the moves the diagnostics chose. Its interval adds up the bounds of those moves'
    intervals: the spread of a sum is never more than the sum of the spreads, so this interval
    is at least as wide as the true one (exact for one move). A mean or vote ensemble's plan
    expects the full-retrain probe's loss after it, and its interval is the probe's. An
    escalated plan expects the full retrain's loss, which has no interval.
    """
    e = plan.expected
    out: dict[str, Any] = {}
    if "before" in e and "after" in e:
        out.update(
            loss=e.get("loss"),
            before=e["before"],
            after=e["after"],
            gain=round(float(e["before"]) - float(e["after"]), 6),
            on_rows=e.get("on_rows"),
        )
        if "full_retrain" in e:
            out["full_retrain"] = e["full_retrain"]
    chosen = [m["gain"] for m in (plan.diagnosis or {}).get("chosen", ()) if m.get("gain")]
    probe = (plan.signals or {}).get("full_retrain_probe") or {}
    gain = out.get("gain")
    interval = None if plan.escalated or gain is None else _gain_interval(gain, probe, chosen)
    if interval is not None:
        out["gain_interval"] = interval
    out["actions"] = [
        {
            "action": a.describe(),
            "gain": None if a.gain is None else round(a.gain.value, 6),
            "interval": None if a.gain is None else [round(a.gain.low, 6), round(a.gain.high, 6)],
            "cpu_seconds": None if a.cost is None else round(a.cost.cpu_seconds, 4),
        }
        for a in plan.actions
    ]
    out["estimated_cpu_seconds"] = plan.cost.get("estimated_cpu_seconds")
    out["escalated"] = plan.escalated
    out["needs_approval"] = plan.needs_approval
    return out


def _gain_interval(
    gain: float, probe: Mapping[str, Any], chosen: list[Mapping[str, float]]
) -> list[float] | None:
    """The interval of a partial plan's expected ``gain``: the full-retrain probe's when the
    gain is the probe's (a mean or vote ensemble's plan), else the chosen moves' intervals
    added up, when they hold the gain; None when neither is this gain's."""
    if probe.get("gain") and abs(probe["now"] - probe["partial"] - gain) < 1e-5:
        return [round(probe["gain"]["low"], 6), round(probe["gain"]["high"], 6)]
    if not chosen:
        return None
    low, high = sum(g["low"] for g in chosen), sum(g["high"] for g in chosen)
    return [round(low, 6), round(high, 6)] if low - 1e-6 <= gain <= high + 1e-6 else None


def record_plan(
    catalog: Catalog,
    plan: Plan,
    *,
    kind: str = "plan",
    tags: Iterable[str] = (),
    contingency: str | None = None,
) -> ExperimentRecord | None:
    """Record stored ``plan`` as an experiment (None for a plan with no action: it changes
    nothing).

    The plan's rationale and :func:`plan_expected`; ``contingency`` defaults to
    :func:`default_contingency` of the plan's version and its own next step. Recording the
    same plan again returns its experiment, with the new tags added and a new contingency
    given (while it has no candidate).
    """
    labels = check_tags(tags)
    given = check_contingency(contingency) if contingency is not None else None
    if plan.empty:
        return None
    then = plan.contingency.removeprefix(_GATES_PREFIX)
    then = "" if then == "keep the champion" else then  # what the default says already
    record = catalog.experiments.add(
        kind=kind,
        system=plan.system,
        subject_id=plan.id,
        version_id=plan.version_id,
        rationale=plan.rationale,
        expected=plan_expected(plan),
        contingency=given or default_contingency(plan.version, then),
        tags=labels,
    )
    if given is not None and record.contingency != given:
        record = catalog.experiments.set_contingency(record.id, given)
    if any(t not in record.tags for t in labels):
        record = catalog.experiments.tag(record.id, labels)
    return record


def record_candidate(catalog: Catalog, plan_id: str, candidate_id: str) -> list[ExperimentRecord]:
    """Record ``candidate_id`` on the experiments of plan ``plan_id`` (the run produced it)."""
    return [
        catalog.experiments.set_candidate(e.id, candidate_id)
        for e in catalog.experiments.list(subject_id=plan_id)
    ]


def record_update(
    catalog: Catalog,
    result: RunResult,
    *,
    components: Iterable[str],
    note: str = "",
    tags: Iterable[str] = (),
    contingency: str | None = None,
) -> ExperimentRecord | None:
    """Record a partial update run by hand (``Workspace.update``) as a ``manual`` experiment.

    The run is its subject, its parent version the start and its version the candidate. A
    run that produced no new version (nothing changed) is no experiment: None.
    """
    labels = check_tags(tags)
    given = check_contingency(contingency) if contingency is not None else None
    parent_id = result.version.parent_id
    if not result.created_version or parent_id is None:
        return None
    parent = catalog.get_system_version(parent_id)
    refit = list(components)
    return catalog.experiments.add(
        kind="manual",
        system=result.version.system,
        subject_id=result.run.id,
        version_id=parent.id,
        candidate_id=result.version.id,
        rationale=[note or f"refit {', '.join(refit)} by hand"],
        expected={
            "refit": refit,
            "trained": result.trained,
            "actual_cpu_seconds": round(sum(o.cpu_seconds for o in result.components.values()), 4),
        },
        contingency=given or default_contingency(parent.ref),
        tags=labels,
    )


def actual_of_results(
    results: Mapping[str, Any], *, verdict: str, reasons: Iterable[str] = ()
) -> dict[str, Any]:
    """The ``actual`` of an evaluation's stored ``results``: the metric, both values, the
    improvement (positive is better, whichever way the metric goes) with its interval, and
    ``outcome``: ``improved`` / ``regressed`` when the interval lies above / below 0."""
    higher = bool(results.get("higher_is_better", True))
    delta, ci = results.get("delta"), results.get("delta_ci")
    improvement = None if delta is None else (delta if higher else -delta)
    interval = None
    if ci is not None and None not in ci:
        interval = [ci[0], ci[1]] if higher else [-ci[1], -ci[0]]
    outcome = None
    if interval is not None:
        outcome = (
            "improved"
            if interval[0] > 0
            else "regressed"
            if interval[1] < 0
            else "no significant change"
        )
    return {
        "metric": results.get("metric"),
        "higher_is_better": higher,
        "candidate": results.get("candidate"),
        "baseline": results.get("baseline"),
        "delta": delta,
        "delta_ci": ci,
        "improvement": improvement,
        "improvement_ci": interval,
        "rows": results.get("rows"),
        "outcome": outcome,
        "verdict": verdict,
        "reasons": list(reasons),
    }


def actual_of(evaluation: EvaluationRecord) -> dict[str, Any]:
    """The ``actual`` an experiment records for ``evaluation`` (see :func:`actual_of_results`),
    with the evaluation's baseline and snapshot."""
    return {
        **actual_of_results(
            evaluation.results, verdict=evaluation.verdict, reasons=evaluation.reasons
        ),
        "baseline_id": evaluation.baseline_id,
        "snapshot_id": evaluation.snapshot_id,
    }


def record_evaluation(catalog: Catalog, evaluation: EvaluationRecord) -> list[ExperimentRecord]:
    """Fill ``actual`` and ``evaluation_id`` of every experiment whose candidate
    ``evaluation`` evaluated; return the experiments updated.

    The newest evaluation wins, except that one against the version the experiment started
    from is not replaced by one against another baseline (that one is the like-for-like
    comparison).
    """
    updated = []
    for e in catalog.experiments.list(candidate_id=evaluation.candidate_id, limit=1000):
        kept = e.actual is not None and e.actual.get("baseline_id") == e.version_id
        if kept and evaluation.baseline_id != e.version_id:
            continue
        updated.append(
            catalog.experiments.set_actual(
                e.id, evaluation_id=evaluation.id, actual=actual_of(evaluation)
            )
        )
    return updated


def record_earlier_evaluation(catalog: Catalog, ref: str) -> ExperimentRecord | None:
    """Fill ``actual`` and ``evaluation_id`` of experiment ``ref``, made after its candidate
    was evaluated (a rollout of it), from the newest evaluation against the version it
    started from, else the newest: the like-for-like one, as :func:`record_evaluation`
    keeps. None when the candidate has no evaluation."""
    record = catalog.experiments.get(ref)
    made = catalog.list_evaluations(record.candidate_id) if record.candidate_id else []
    if not made:
        return None
    chosen = next((e for e in made if e.baseline_id == record.version_id), made[0])
    return catalog.experiments.set_actual(
        record.id, evaluation_id=chosen.id, actual=actual_of(chosen)
    )


def expectation_met(record: ExperimentRecord) -> bool | None:
    """Whether the evaluation bore the experiment out; None before an evaluation against a
    baseline.

    An experiment that expected a gain is borne out when the candidate improved (the
    improvement's interval lies above 0); one that expected no measured gain (a change made
    by hand, say) when the candidate did not regress.
    """
    outcome = (record.actual or {}).get("outcome")
    if outcome is None:
        return None
    if (record.expected.get("gain") or 0) > 0:
        return bool(outcome == "improved")
    return bool(outcome != "regressed")
