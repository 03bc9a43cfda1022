"""The planner end to end: signals -> diagnostics -> plan -> run, on a known scenario."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regrow import Workspace
from regrow.errors import PlanError
from regrow.plan.actions import AddMember, Continue, LeafRefit, Refit, RetireMember, Reweight
from regrow.plan.costs import CostModel
from regrow.plan.plan import Plan, diff_plans
from regrow.plan.policy import Policy
from regrow.planning import cost_model

from .conftest import build_system, make


def _store(ws: Workspace, plan: Plan) -> Plan:
    ws.catalog.add_plan(id=plan.id, system=plan.system, version_id=plan.version_id,
                        window_id=plan.window, body=plan.to_dict())  # fmt: skip
    return plan


def _hand_plan(ws: Workspace, ref: str, window: str, *actions: object) -> Plan:
    v = ws.catalog.get_system_version(ref)
    return _store(ws, Plan(system=v.system, version=v.ref, version_id=v.id,
                           window=ws.catalog.get_snapshot(window).id,
                           actions=tuple(actions)))  # type: ignore[arg-type]  # fmt: skip


def test_one_changed_group_refits_that_member_and_restacks(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    plan = ws.plan(v1, "alpha-changed")
    assert [(a.kind, a.component) for a in plan.actions] == [
        ("refit", "alpha"),
        ("reweight", "combine"),
    ]
    refit = plan.actions[0]
    assert refit.gain is not None
    assert refit.gain.low > 0
    assert refit.cost is not None
    assert refit.cost.cpu_seconds > 0
    assert not plan.escalated
    assert not plan.needs_approval
    assert "full retrain" in plan.contingency
    assert plan.expected["after"] < plan.expected["before"]
    assert any(line.startswith("chosen: update alpha") for line in plan.rationale)
    assert any("not chosen" in line and "beta" in line for line in plan.rationale)
    stored = ws.catalog.get_plan(plan.id[:10])
    assert stored.status == "proposed"
    assert Plan.from_dict(stored.body).id == plan.id
    assert ws.plan(v1, "alpha-changed").id == plan.id  # same inputs: the same plan

    ran = ws.run_plan(plan.id)
    v1_manifest = ws.catalog.get_system_version(v1).manifest
    new = ran.result.version.manifest
    assert ran.result.trained == ["alpha", "combine"]
    assert {n: new[n] for n in ("beta", "gamma")} == {n: v1_manifest[n] for n in ("beta", "gamma")}
    assert ws.catalog.get_plan(plan.id).status == "executed"
    outcome = ws.catalog.get_plan(plan.id).outcome
    assert outcome["version"] == ran.result.version.ref
    assert outcome["actual_cpu_seconds"] > 0
    assert ran.result.run.params["estimated_cpu_seconds"] == pytest.approx(
        plan.cost["estimated_cpu_seconds"]
    )
    test = make(1500, 9, frozenset({"alpha"}))
    mse = lambda ref: np.mean((ws.load(ref).predict(test) - test.y) ** 2)  # noqa: E731
    assert mse(ran.result.version.ref) < 0.5 * mse(v1)
    with pytest.raises(PlanError, match=f"ran already: it made {ran.result.version.ref}"):
        ws.run_plan(plan.id)


def test_a_quiet_window_gives_an_empty_plan(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    plan = ws.plan(v1, "quiet")
    assert plan.empty
    assert not plan.escalated
    assert plan.rationale[-1].startswith("nothing to update")
    with pytest.raises(PlanError, match="has no actions"):
        ws.run_plan(plan.id)


def test_every_group_changed_escalates_to_a_full_retrain_awaiting_approval(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    plan = ws.plan(v1, "all-changed")
    assert plan.escalated
    assert [a.kind for a in plan.actions] == ["full-retrain"]
    assert "escalation.max_degraded_members" in plan.actions[0].reason
    assert plan.needs_approval
    assert plan.actions[0].approval
    with pytest.raises(PlanError, match="needs approval for full-retrain"):
        ws.run_plan(plan.id)
    ran = ws.run_plan(plan.id, approve=True)
    assert set(ran.result.trained) == {"alpha", "beta", "gamma", "combine"}


def test_broad_feature_drift_escalates_and_names_the_rule(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    shifted = make(1200, 6)
    for col in ("a1", "b1", "c1", "a2"):
        shifted[col] = shifted[col] + 1.5
    window = ws.snapshot(shifted, name="shifted")
    strict = Policy.from_dict({"escalation": {"max_drifted_share": 0.5}})
    plan = ws.plan(v1, window, policy=strict)
    assert plan.signals["drifted_share"] > 0.5
    assert plan.escalated
    assert "escalation.max_drifted_share" in plan.actions[0].reason
    lenient = ws.plan(v1, window, policy=Policy.from_dict(
        {"escalation": {"max_drifted_share": 1.0}}))  # fmt: skip
    assert not any("max_drifted_share" in a.reason for a in lenient.actions)
    assert lenient.id != plan.id
    assert any("policy sections changed: escalation" in line for line in diff_plans(plan, lenient))


def test_an_unlabelled_window_plans_nothing_and_says_labels_are_needed(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    plan = ws.plan(v1, "unlabelled", record=False)
    assert plan.empty
    assert plan.diagnosis is None
    assert any("labelled rows" in line for line in plan.rationale)
    with pytest.raises(LookupError):
        ws.catalog.get_plan(plan.id)


def test_a_plan_over_budget_needs_approval(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    tight = Policy.from_dict({"budgets": {"max_cpu_seconds": 1e-6}})
    plan = ws.plan(v1, "alpha-changed", policy=tight, record=False)
    assert plan.needs_approval
    assert not any(a.approval for a in plan.actions)
    assert any("budgets.max_cpu_seconds" in line for line in plan.rationale)


def test_hand_written_actions_run_and_never_touch_other_components(
    tmp_path: Path,
) -> None:
    with Workspace.init(tmp_path) as ws:
        ref = ws.snapshot(make(2000, 1), name="old")
        v1 = ws.train(build_system("mean"), ref).version.ref
        ws.snapshot(make(1000, 2, frozenset({"alpha"})), name="new")
        before = ws.catalog.get_system_version(v1).manifest

        plan = _hand_plan(ws, v1, "new", Continue("alpha", extra=15))
        ran = ws.run_plan(plan)
        assert ran.result.trained == ["alpha", "combine"]
        after = ran.result.version.manifest
        assert after["beta"] == before["beta"]
        assert after["gamma"] == before["gamma"]
        alpha = ws.catalog.get_component_version(after["alpha"])
        assert alpha.parts["update"]["action"] == "continue"
        assert (
            ws.load(ran.result.version.ref).components["alpha"].estimator.booster_.num_trees() == 75
        )
        assert all(s.fresh for s in ws.status(ran.result.version.ref))

        plan = _hand_plan(ws, v1, "new", AddMember("alpha", new_name="alpha_2"),
                          RetireMember("gamma"),
                          Reweight("combine", weights={"alpha": 1.0, "alpha_2": 2.0,
                                                       "beta": 1.0}))  # fmt: skip
        ran = ws.run_plan(plan, approve=True)
        assert set(ran.result.version.manifest) == {"alpha", "alpha_2", "beta", "combine"}
        combine = ws.load(ran.result.version.ref).components["combine"].spec
        assert combine.weights == {"alpha": 1.0, "alpha_2": 2.0, "beta": 1.0}
        assert ran.result.trained == ["alpha_2", "combine"]
        assert ran.result.version.manifest["alpha"] == before["alpha"]

        with pytest.raises(PlanError, match="add-member: the system already has"):
            _hand_plan(ws, v1, "new", AddMember("alpha", new_name="beta")).actions[0].check(
                Policy.default(), build_system("mean")
            )
        with pytest.raises(PlanError, match="cannot retire 'alpha': it is the system's only"):
            RetireMember("alpha").check(Policy.default(), _only_alpha())


def _only_alpha():  # type: ignore[no-untyped-def]
    from regrow import Member, System

    sys = build_system("mean")
    return System("x", target="y", task="regression", components=[
        Member("alpha", sys["alpha"].estimator, inputs=["a1"])])  # fmt: skip


def test_a_failed_plan_is_marked_and_can_be_run_again(tmp_path: Path) -> None:
    with Workspace.init(tmp_path) as ws:
        ref = ws.snapshot(make(800, 1), name="old")
        v1 = ws.train(build_system("mean"), ref).version.ref
        ws.snapshot(make(400, 2).assign(a1=np.nan), name="broken", check_schema=False)
        plan = _hand_plan(ws, v1, "broken", Refit("alpha"), Continue("beta", extra=5))
        ws.catalog.move_plan(plan.id, expected="proposed", status="failed",
                             outcome={"error": "simulated"})  # fmt: skip
        ran = ws.run_plan(plan.id)  # a failed plan may run again
        assert ws.catalog.get_plan(plan.id).status == "executed"
        assert ran.result.trained == ["alpha", "beta", "combine"]


def test_the_cost_model_learns_from_the_runs_it_records(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    system = ws.system(v1)
    learned = cost_model(ws, system)
    cls = system["alpha"].recipe()["class"]
    est = learned.estimate("alpha", cls, "fit", rows=1000)
    assert "earlier fit run(s) of alpha" in est.basis
    assert CostModel().estimate("alpha", cls, "fit", rows=1000).basis == "prior"
    model = CostModel()
    for _ in range(5):
        model.observe("alpha", cls, "fit", rows=1000, cpu_seconds=10.02)
    # Five observations of 0.01 s/row outweigh the prior (one pseudo-observation).
    assert model.estimate("alpha", cls, "fit", rows=2000).cpu_seconds == pytest.approx(
        0.02 + 2000 * (5 * 0.01 + 6e-5) / 6, rel=1e-6
    )
    assert model.estimate("beta", cls, "fit", rows=10).basis.endswith("of LGBMRegressor")
    cont = model.estimate("alpha", cls, "continue", rows=1000)
    assert cont.basis == "fits of alpha, scaled"
    assert cont.cpu_seconds < est.cpu_seconds * 1000


def test_a_components_new_parameters_are_estimated_from_runs_with_them() -> None:
    # a plan on a version whose member fits 40x dearer (4,000 trees, not 100) was estimated
    # from the median of the member's cheaper runs: 0.61 CPU s for a run that took 45
    cls = "lightgbm.LGBMRegressor"
    small = {"class": cls, "params": {"n_estimators": 100}}
    large = {"class": cls, "params": {"n_estimators": 4000}}
    model = CostModel()
    for _ in range(3):
        model.observe("lgb", cls, "fit", rows=1000, cpu_seconds=0.12, recipe=small)
    model.observe("lgb", cls, "fit", rows=1000, cpu_seconds=4.02, recipe=large)
    dear = model.estimate("lgb", cls, "fit", rows=1000, recipe=large)
    assert dear.basis == "1 earlier fit run(s) of lgb with these parameters"
    assert dear.cpu_seconds > 1.0
    cheap = model.estimate("lgb", cls, "fit", rows=1000, recipe=small)
    assert cheap.cpu_seconds < 0.2
    unseen = {"class": cls, "params": {"n_estimators": 50}}  # no run with these: the median
    assert model.estimate("lgb", cls, "fit", rows=1000, recipe=unseen).basis == (
        "4 earlier fit run(s) of lgb"
    )


def test_plans_diff_names_added_removed_and_changed_actions() -> None:
    base = {"system": "s", "version": "s:v1", "version_id": "a" * 32, "window": "w" * 64}
    a = Plan(**base, actions=(Refit("x"), Continue("y", extra=10)))  # type: ignore[arg-type]
    b = Plan(**base, actions=(Continue("y", extra=20), Refit("z")), escalated=True)  # type: ignore[arg-type]
    assert diff_plans(a, b) == [
        "~ continue y (extra=10) -> continue y (extra=20)",
        "+ refit z",
        "- refit x",
        "~ escalated: no -> yes",
    ]
    assert diff_plans(a, replace(a)) == []


def test_a_large_estimated_loss_increase_escalates(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    shifted = make(1200, 7)
    shifted["a1"] = shifted["a1"] * 2.5  # alpha's input spreads out: its loss rises
    window = ws.snapshot(shifted, name="spread")
    touchy = Policy.from_dict({"escalation": {"max_loss_increase": 0.01}})
    plan = ws.plan(v1, window, policy=touchy, record=False)
    assert "a1" in plan.signals["drifted_columns"]
    assert plan.signals["estimated_loss_increase"] > 0.01
    assert plan.escalated
    assert "escalation.max_loss_increase" in plan.actions[0].reason
    lenient = Policy.from_dict({"escalation": {"max_loss_increase": 100.0}})
    assert not ws.plan(v1, window, policy=lenient, record=False).escalated


def test_leaf_refit_runs_through_a_plan(tmp_path: Path) -> None:
    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(build_system("mean"), ws.snapshot(make(1500, 1), name="old")).version.ref
        ws.snapshot(make(800, 2, frozenset({"beta"})), name="new")
        plan = _hand_plan(ws, v1, "new", LeafRefit("beta", decay_rate=0.0))
        ran = ws.run_plan(plan)
        assert ran.result.trained == ["beta", "combine"]
        old = ws.load(v1).components["beta"].estimator.booster_
        new = ws.load(ran.result.version.ref).components["beta"].estimator.booster_
        assert new.num_trees() == old.num_trees()
        assert new.model_to_string() != old.model_to_string()
        with pytest.raises(PlanError, match="decay_rate must be in"):
            LeafRefit("beta", decay_rate=0.9999 + 1).check(Policy.default())


def _tied(rows: int, seed: int, *, relabel: bool) -> pd.DataFrame:
    """Rows whose marginals are unchanged (every column still N(0, 1)) but whose b2 follows b1
    and c2 mirrors c1; ``relabel``: the target recomputed from the tied columns, so the
    system's concept still holds, else the old target beside the new columns."""
    tied = make(rows, seed)
    tied["b2"] = tied["b1"] * 0.98 + 0.2 * np.random.default_rng(0).normal(size=len(tied))
    tied["c2"] = -tied["c1"]
    if relabel:
        a, b = 1.5 * np.sin(2 * tied.a1), 1.2 * tied.b1 * (tied.b1 > 0)
        noise = 0.3 * np.random.default_rng(1).normal(size=rows)
        tied["y"] = a + 0.5 * tied.a2 + b - 0.5 * tied.b2 + 0.8 * tied.c1 * tied.c2 + noise
    return tied


