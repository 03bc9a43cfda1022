"""Estimated and realised performance per chunk, and the alerts on them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regrow.monitor.chunks import Chunking
from regrow.monitor.signals import Scored, Task, performance_signals, realised_regression

BINARY = Task("classification", ("stay", "churn"))
METRICS = ("roc_auc", "accuracy")


def rows(n: int, seed: int, scale: float = 1.0, labelled: bool = True) -> Scored:
    """A calibrated binary model: P(churn | x) = sigmoid(2x), x ~ N(0, scale)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, scale, n)
    p = 1 / (1 + np.exp(-2 * x))
    y = np.where(rng.uniform(size=n) < p, "churn", "stay").astype(object)
    return Scored(pd.DataFrame({"x": x}), p, y if labelled else None)


def test_undrifted_windows_raise_no_alert() -> None:
    reference = rows(4000, 0)
    alerts = [
        performance_signals(BINARY, reference, rows(2000, seed), [], metrics=METRICS).alerts
        for seed in range(1, 11)
    ]
    assert sum(len(a) for a in alerts) <= 1


def test_a_shift_into_uncertain_rows_is_estimated_and_alerted_before_labels() -> None:
    reference = rows(4000, 0)
    window = rows(3000, 1, scale=0.3, labelled=False)
    signals = performance_signals(BINARY, reference, window, [], metrics=METRICS)
    accuracy = signals.get("accuracy")
    assert accuracy.value < accuracy.reference - 0.1
    assert accuracy.realised is None
    assert accuracy.alert
    assert [a.signal for a in signals.alerts] == ["estimated roc_auc", "estimated accuracy"]
    assert "below" in signals.alerts[1].why
    assert "whole window" in signals.alerts[1].why


def test_chunks_locate_the_shift_and_labels_give_realised_values() -> None:
    reference = rows(4000, 0)
    early, late = rows(2000, 1), rows(2000, 2, scale=0.3)
    window = Scored(
        pd.concat([early.frame, late.frame], ignore_index=True),
        np.r_[early.output, late.output],
        np.r_[early.labels, late.labels],  # type: ignore[arg-type]
    )
    chunks = Chunking(count=4).split(window.frame)
    signals = performance_signals(BINARY, reference, window, chunks, metrics=METRICS)
    flagged = {r.chunk for r in signals.rows if r.metric == "accuracy" and r.alert}
    assert flagged == {None, "rows 2000-2999", "rows 3000-3999"}  # None: the whole window
    for label in ("rows 0-999", "rows 3000-3999"):
        row = signals.get("accuracy", label)
        assert row.realised is not None
        assert row.low - 0.03 < row.realised < row.high + 0.03
    assert any(a.signal == "realised accuracy" for a in signals.alerts)
    assert signals.calibration is not None
    assert not signals.calibration["calibration_drift"]


def test_a_policy_threshold_replaces_the_default() -> None:
    reference = rows(4000, 0)
    signals = performance_signals(
        BINARY, reference, rows(2000, 1), [], metrics=METRICS,
        rules={"roc_auc": {"min": 0.99}},
    )  # fmt: skip
    assert [a.signal for a in signals.alerts] == ["estimated roc_auc", "realised roc_auc"]
    assert "policy monitoring.alerts.roc_auc.min" in signals.alerts[0].why
    assert signals.get("roc_auc").threshold == 0.99


def test_too_few_reference_labels_is_a_warning_not_an_error() -> None:
    reference = rows(30, 0)
    signals = performance_signals(BINARY, reference, rows(100, 1), [], metrics=METRICS)
    assert signals.method is None
    assert signals.rows == []
    assert "30 labelled rows" in signals.warnings[0]


def test_a_label_the_model_never_saw_stops_estimates_with_a_reason() -> None:
    reference = rows(400, 0)
    assert reference.labels is not None
    reference.labels[0] = "maybe"
    signals = performance_signals(BINARY, reference, rows(100, 1), [], metrics=METRICS)
    assert signals.method is None
    assert "'maybe'" in signals.warnings[0]


def test_regression_metrics_by_hand() -> None:
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0])
    assert realised_regression("mae", y, p) == 1.0
    assert realised_regression("mse", y, p) == 5 / 3
    assert np.isclose(realised_regression("mape", y, p), (0 + 0.5 + 0.5) / 3)
    assert np.isnan(realised_regression("msle", np.array([-2.0]), np.array([0.0])))


def test_labels_that_no_longer_follow_the_scores_alert_on_calibration() -> None:
    reference = rows(4000, 0)
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 3000)
    p = 1 / (1 + np.exp(-2 * x))
    truth = 1 / (1 + np.exp(-(2 * x + 1)))  # concept shift: more churn at every score
    y = np.where(rng.uniform(size=3000) < truth, "churn", "stay").astype(object)
    signals = performance_signals(
        BINARY, reference, Scored(pd.DataFrame({"x": x}), p, y), [], metrics=METRICS
    )
    assert signals.calibration is not None
    assert signals.calibration["calibration_drift"]
    assert any(a.signal == "calibration" for a in signals.alerts)


def test_a_three_row_window_has_bands_within_the_metrics_range_and_says_why_no_realised() -> None:
    rng = np.random.default_rng(0)

    def regression(n: int) -> Scored:
        x = rng.uniform(0, 10, n)
        y = 3 * x + rng.normal(0, 2 + x, n)
        return Scored(pd.DataFrame({"x": x}), 3 * x, y.astype(object))

    signals = performance_signals(Task("regression"), regression(2000), regression(3), [])
    mse = signals.get("mse")
    assert 0.0 <= mse.low <= mse.value <= mse.high
    assert all(r.low >= 0 for r in signals.rows)
    assert all(r.realised is None for r in signals.rows)
    assert any("3 labelled rows, too few to tell" in w for w in signals.warnings)


def test_a_band_of_a_share_stays_within_zero_and_one() -> None:
    signals = performance_signals(BINARY, rows(4000, 0), rows(3, 1), [], metrics=METRICS)
    for r in signals.rows:
        assert 0.0 <= r.low <= r.high <= 1.0


def test_a_few_rows_give_the_cells_bands_within_zero_and_one_and_no_alert_past_the_range() -> None:
    # On 5 rows the confusion cells' bands reached below 0 and the reference-derived alert
    # levels of f1, recall and precision lay below 0 (no value can cross them).
    signals = performance_signals(BINARY, rows(4000, 0), rows(5, 1), [])
    assert {"f1", "true_negative", "false_negative"} <= {r.metric for r in signals.rows}
    for r in signals.rows:
        assert 0.0 <= r.low <= r.high <= 1.0, r
        assert r.threshold is None or 0.0 < r.threshold < 1.0, r


def test_a_window_whose_labels_are_one_class_says_why_some_metrics_have_no_realised_value() -> None:
    window = rows(200, 1)
    one = Scored(window.frame, window.output, np.full(200, "stay", dtype=object))
    signals = performance_signals(BINARY, rows(4000, 0), one, [])
    realised = signals.get("roc_auc").realised
    assert realised is None or np.isnan(realised)
    assert any("200 labels are all 'stay'" in w for w in signals.warnings)
