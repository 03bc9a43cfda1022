"""Attribution: only components whose loss the drift moves are candidates, ranked by impact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.errors import DataError
from regrow.model import FittedSystem
from regrow.monitor.attribution import ComponentImpact, attribute, readers

SYSTEM = System(
    "s",
    target="y",
    components=[
        Transform("a_scaled", StandardScaler(), inputs=["a1", "a2"]),
        Member("A", LogisticRegression(), inputs=["a_scaled"]),
        Member("B", LogisticRegression(), inputs=["b1", "b_noise"]),
        Member("C", LogisticRegression(), inputs=["c1"]),
        Ensemble("ens", weights={"A": 1.0, "B": 1.0, "C": 1.0}),
    ],
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: on small data HistGradientBoosting's threads only add overhead, and on
    a loaded 2-core machine their spin-waiting made the loss models 10x slower."""
    with threadpool_limits(limits=1):
        yield


def _rows(
    rng: np.random.Generator, n: int, *, a_scale: float = 1.5, noise_shift: float = 0.0
) -> pd.DataFrame:
    """y depends on a1, a2, b1, c1; b_noise and unused carry no signal."""
    frame = pd.DataFrame(
        {
            "a1": rng.normal(0, a_scale, n),
            "a2": rng.normal(size=n),
            "b1": rng.normal(size=n),
            "b_noise": rng.normal(noise_shift, 1, n),
            "c1": rng.normal(size=n),
            "unused": rng.normal(noise_shift, 1, n),
        }
    )
    logit = frame["a1"] + 0.5 * frame["a2"] + frame["b1"] + frame["c1"]
    frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[FittedSystem, pd.DataFrame]:
    reference = _rows(np.random.default_rng(0), 3000)
    ws = Workspace.init(tmp_path_factory.mktemp("attr") / "ws")
    version = ws.train(SYSTEM, ws.snapshot(reference, name="d"), workers=1).version
    return ws.load(version.ref), reference


def test_readers_follow_transforms_on_system_fitted_system_and_spec(
    fitted: tuple[FittedSystem, pd.DataFrame],
) -> None:
    model, _ = fitted
    expected = {"a1": ["a_scaled", "A"], "b_noise": ["B"], "unused": []}
    assert readers(SYSTEM, expected) == expected
    assert readers(model, expected) == expected
    assert readers(model.spec, expected) == expected


@pytest.mark.parametrize("labelled", [False, True])
def test_only_the_member_reading_the_harmful_drift_is_a_candidate(
    fitted: tuple[FittedSystem, pd.DataFrame], labelled: bool
) -> None:
    model, reference = fitted
    # a1 collapses towards A's decision boundary (A's loss grows); b_noise and unused shift by
    # 3 sd but B gives b_noise no weight and nothing reads unused.
    window = _rows(np.random.default_rng(1), 2000, a_scale=0.3, noise_shift=3.0)
    if not labelled:
        window = window.drop(columns="y")
    result = attribute(model, reference, window, {"a1": 1.2, "b_noise": 3.0, "unused": 3.0})
    by_name = {r.component: r for r in result}
    assert [r.component for r in result if r.kind == "member" and r.candidate] == ["A"]
    a = by_name["A"]
    assert a.features == ("a1",)
    assert a.impact > 0.05
    assert a.interval[0] > 0
    assert a.loss_counterfactual == pytest.approx(a.loss_now - a.impact)
    assert ("measured" if labelled else "estimated") in a.why
    assert by_name["a_scaled"].candidate
    assert by_name["a_scaled"].kind == "transform"
    assert by_name["s"].kind == "system"
    assert by_name["s"].candidate
    b = by_name["B"]
    assert b.features == ("b_noise",)
    assert not b.candidate
    assert abs(b.impact) < 0.01 * b.loss_now
    assert by_name["C"].why == "reads none of the drifted features"
    assert result[0].component == "A"  # ranked by impact
    assert all(isinstance(r.to_dict()["interval"], list) for r in result)


def test_a_drift_that_does_not_move_any_loss_yields_no_candidate(
    fitted: tuple[FittedSystem, pd.DataFrame],
) -> None:
    model, reference = fitted
    window = _rows(np.random.default_rng(2), 2000, noise_shift=3.0).drop(columns="y")
    result = attribute(model, reference, window, ["b_noise", "unused"])
    assert not any(r.candidate for r in result)


def test_no_drift_window_yields_no_candidate(fitted: tuple[FittedSystem, pd.DataFrame]) -> None:
    model, reference = fitted
    window = _rows(np.random.default_rng(3), 2000).drop(columns="y")
    result = attribute(model, reference, window, ["a1", "b1", "c1"])
    assert not any(r.candidate for r in result)


def test_regression_members_use_direct_loss_estimation(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)

    def rows(n: int, x_scale: float) -> pd.DataFrame:
        f = pd.DataFrame({"x": rng.normal(0, x_scale, n), "w": rng.normal(size=n)})
        f["y"] = np.sin(2 * f["x"]) + f["w"] + rng.normal(size=n) * 0.1  # x is fit badly
        return f

    system = System(
        "r",
        target="y",
        task="regression",
        components=[
            Member("mx", LinearRegression(), inputs=["x"]),
            Member("mw", LinearRegression(), inputs=["w"]),
            Ensemble("ens", weights={"mx": 1.0, "mw": 1.0}),
        ],
    )
    reference = rows(2000, 1.0)
    ws = Workspace.init(tmp_path / "ws")
    model = ws.load(ws.train(system, ws.snapshot(reference, name="d"), workers=1).version.ref)
    window = rows(1000, 0.3).drop(columns="y")  # x concentrates where a line fits sin better
    result = {r.component: r for r in attribute(model, reference, window, ["x"])}
    assert result["mx"].impact < 0
    assert not result["mx"].candidate
    assert result["mw"].impact == 0.0
    assert not result["mw"].candidate