def test_multivariate_drift_without_a_univariate_explanation_escalates(trained) -> None:  # type: ignore[no-untyped-def]
    ws, v1, _ = trained
    tied = _tied(1600, 8, relabel=False).drop(columns=["y"])
    plan = ws.plan(v1, ws.snapshot(tied, name="tied-blind"), record=False)
    assert plan.signals["drifted_columns"] == []
    assert plan.signals["multivariate_auc"]["low"] > 0.6
    # without labels, what the classifier finds is all there is; and a full retrain would
    # have no target to learn: it is called for, and waits for the labels
    (needs,) = plan.signals["full_retrain_needs_labels"]
    assert "escalation.unexplained_multivariate" in needs
    assert not plan.escalated
    assert not plan.actions
    assert any(line.startswith("a full retrain is called for (") for line in plan.rationale)
    quiet = make(1600, 3).drop(columns=["y"])
    unlabelled = ws.plan(v1, ws.snapshot(quiet, name="quiet-blind"), record=False)
    assert unlabelled.signals["multivariate_auc"]["auc"] < 0.6
    assert any(line.startswith("no multivariate drift") for line in unlabelled.rationale)
    labelled = ws.plan(v1, "quiet", record=False)  # nothing else weighed a full retrain
    assert labelled.signals["multivariate_auc"]["auc"] < 0.6


