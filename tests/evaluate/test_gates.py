"""Each gate's judgement on evidence built to pass or fail it, and the refusals of bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from regrow import Member, System
from regrow.catalog.store import open_store
from regrow.errors import DataError, PolicyError
from regrow.evaluate.evaluation import judge
from regrow.evaluate.gates import (
    Calibration,
    Coverage,
    DataQuality,
    Fairness,
    GateContext,
    GateResult,
    HeldOut,
    Improvement,
    Latency,
    Signature,
    Size,
    SliceRegression,
    Stability,
    verdict,
)
from regrow.evaluate.gates.calibration import ece
from regrow.evaluate.gates.fairness import _draws
from regrow.evaluate.metrics import METRICS
from regrow.model import FittedSystem
from regrow.monitor.profile import Profile
from regrow.plan.policy import Policy

from .conftest import Toy, classifier, fit, make_rows


def with_scores(
    toy: Toy, candidate: np.ndarray, baseline: np.ndarray, **fields: object
) -> GateContext:
    """A context whose scores are given (to build the evidence a gate must judge)."""
    ctx = toy.context(**fields)
    return GateContext(
        candidate=ctx.candidate, baseline=ctx.baseline, frame=ctx.frame, metric=ctx.metric,
        candidate_scores=candidate, baseline_scores=baseline, slices=ctx.slices,
        n_boot=ctx.n_boot, seed=ctx.seed,
    )  # fmt: skip


# -- improvement and slices -------------------------------------------------------------------


def test_improvement_passes_a_better_candidate_and_fails_an_equal_one(toy: Toy) -> None:
    better = Improvement().check(toy.context())
    assert better.status == "pass"
    assert better.interval is not None
    assert better.interval[0] > 0
    same = toy.context()
    equal = Improvement().check(with_scores(toy, same.baseline_scores, same.baseline_scores))  # type: ignore[arg-type]
    assert equal.status == "fail"
    assert equal.interval == (0.0, 0.0)
    assert "does not lie above 0.0" in equal.why


def test_relative_improvement_is_a_share_of_the_baseline(toy: Toy) -> None:
    ctx = toy.context()
    absolute = Improvement().check(ctx)
    relative = Improvement(min=0.5, relative=True).check(ctx)
    assert relative.value == pytest.approx(absolute.value / relative.details["baseline"])  # type: ignore[operator]
    assert relative.status == "fail"  # not 50% better
    assert "relative roc_auc improvement" in relative.why


def test_a_slice_worse_than_the_limit_fails_naming_it(toy: Toy) -> None:
    ctx = toy.context()
    base = ctx.baseline_scores
    assert base is not None
    worse = base.copy()
    rows = (toy.evaluation["region"] == "north").to_numpy()
    rng = np.random.default_rng(0)
    worse[rows] = rng.permutation(worse[rows])  # no signal left on the north slice
    result = SliceRegression(max=0.02).check(with_scores(toy, worse, base))
    assert result.status == "fail"
    assert "slice 'north' is worse by" in result.why
    assert result.details["worst"] == "north"
    low, high = result.details["slices"]["north"]["interval"]
    assert low <= result.value <= high  # type: ignore[operator]


def test_no_slice_passes_and_says_so(toy: Toy) -> None:
    result = SliceRegression().check(toy.context(slices={}))
    assert result.status == "pass"
    assert "no slices" in result.why


# -- stability --------------------------------------------------------------------------------


def test_stability_fails_a_candidate_that_forgot_the_reference_period(toy: Toy) -> None:
    forgotten = toy.reference.assign(x2=np.random.default_rng(5).normal(0, 3, len(toy.reference)))
    held = HeldOut(forgotten, "rows where x2 means nothing", ("toy:v1",))
    result = Stability(margin=0.01).check(toy.context(reference_rows=lambda name: held))
    assert result.status == "fail"
    assert result.interval is not None
    assert result.interval[1] < -0.01
    assert "rows where x2 means nothing" in result.why
    assert "toy:v1" in result.why


def test_stability_passes_on_rows_like_the_reference_and_asks_for_rows_without_them(
    toy: Toy,
) -> None:
    assert Stability().check(toy.context()).status == "pass"
    missing = Stability(snapshot="old").check(toy.context(reference_rows=lambda name: None))
    assert missing.status == "inconclusive"
    assert "snapshot 'old'" in missing.why


# -- fairness ---------------------------------------------------------------------------------


def test_fairness_values_are_fairlearns_and_resamples_weigh_rows(toy: Toy) -> None:
    ctx = toy.context()
    result = Fairness(sensitive="group", max_difference=0.5).check(ctx)
    y = (toy.evaluation["y"] == 1).to_numpy().astype(int)
    decided = (ctx.candidate_scores[:, 1] >= 0.5).astype(int)
    groups = toy.evaluation["group"]
    metrics = result.details["metrics"]
    assert metrics["demographic_parity"]["candidate"] == pytest.approx(
        demographic_parity_difference(y, decided, sensitive_features=groups)
    )
    assert metrics["equalized_odds"]["candidate"] == pytest.approx(
        equalized_odds_difference(y, decided, sensitive_features=groups)
    )
    # Each resample's differences are fairlearn's under that resample's row weights.
    draws = _draws(ctx, y, {"candidate": decided}, groups.reset_index(drop=True),
                   ("demographic_parity", "equalized_odds"))  # fmt: skip
    weights = next(iter(ctx.resamples))
    for b in range(3):
        w = weights[b].astype(float)
        assert draws["candidate"]["demographic_parity"][b] == pytest.approx(
            demographic_parity_difference(y, decided, sensitive_features=groups, sample_weight=w)
        )
        assert draws["candidate"]["equalized_odds"][b] == pytest.approx(
            equalized_odds_difference(y, decided, sensitive_features=groups, sample_weight=w)
        )


def test_fairness_fails_decisions_that_follow_the_group(toy: Toy) -> None:
    ctx = toy.context()
    unfair = np.where((toy.evaluation["group"] == "b").to_numpy(), 0.9, 0.1)
    proba = np.column_stack([1 - unfair, unfair])
    base = ctx.baseline_scores
    assert base is not None
    result = Fairness(sensitive="group", max_difference=0.1).check(with_scores(toy, proba, base))
    assert result.status == "fail"
    assert "demographic parity difference 1.0000" in result.why
    assert "rose by" in result.why  # and it is worse than the baseline's


def test_fairness_refuses_a_sensitive_column_the_rows_lack(toy: Toy) -> None:
    with pytest.raises(DataError, match=r"no sensitive column 'groupe'.*did you mean 'group'"):
        Fairness(sensitive="groupe").check(toy.context())


def test_fairness_needs_the_favourable_class_of_a_multiclass_model() -> None:
    rows = make_rows(600, 4).assign(y=lambda f: pd.cut(f["x1"], 3, labels=[0, 1, 2]).astype(int))
    model = fit(classifier(["x1", "x2"]), rows, "three:v1")
    ctx = GateContext.of(model, None, rows, n_boot=50)
    unsure = Fairness(sensitive="group").check(ctx)
    assert unsure.status == "inconclusive"
    assert "positive" in unsure.why
    named = Fairness(sensitive="group", positive=2, max_difference=1.0).check(ctx)
    assert named.status == "pass"
    with pytest.raises(DataError, match="favourable class 7"):
        Fairness(sensitive="group", positive=7).check(ctx)


# -- calibration ------------------------------------------------------------------------------


def test_ece_is_the_weighted_gap_per_bin() -> None:
    hits = np.array([1, 0, 1, 1, 0, 0])
    conf = np.array([0.95, 0.05, 0.7, 0.65, 0.62, 0.3])
    # bins of 0.1: 0.95 | 0.05 | 0.7 | 0.65 and 0.62 together | 0.3
    by_hand = (abs(1 - 0.95) + abs(0 - 0.05) + abs(1 - 0.7) + abs(1 - 1.27) + abs(0 - 0.3)) / 6
    assert ece(hits, conf, bins=10)[0] == pytest.approx(by_hand)


def test_calibration_passes_honest_probabilities_and_fails_overconfident_ones(toy: Toy) -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 20_000)
    rows = pd.DataFrame({"x1": rng.normal(size=p.size), "x2": 0.0, "noise": 0.0, "group": "a",
                         "region": "north", "y": (rng.random(p.size) < p).astype(int)})  # fmt: skip
    honest = np.column_stack([1 - p, p])
    sharp = np.clip((p - 0.5) * 3 + 0.5, 0.001, 0.999)
    ctx = GateContext.of(toy.candidate, toy.baseline, rows, n_boot=100)
    judged = [
        Calibration(max_ece=0.03).check(dataclasses.replace(ctx, baseline=None, candidate_scores=s))
        for s in (honest, np.column_stack([1 - sharp, sharp]))
    ]
    assert [r.status for r in judged] == ["pass", "fail"]
    assert judged[1].value == pytest.approx(ece(rows["y"].to_numpy(), sharp)[0])


# -- data quality, coverage, signature ---------------------------------------------------------


def test_data_quality_names_each_column_and_check_that_fails(toy: Toy) -> None:
    bad = toy.evaluation.copy()
    bad.loc[: len(bad) // 4, "x1"] = np.nan  # nulls
    bad.loc[len(bad) // 2 :, "x2"] = 50.0  # far outside the reference's range
    ctx = dataclasses.replace(toy.context(), evaluation_profile=Profile.of(bad))
    result = DataQuality().check(ctx)
    assert result.status == "fail"
    found = {(f["column"], f["check"]) for f in result.details["findings"]}
    assert found == {("x1", "nulls"), ("x2", "range")}
    assert "the evaluation snapshot: 'x1' null rate rose by" in result.why


def test_data_quality_finds_unseen_categories_and_missing_columns() -> None:
    train = make_rows(500, 1)
    system = System("r", target="y", task="regression",
                    components=[Member("ols", _onehot(), inputs=["x1", "region"])])  # fmt: skip
    model = fit(system, train, "r:v1")
    fresh = make_rows(300, 2).assign(region="west").drop(columns=["x1"])
    reference = Profile.of(train).columns
    ctx = GateContext(
        candidate=model, baseline=None, frame=train, metric=METRICS["rmse"],
        candidate_scores=np.zeros(len(train)),
        candidate_reference={c: reference[c] for c in ("x1", "region")},
        evaluation_profile=Profile.of(fresh),
    )  # fmt: skip
    result = DataQuality().check(ctx)
    found = {(f["column"], f["check"]) for f in result.details["findings"]}
    assert found == {("x1", "schema"), ("region", "unseen")}
    assert "'west'" in result.why


def test_coverage_names_the_unprofiled_column_and_its_readers(toy: Toy) -> None:
    profile = toy.train_profile.columns
    ok = Coverage().check(toy.context())
    assert ok.status == "pass"
    short = Coverage().check(toy.context(candidate_reference={"x1": profile["x1"]}))
    assert short.status == "fail"
    assert "'x2' (no reference profile; read by lr, lr2)" in short.why
    assert (
        Coverage(exclude=("x2",))
        .check(toy.context(candidate_reference={"x1": profile["x1"]}))
        .status
        == "pass"
    )


def test_signature_fails_a_new_input_unless_the_policy_allows_it(toy: Toy) -> None:
    changed = Signature().check(toy.context())
    assert changed.status == "fail"
    assert "reads new columns ['x2']" in changed.why
    assert Signature(allow=("inputs",)).check(toy.context()).status == "pass"
    same = GateContext.of(toy.candidate, toy.candidate, toy.evaluation, n_boot=20)
    assert Signature().check(same).status == "pass"


# -- latency and size -------------------------------------------------------------------------


def test_latency_is_judged_against_its_budget(toy: Toy) -> None:
    ctx = toy.context()
    fast = Latency(max_seconds=60, runs=3, rows=300).check(ctx)
    assert fast.status == "pass"
    assert fast.interval is not None
    assert fast.interval[0] <= fast.value <= fast.interval[1]  # type: ignore[operator]
    assert Latency(max_seconds=1e-9, runs=1, rows=50).check(ctx).status == "fail"


def test_size_reads_the_stores_bytes_and_falls_back_to_pickled_bytes(toy: Toy) -> None:
    store = open_store("memory://gates-size-test")
    blobs = {name: bytes(1000 * (i + 1)) for i, name in enumerate(toy.candidate.components)}
    keys = {name: store.put(data) for name, data in blobs.items()}
    stored = FittedSystem(toy.candidate.spec, toy.candidate.components, ref="toy:v2",
                          artifacts=keys)  # fmt: skip
    ctx = GateContext.of(stored, None, toy.evaluation, n_boot=20, store=store)
    result = Size(max_bytes=sum(len(b) for b in blobs.values())).check(ctx)
    assert result.value == sum(len(b) for b in blobs.values())
    assert result.status == "pass"
    assert Size(max_bytes=100).check(ctx).status == "fail"
    in_memory = Size().check(toy.context())  # no store: the bytes they would be stored as
    assert in_memory.value
    assert in_memory.value > 100


# -- the verdict ------------------------------------------------------------------------------


def test_no_gate_blesses_nothing_and_every_gate_must_pass(toy: Toy) -> None:
    ctx = toy.context()
    none = judge(ctx, [])
    assert none.verdict == "none"
    assert "no gate is configured" in none.reasons[0]
    assert judge(ctx, [Improvement(), SliceRegression()]).verdict == "blessed"
    assert judge(ctx, [Improvement(), Signature()]).verdict == "rejected"
    unsure = judge(toy.context(baseline=False), [Improvement()])
    assert unsure.verdict == "none"
    assert "no baseline" in unsure.reasons[0]


@pytest.mark.parametrize(
    ("policy", "expected"), [("none", "none"), ("ignore", "blessed"), ("reject", "rejected")]
)
def test_an_inconclusive_gate_decides_as_the_policy_says(policy: str, expected: str) -> None:
    results = [GateResult("a", "pass", "ok"), GateResult("b", "inconclusive", "too few rows")]
    decided, reasons = verdict(results, inconclusive=policy)  # type: ignore[arg-type]
    assert decided == expected
    assert any("too few rows" in r for r in reasons)


def test_ignoring_inconclusive_gates_does_not_ignore_too_few_rows(toy: Toy) -> None:
    three = toy.context(frame=toy.evaluation.iloc[:3])
    gates = [Improvement(), Signature(allow=("inputs",))]
    result = judge(three, gates, inconclusive="ignore")  # type: ignore[list-item]
    assert [g.status for g in result.gates] == ["inconclusive", "pass"]
    assert result.verdict == "none"
    assert result.reasons == (
        "improvement: inconclusive (too few rows: not ignored): 3 rows: too few to tell; at "
        "least 30 are needed (gates.checks.improvement.min_rows)",
    )
    # a gate that does not apply is still ignored as the policy says
    no_baseline = judge(toy.context(baseline=False), [Improvement(), Calibration(max_ece=0.5)],
                        inconclusive="ignore")  # fmt: skip
    assert no_baseline.verdict == "blessed"


def test_a_result_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        GateResult("a", "maybe", "?")  # type: ignore[arg-type]


def _onehot() -> object:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["region"]), remainder="passthrough"
    )
    return make_pipeline(encode, LinearRegression())


# -- too few rows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gate",
    [Improvement(), SliceRegression(), Stability(), Fairness(sensitive="group"), Calibration()],
    ids=lambda g: g.name,
)
def test_an_interval_gate_on_too_few_rows_cannot_tell_and_says_why(toy: Toy, gate: object) -> None:
    three = toy.evaluation.iloc[:3]
    held = HeldOut(toy.reference.iloc[:3], "three reference rows")
    ctx = toy.context(frame=three, reference_rows=lambda name: held)
    result = gate.check(ctx)  # type: ignore[attr-defined]
    assert result.status == "inconclusive"
    assert "3 rows" in result.why
    assert "too few to tell; at least 30 are needed" in result.why
    assert f"gates.checks.{result.name}.min_rows" in result.why
    assert result.interval is None  # no interval over three rows to mislead a reader
    assert judge(ctx, [gate]).verdict == "none"  # type: ignore[list-item]


def test_three_rows_that_favour_the_candidate_do_not_bless_it(toy: Toy) -> None:
    ctx = toy.context()
    y = toy.evaluation["y"].to_numpy()
    # Three rows on which the candidate is right and the baseline wrong, with both classes:
    # the bootstrap over them alone puts the whole interval above 0.
    right = np.flatnonzero(y == 1)[:2].tolist() + np.flatnonzero(y == 0)[:1].tolist()
    three = toy.evaluation.iloc[right]
    cand = np.where(y[right] == 1, 0.9, 0.1)
    base = np.where(y[right] == 1, 0.2, 0.8)
    loose = Improvement(min_rows=1).check(with_scores(toy, cand, base, frame=three))
    assert loose.status == "pass"  # what the gate said before it counted rows
    result = Improvement().check(with_scores(toy, cand, base, frame=three))
    assert result.status == "inconclusive"
    assert result.value == loose.value  # the point is shown, not judged
    assert ctx.rows >= 30
    assert Improvement().check(ctx).status == "pass"


def test_min_rows_is_each_interval_gates_setting_in_the_policy() -> None:
    policy = Policy.from_yaml(
        "gates:\n  checks:\n    improvement: {min_rows: 100}\n    slice_regression: {}\n"
    )
    assert policy.gates.gates() == [Improvement(min_rows=100), SliceRegression(min_rows=30)]
    # The default is left out of the stored settings, so a policy that does not set it keeps
    # the id it had (and the evaluations blessed under it still count); a setting is kept.
    assert "min_rows" not in policy.gates.checks["slice_regression"]
    assert policy.gates.checks["improvement"]["min_rows"] == 100
    assert all("min_rows" not in c for c in Policy.default().gates.checks.values())
    with pytest.raises(PolicyError, match=r"gates\.checks\.improvement\.min_rows"):
        Policy.from_yaml("gates:\n  checks:\n    improvement: {min_rows: 0}\n")


def test_a_slice_with_too_few_rows_is_not_judged_and_leaves_the_gate_inconclusive(
    toy: Toy,
) -> None:
    slices = {"north": "region == 'north'", "tail": "x1 > 2.3"}
    ctx = toy.context(slices=slices)
    tail = int((toy.evaluation["x1"] > 2.3).sum())
    assert 0 < tail < 30
    result = SliceRegression().check(ctx)
    assert result.status == "inconclusive"
    assert f"slice 'tail' has {tail} rows: too few to tell" in result.why
    assert "too few to tell; at least 30 are needed" in result.why
    assert result.details["slices"]["tail"] == {"rows": tail, "judged": False, "too_few": True}
    assert result.details["slices"]["north"]["judged"]
    assert SliceRegression(min_rows=tail).check(ctx).status == "pass"
    # A judged slice that regresses still fails the gate, the small one noted.
    base = ctx.baseline_scores
    assert base is not None
    worse = base.copy()
    rows = (toy.evaluation["region"] == "north").to_numpy()
    worse[rows] = np.random.default_rng(0).permutation(worse[rows])
    failed = SliceRegression().check(with_scores(toy, worse, base, slices=slices))
    assert failed.status == "fail"
    assert "slice 'north' is worse by" in failed.why
    assert "'tail'" in failed.why


def test_a_sensitive_group_with_too_few_rows_leaves_fairness_inconclusive(toy: Toy) -> None:
    rare = toy.evaluation.assign(
        group=np.where(np.arange(len(toy.evaluation)) < 5, "rare", toy.evaluation["group"])
    )
    result = Fairness(sensitive="group").check(toy.context(frame=rare))
    assert result.status == "inconclusive"
    assert "across 'group', group 'rare' has 5 rows" in result.why
    assert "at least 30 are needed" in result.why
    assert (
        "too few" not in Fairness(sensitive="group", min_rows=5).check(toy.context(frame=rare)).why
    )


def test_slice_regression_says_the_same_signed_drop_as_its_value(toy: Toy) -> None:
    result = SliceRegression().check(toy.context())
    assert result.status == "pass"
    assert result.value is not None
    assert result.value < 0  # every slice improved
    assert f"{result.value:.4f}" in result.why  # the value column's number, its sign too
    assert f"{-result.value:+.4f}" not in result.why
    assert "an improvement" in result.why