def test_bad_inputs_are_refused(fitted: tuple[FittedSystem, pd.DataFrame]) -> None:
    model, reference = fitted
    with pytest.raises(DataError, match="not columns of the reference"):
        attribute(model, reference, reference, ["nope"])
    with pytest.raises(DataError, match="empty"):
        attribute(model, reference, reference[:0], ["a1"])
    with pytest.raises(DataError, match="target"):
        attribute(model, reference.drop(columns="y"), reference, ["a1"])


def test_component_impact_to_dict_is_json_ready() -> None:
    impact = ComponentImpact("m", "member", ("f",), 0.5, float("nan"), 0.1, (0.0, 0.2), True, "x")
    d = impact.to_dict()
    assert d["loss_counterfactual"] is None
    assert d["features"] == ["f"]


def test_demo_expansion_with_labels_makes_only_the_geo_member_a_candidate(tmp_path: Path) -> None:
    from regrow.demo import build_system, make_window

    ws = Workspace.init(tmp_path / "ws")
    train = make_window(1500, start="2024-01-01", days=120, seed=1)
    model = ws.load(ws.train(build_system(), ws.snapshot(train, name="d"), workers=1).version.ref)
    reference = make_window(1000, start="2024-05-01", days=30, seed=2)
    expanded = make_window(1000, start="2024-06-01", days=30, seed=3, expanded=True)
    drifted = ["distance_km", "network_quality"]
    result = {r.component: r for r in attribute(model, reference, expanded, drifted)}
    assert [n for n, r in result.items() if r.kind == "member" and r.candidate] == ["geo"]
    assert result["geo"].impact > 0.2  # the geo member's log loss grows most under expansion
    assert result["churn"].candidate
    unlabelled = attribute(model, reference, expanded.drop(columns="churned"), drifted, n_repeats=2)
    geo = next(r for r in unlabelled if r.component == "geo")
    assert "outside the reference range" in geo.why  # without labels, it says what it cannot see
    same = make_window(1000, start="2024-06-01", days=30, seed=4)
    assert not any(r.candidate for r in attribute(model, reference, same, drifted, n_repeats=3))


def test_each_member_is_predicted_once_per_draw_of_the_drifted_features_it_reads(
    fitted: tuple[FittedSystem, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a1 (A, through a_scaled) and b_noise (B) drifted. The system's counterfactual draws
    # both; its members' outputs there are those of A's and B's own draws, so each member is
    # predicted n_repeats times, not twice that, and the impacts are what predicting every
    # draw again gives.
    import regrow.monitor.attribution as attribution

    model, reference = fitted
    window = _rows(np.random.default_rng(1), 1000, a_scale=0.3, noise_shift=3.0)
    drifted = {"a1": 1.2, "b_noise": 3.0}
    calls: list[str] = []
    real = attribution.member_output

    def counted(fc: object, *args: object, **kwargs: object) -> object:
        calls.append(fc.spec.name)  # type: ignore[attr-defined]
        return real(fc, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attribution, "member_output", counted)
    shared = attribute(model, reference, window, drifted, n_repeats=3)
    assert sorted(calls) == ["A"] * 3 + ["B"] * 3

    # Without the sharing (every draw of every subset predicted anew), the same impacts.
    class Forgetful(dict):  # type: ignore[type-arg]
        def __contains__(self, key: object) -> bool:
            return False

    class Unshared(attribution._Context):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self._member_draws = Forgetful()

    monkeypatch.setattr(attribution, "_Context", Unshared)
    calls.clear()
    unshared = {r.component: r for r in attribute(model, reference, window, drifted, n_repeats=3)}
    assert sorted(calls) == ["A"] * 6 + ["B"] * 6
    for r in shared:
        assert (unshared[r.component].impact, unshared[r.component].interval) == (
            r.impact, r.interval
        )  # fmt: skip


@pytest.mark.parametrize("labelled", [True, False])
def test_a_multiclass_system_is_attributed_as_a_binary_one(tmp_path: Path, labelled: bool) -> None:
    """Three classes: the loss is the log loss of the class probabilities (it used to refuse:
    'attribution estimates losses of binary classifiers and regressors only')."""

    def rows(seed: int, n: int, a_scale: float = 1.5, noise_shift: float = 0.0) -> pd.DataFrame:
        frame = _rows(np.random.default_rng(seed), n, a_scale=a_scale, noise_shift=noise_shift)
        logits = np.column_stack([frame.a1, frame.b1, -frame.a1 - frame.b1])
        frame["y"] = np.array(["left", "mid", "right"])[logits.argmax(axis=1)]
        return frame

    system = System("m3", target="y", components=[
        Member("A", LogisticRegression(), inputs=["a1", "a2"]),
        Member("B", LogisticRegression(), inputs=["b1", "b_noise"]),
        Ensemble("ens", weights={"A": 1.0, "B": 1.0})])  # fmt: skip
    reference = rows(0, 3000)
    with Workspace.init(tmp_path) as ws:
        model = ws.load(ws.train(system, ws.snapshot(reference, name="ref")).version.ref)
    window = rows(1, 2000, a_scale=0.3, noise_shift=3.0)
    if not labelled:
        window = window.drop(columns="y")
    result = {r.component: r for r in attribute(model, reference, window, ["a1", "b_noise"])}
    assert result["A"].candidate
    assert result["A"].impact > 0.05
    assert result["A"].impact > 5 * abs(result["B"].impact)  # b_noise barely moves B
    assert np.isfinite(result["m3"].loss_now)
    assert result["m3"].kind == "system"