def test_a_labelled_plan_whose_probes_weighed_a_full_retrain_skips_the_multivariate_check(
    trained,
) -> None:  # type: ignore[no-untyped-def]
    """The same tied columns with their (old) labels: the probes weigh what a full retrain
    would win on those rows against the plan, so the classifier cannot change it."""
    ws, v1, _ = trained
    plan = ws.plan(v1, ws.snapshot(_tied(1600, 8, relabel=False), name="tied"), record=False)
    assert plan.signals["drifted_columns"] == []
    assert "multivariate_auc" not in plan.signals
    assert "multivariate check" not in plan.timings
    assert not plan.escalated
    assert plan.actions  # the probes found what the tied columns cost, and a member's refit
    assert any(r.startswith("a full retrain is not expected to do better") for r in plan.rationale)
    assert any(r.startswith("no multivariate check: the probes weighed") for r in plan.rationale)


def test_a_multivariate_drift_the_labels_do_not_price_is_not_escalated(trained) -> None:  # type: ignore[no-untyped-def]
    """When the probes weighed no full retrain (a plan with no update and no loss raised), the
    check runs; what it finds escalates a labelled window only if the probes' evidence for a
    full retrain pays, which is asked for only then."""
    from regrow.plan.policy import Policy
    from regrow.planning import _multivariate
    from regrow.progress import Timer

    ws, v1, _ = trained
    version = ws.catalog.get_system_version(v1)
    frame = _tied(1600, 9, relabel=True)
    read = [c for c in frame.columns if c != "y"]
    asked: list[int] = []

    def evidence(pays: bool) -> tuple[bool, str]:
        asked.append(1)
        return pays, f"the probes find 0.01 of the squared_error 0.3 to win back ({pays})"

    for pays in (False, True):
        signals: dict[str, object] = {"drifted_columns": []}
        rationale: list[str] = []
        escalate: list[str] = []
        _multivariate(
            ws._services(), version, frame, read, Policy.default(), Timer(), signals,
            rationale, escalate, labelled=lambda p=pays: evidence(p),
        )  # fmt: skip
        assert signals["multivariate_auc"]["low"] > 0.6  # type: ignore[index]
        if pays:
            assert "and on the labelled rows" in escalate[0]
        else:
            assert escalate == []
            assert "but not escalated: on the labelled rows" in rationale[-1]
    assert len(asked) == 2
