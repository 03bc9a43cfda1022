"""Monitoring any model's predictions, with no regrow system."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from regrow.errors import ConfigError, DataError
from regrow.monitor.chunks import Chunking
from regrow.monitor.external import monitor_predictions


def binary(n: int, seed: int, shift: float = 0.0, labels: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, n), rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-(1.5 * x1 + x2)))
    frame = pd.DataFrame({
        "x1": x1, "x2": x2, "plan": rng.choice(["basic", "pro"], n),
        "score": p, "pred": np.where(p >= 0.3, "yes", "no"),
    })  # fmt: skip
    if labels:
        frame["label"] = np.where(rng.uniform(size=n) < p, "yes", "no")
    return frame


def test_a_window_drifting_halfway_is_found_in_its_chunks() -> None:
    reference = binary(5000, 0)
    window = pd.concat([binary(2000, 1), binary(2000, 2, shift=1.5)], ignore_index=True)
    result = monitor_predictions(
        reference, window.drop(columns="label"), prediction="pred", score="score",
        target="label", chunking=Chunking(size=1000),
    )  # fmt: skip
    assert result.threshold == pytest.approx(0.3, abs=0.01)  # read from the predictions
    assert result.task.classes == ("no", "yes")
    assert "x1" in result.drifted_columns
    assert "x2" not in result.drifted_columns
    late = {r.chunk for r in result.chunk_drift if "x1" in r.drifted_columns}
    assert late == {"rows 2000-2999", "rows 3000-3999"}
    multi = {(m.method, m.chunk) for m in result.multivariate if m.drifted}
    assert ("domain_classifier", "rows 3000-3999") in multi
    assert ("domain_classifier", "rows 0-999") not in multi
    assert {r.chunk for r in result.estimates.rows} == {None, *(c.label for c in result.chunks)}
    report = json.loads(json.dumps(result.to_dict()))
    assert report["summary"]["model"] == "external model"
    assert report["fdr"].startswith("Benjamini-Hochberg")
    assert {a["signal"] for a in report["alerts"]} >= {"drift x1"}
    assert report["distributions"]["plan"]["kind"] == "categorical"


def test_realised_performance_sits_next_to_the_estimate_once_labels_come() -> None:
    result = monitor_predictions(
        binary(4000, 0), binary(2000, 1), prediction="pred", score="score", target="label",
        metrics=("roc_auc", "accuracy"),
    )  # fmt: skip
    auc = result.estimates.get("roc_auc")
    assert auc.realised is not None
    assert auc.low - 0.02 < auc.realised < auc.high + 0.02
    assert result.to_dict()["performance"]["rows"]


def test_multiclass_scores_map_to_classes_by_name() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        x = rng.normal(size=(n, 2))
        logits = np.c_[x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]]
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        classes = np.array(["a", "b", "c"])
        y = classes[(rng.uniform(size=n)[:, None] > p.cumsum(1)).sum(1)]
        return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "pa": p[:, 0], "pb": p[:, 1],
                             "pc": p[:, 2], "pred": classes[p.argmax(1)], "y": y})  # fmt: skip

    result = monitor_predictions(
        frame(3000), frame(1500), prediction="pred", score={"c": "pc", "a": "pa", "b": "pb"},
        target="y", metrics=("accuracy",),
    )  # fmt: skip
    assert result.task.classes == ("c", "a", "b")
    acc = result.estimates.get("accuracy")
    assert acc.realised is not None
    assert acc.low - 0.03 < acc.realised < acc.high + 0.03


def test_regression_predictions_get_direct_loss_estimates() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int, noisy: bool = False) -> pd.DataFrame:
        x = rng.normal(size=n)
        noise = 0.2 + (2.0 if noisy else 1.0) * np.abs(x)
        y = x + rng.normal(size=n) * noise
        return pd.DataFrame({"x": np.abs(x) * (2 if noisy else 1), "pred": x, "y": y})

    result = monitor_predictions(
        frame(3000), frame(1500, noisy=True), prediction="pred", target="y",
        metrics=("mae", "rmse"),
    )  # fmt: skip
    assert result.task.kind == "regression"
    assert result.estimates.method == "dle"
    mae = result.estimates.get("mae")
    assert mae.value > mae.reference
    assert mae.alert


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prediction": "predicted"}, ConfigError, "no column 'predicted'"),
        ({"prediction": "pred", "score": "scroe"}, ConfigError, "did you mean 'score'"),
        ({"prediction": "pred", "task": "ranking"}, ConfigError, "'ranking'"),
        ({"prediction": "pred", "score": "score", "positive": "maybe"}, ConfigError, "'maybe'"),
    ],
)
def test_bad_arguments_name_the_value(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        monitor_predictions(binary(200, 0), binary(100, 1), target="label", **kwargs)  # type: ignore[arg-type]


def test_missing_scores_and_empty_windows_are_refused() -> None:
    window = binary(100, 1)
    window.loc[5, "score"] = np.nan
    with pytest.raises(DataError, match="row 5"):
        monitor_predictions(binary(200, 0), window, prediction="pred", score="score")
    with pytest.raises(DataError, match="no rows"):
        monitor_predictions(binary(200, 0), window.iloc[:0], prediction="pred", score="score")


def test_a_time_stamp_column_is_left_out_of_every_check_with_one_note() -> None:
    def stamped(n: int, seed: int, start: str) -> pd.DataFrame:
        frame = binary(n, seed)
        frame.insert(0, "ts", pd.date_range(start, periods=n, freq="min"))
        return frame

    result = monitor_predictions(
        stamped(3000, 0, "2026-07-01"), stamped(2000, 1, "2026-08-29"), prediction="pred",
        score="score", target="label",
    )  # fmt: skip
    assert "ts" not in result.features
    assert "ts" not in {f.column for f in result.drift.features}
    assert not result.multivariate_drifted  # the times alone would tell the windows apart
    assert not any("'ts'" in w for w in result.estimates.warnings)
    said = [n for n in result.notes if "'ts'" in n]
    assert said == ["'ts' is a time column: not a feature; pass --time-column ts to chunk by it"]
