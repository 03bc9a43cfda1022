"""The data-quality check of a window: what each member can take, decided by running it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.errors import ComponentError
from regrow.model import FittedSystem
from regrow.monitor.data_quality import WindowCheck, check_window
from regrow.monitor.profile import ColumnProfile, Profile


def data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "color": rng.choice(["red", "blue"], rows),
            "shape": rng.choice(["round", "square"], rows),
        }
    )
    frame["y"] = (frame.a + frame.b + (frame.color == "red") > 0.5).astype(int)
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FittedSystem, dict]]:
    """Boosted on a (takes nulls), logistic on b (does not), a strict encoder of color and a
    lenient one of shape; the reference profile of the training data."""
    system = System(
        "toy",
        target="y",
        components=[
            Transform("color_1hot", OneHotEncoder(sparse_output=False), inputs=["color"]),
            Transform(
                "shape_1hot",
                OneHotEncoder(sparse_output=False, handle_unknown="ignore"),
                inputs=["shape"],
            ),
            Member("boosted", HistGradientBoostingClassifier(max_iter=10), inputs=["a"]),
            Member("linear", LogisticRegression(), inputs=["b", "color_1hot", "shape_1hot"]),
            Ensemble("mean", weights={"boosted": 1, "linear": 1}),
        ],
    )
    train = data(600, 0)
    with Workspace.init(tmp_path_factory.mktemp("dq")) as ws:
        version = ws.train(system, ws.snapshot(train, name="train")).version
        yield ws.load(version.ref), dict(Profile.of(train).columns)


def check(
    fitted: tuple[FittedSystem, dict[str, ColumnProfile]], frame: pd.DataFrame
) -> WindowCheck:
    model, reference = fitted
    return check_window(model, frame, reference)


def test_a_clean_window_has_no_finding_and_every_row_usable(fitted) -> None:  # type: ignore[no-untyped-def]
    result = check(fitted, data(200, 1))
    assert result.findings == ()
    assert result.usable_rows == 200
    assert not result.changed


def test_a_boosted_member_takes_nulls_a_logistic_one_does_not(fitted) -> None:  # type: ignore[no-untyped-def]
    window = data(200, 1)
    window.loc[[3, 9], "a"] = np.nan
    window.loc[[5, 7, 11], "b"] = np.nan
    result = check(fitted, window)
    by_column = {f.column: f for f in result.findings}
    assert by_column["a"].kind == "nulls"
    assert by_column["a"].blocked == ()
    assert not by_column["a"].unusable
    b = by_column["b"]
    assert (b.kind, b.rows, b.examples, b.blocked) == ("nulls", 3, (5, 7, 11), ("linear",))
    assert "member 'linear' cannot take them" in b.why
    assert "NaN" in b.why
    assert result.usable_rows == 197
    assert sorted(set(range(200)) - set(result.usable.index)) == [5, 7, 11]
    # what is left, the version scores
    model, _ = fitted
    assert len(model.predict_proba(result.usable)) == 197


def test_an_unseen_category_blocks_a_strict_encoder_not_a_lenient_one(fitted) -> None:  # type: ignore[no-untyped-def]
    window = data(200, 1)
    window.loc[[0, 1], "color"] = "green"
    window.loc[[2], "shape"] = "oval"
    result = check(fitted, window)
    color, shape = (next(f for f in result.findings if f.column == c) for c in ("color", "shape"))
    assert (color.kind, color.values, color.blocked, color.unusable) == (
        "unseen",
        ("green",),
        ("linear",),
        True,
    )
    assert "color_1hot" in color.readers
    assert (shape.kind, shape.blocked, shape.unusable) == ("unseen", (), False)
    assert result.usable_rows == 198


def test_values_of_another_type_are_set_aside_and_numbers_as_text_read_as_numbers(
    fitted,  # type: ignore[no-untyped-def]
) -> None:
    window = data(100, 1)
    window["a"] = window["a"].astype(str)
    window.loc[4, "a"] = "abc"
    result = check(fitted, window)
    (finding,) = result.findings
    assert (finding.column, finding.kind, finding.rows) == ("a", "type", 1)
    assert finding.values == ("abc",)
    assert finding.unusable
    assert result.coerced == ("a",)
    assert result.frame["a"].dtype == float
    assert result.usable_rows == 99


def test_a_missing_column_is_read_as_null_and_a_close_extra_one_suggested(fitted) -> None:  # type: ignore[no-untyped-def]
    window = data(100, 1).rename(columns={"b": "b_"})
    result = check(fitted, window)
    kinds = {(f.column, f.kind) for f in result.findings}
    assert kinds == {("b", "missing"), ("b_", "extra")}
    missing = next(f for f in result.findings if f.kind == "missing")
    assert "'b_'" in missing.why
    assert "renamed?" in missing.why
    assert missing.blocked == ("linear",)  # a LogisticRegression cannot read a null column
    assert result.usable_rows == 0


def test_labels_the_model_cannot_read_leave_rows_usable_but_unlabelled(fitted) -> None:  # type: ignore[no-untyped-def]
    window = data(100, 1)
    window["y"] = window["y"].astype(object)
    window.loc[[1, 2], "y"] = None
    window.loc[[3], "y"] = 7
    result = check(fitted, window)
    assert {(f.column, f.kind, f.rows) for f in result.findings} == {("y", "unseen", 1),
                                                                     ("y", "nulls", 2)}  # fmt: skip
    assert result.usable_rows == 100
    assert result.frame["y"].isna().sum() == 3


def test_a_member_failing_on_clean_rows_is_an_error_naming_it(fitted) -> None:  # type: ignore[no-untyped-def]
    model, reference = fitted
    window = data(50, 1)
    window.loc[0, "a"] = np.nan  # a finding, so the members are probed
    components = dict(model.components)
    components["boosted"] = replace(components["boosted"], estimator=None)  # raises on any row
    broken = FittedSystem(model.spec, components, ref="toy:v1")
    with pytest.raises(ComponentError, match="'boosted' fails to predict even on rows"):
        check_window(broken, window, reference)


def test_the_check_serialises(fitted) -> None:  # type: ignore[no-untyped-def]
    window = data(30, 1)
    window.loc[0, "b"] = np.nan
    body = check(fitted, window).to_dict()
    assert body["usable_rows"] == 29
    assert body["findings"][0]["blocked"] == ["linear"]


class _Quiet(LogisticRegression):  # type: ignore[misc]
    """A member that reads nulls without complaint and answers NaN for them."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = super().predict_proba(X.fillna(0.0))
        out[X.isna().any(axis=1).to_numpy()] = np.nan
        return out


@pytest.mark.parametrize("kind", ["torch", "quiet"])
def test_a_member_that_answers_nan_for_nulls_cannot_take_them(
    tmp_path: pytest.TempPathFactory, kind: str
) -> None:
    """A torch network refuses nulls (it used to answer NaN, and the plan showed 'log_loss
    nan'); a member that still answers NaN is found out by its output."""
    if kind == "torch":
        pytest.importorskip("torch")
        from regrow.components.torch import MLP, TorchClassifier

        estimator = TorchClassifier(MLP(hidden=(8,)), epochs=2, random_state=0)
    else:
        estimator = _Quiet()
    system = System("nn", target="y", components=[Member("m", estimator, inputs=["a", "b"])])
    train = data(300, 0)
    with Workspace.init(tmp_path) as ws:
        model = ws.load(ws.train(system, ws.snapshot(train, name="train")).version.ref)
    window = data(100, 1)
    window.loc[[4, 8], "a"] = np.nan
    result = check_window(model, window, dict(Profile.of(train).columns))
    (finding,) = result.findings
    assert (finding.column, finding.rows, finding.blocked) == ("a", 2, ("m",))
    assert "member 'm' cannot take them" in finding.why
    assert result.usable_rows == 98
