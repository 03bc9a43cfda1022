"""CBPE's nine metrics: bands cover the realised values, shifts move them, arithmetic checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from regrow.errors import ConfigError
from regrow.monitor._cbpe_metrics import estimate_names
from regrow.monitor._cbpe_sampling import sampling_errors
from regrow.monitor.cbpe import CBPE, CBPE_METRICS

BINARY_COST = [[1.0, -2.0], [-5.0, 10.0]]  # [[TN, FP], [FN, TP]]
CLASS_COST = [[2.0, -1.0, -1.0], [-1.0, 3.0, 0.0], [-4.0, 0.0, 5.0]]  # true x predicted


def _draw(rng: np.random.Generator, n: int, a: float = 2, b: float = 2) -> tuple[np.ndarray, ...]:
    p = rng.beta(a, b, n)
    return p, (rng.uniform(size=n) < p).astype(int)


def _draw3(rng: np.random.Generator, n: int, alpha: tuple[float, ...] = (1, 1, 1)) -> tuple:
    p = rng.dirichlet(alpha, n)
    y = np.minimum((rng.uniform(size=n)[:, None] > p.cumsum(axis=1)).sum(axis=1), 2)
    return p, y


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_every_band_covers_its_realised_value_in_at_least_17_of_20_windows(kind: str) -> None:
    rng = np.random.default_rng(20)
    draw, cost = (_draw, BINARY_COST) if kind == "binary" else (_draw3, CLASS_COST)
    cbpe = CBPE(metrics=CBPE_METRICS, cost_matrix=cost, seed=0).fit(*draw(rng, 5000))
    names = estimate_names(CBPE_METRICS, cbpe.classes_)
    assert len(names) == (12 if kind == "binary" else 17)
    covered = dict.fromkeys(names, 0)
    for _ in range(20):
        p, y = draw(rng, 800)  # undrifted: windows drawn like the reference
        check = cbpe.check_with_labels(p, y)
        assert set(check.estimated) == set(check.realised) == set(names)
        for name in names:
            covered[name] += check.within_band[name]
            assert np.isfinite(check.estimated[name].sampling_error), name
    assert min(covered.values()) >= 17, covered


def test_estimates_move_with_the_realised_values_under_a_covariate_shift() -> None:
    """Binary, then multiclass: unsure scores make every metric worse, confident ones better."""
    rng = np.random.default_rng(21)
    cbpe = CBPE(metrics=CBPE_METRICS, cost_matrix=BINARY_COST, seed=0).fit(*_draw(rng, 5000))
    hard, y_hard = _draw(rng, 3000, 8, 8)  # scores crowd 0.5: the model is unsure, worse
    easy, y_easy = _draw(rng, 3000, 0.5, 0.5)  # confident scores: better
    worse, better = cbpe.check_with_labels(hard, y_hard), cbpe.check_with_labels(easy, y_easy)
    for name in ("roc_auc", "f1", "precision", "recall", "specificity", "accuracy"):
        assert better.realised[name] > worse.realised[name] + 0.05, name
        assert better.estimated[name].value > worse.estimated[name].value + 0.05, name
    for name in ("true_positive", "true_negative", "business_value", "average_precision"):
        assert better.estimated[name].value > worse.estimated[name].value, name
    for name in ("false_positive", "false_negative"):
        assert better.estimated[name].value < worse.estimated[name].value, name
    mc = CBPE(metrics=CBPE_METRICS, cost_matrix=CLASS_COST, seed=0).fit(*_draw3(rng, 5000))
    worse = mc.check_with_labels(*_draw3(rng, 3000, (6, 6, 6)))
    better = mc.check_with_labels(*_draw3(rng, 3000, (0.4, 0.4, 0.4)))
    for name in ("roc_auc", "f1", "precision", "recall", "specificity", "accuracy"):
        assert better.realised[name] > worse.realised[name] + 0.05, name
        assert better.estimated[name].value > worse.estimated[name].value + 0.05, name
    assert better.estimated["business_value"].value > worse.estimated["business_value"].value


def test_business_value_and_confusion_cells_match_a_hand_computation() -> None:
    rng = np.random.default_rng(22)
    cbpe = CBPE(metrics=CBPE_METRICS, cost_matrix=BINARY_COST, calibration="never")
    cbpe.fit(*_draw(rng, 1000))
    p = np.array([0.9, 0.2, 0.6, 0.4])  # predicted positive, negative, positive, negative
    est = {k: e.value for k, e in cbpe.estimate(p).estimates.items()}
    tp, fp, tn, fn = (0.9 + 0.6) / 4, (0.1 + 0.4) / 4, (0.8 + 0.6) / 4, (0.2 + 0.4) / 4
    assert est["true_positive"] == pytest.approx(tp)
    assert est["false_positive"] == pytest.approx(fp)
    assert est["true_negative"] == pytest.approx(tn)
    assert est["false_negative"] == pytest.approx(fn)
    assert est["business_value"] == pytest.approx(1.0 * tn - 2.0 * fp - 5.0 * fn + 10.0 * tp)
    assert est["precision"] == pytest.approx(tp / (tp + fp))
    assert est["recall"] == pytest.approx(tp / (tp + fn))
    assert est["specificity"] == pytest.approx(tn / (tn + fp))
    assert est["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    realised = cbpe.check_with_labels(p, np.array([1, 1, 0, 0])).realised
    assert realised["business_value"] == pytest.approx((10.0 - 5.0 - 2.0 + 1.0) / 4)
    # multiclass: the mean over rows of cost[true, predicted], true weighted by q
    p3, y3 = _draw3(rng, 1000)
    mc = CBPE(metrics=("business_value",), cost_matrix=CLASS_COST, calibration="never")
    q = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    value = mc.fit(p3, y3).estimate(q).estimates["business_value"].value
    cost = np.array(CLASS_COST)
    assert value == pytest.approx((q[0] @ cost[:, 0] + q[1] @ cost[:, 2]) / 2)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_estimators_on_one_hot_labels_equal_scikit_learns_realised_values(kind: str) -> None:
    rng = np.random.default_rng(23)
    p, y = _draw(rng, 3000) if kind == "binary" else _draw3(rng, 3000)
    p = np.round(p, 2)  # ties in the scores
    if kind == "multiclass":
        p = p / p.sum(axis=1, keepdims=True)
    cost = BINARY_COST if kind == "binary" else CLASS_COST
    cbpe = CBPE(metrics=CBPE_METRICS, cost_matrix=cost, seed=0).fit(p, y)
    realised = cbpe.check_with_labels(p, y).realised
    assert cbpe.reference_values_ == pytest.approx(realised, abs=1e-9)
    if kind == "binary":
        assert realised["f1"] == pytest.approx(f1_score(y, p >= 0.5))
        assert realised["average_precision"] == pytest.approx(average_precision_score(y, p))


def test_resampled_sampling_errors_match_direct_resampling() -> None:
    rng = np.random.default_rng(24)
    p, y = _draw(rng, 4000)
    pred = (p >= 0.5).astype(int)
    se = sampling_errors(
        ["f1", "average_precision", "accuracy"],
        y,
        np.column_stack([1 - p, p]),
        pred,
        None,
        None,
        400,
        n_samples=300,
    )
    idx = rng.integers(0, 4000, (80, 400))
    assert se["f1"] == pytest.approx(np.std([f1_score(y[i], pred[i]) for i in idx]), rel=0.25)
    direct_ap = np.std([average_precision_score(y[i], p[i]) for i in idx])
    assert se["average_precision"] == pytest.approx(direct_ap, rel=0.25)
    assert se["accuracy"] == pytest.approx(np.std((pred[idx] == y[idx]).mean(axis=1)), rel=0.25)


def test_bad_metric_or_cost_matrix_is_refused_naming_the_value() -> None:
    rng = np.random.default_rng(25)
    p, y = _draw(rng, 300)
    with pytest.raises(ConfigError, match="'mape'") as info:
        CBPE(metrics=("f1", "mape"))
    assert info.value.hint is not None
    with pytest.raises(ConfigError, match="without a cost matrix") as info:
        CBPE(metrics=("business_value",))
    assert "value_TN" in str(info.value.hint)
    with pytest.raises(ConfigError, match=r"square .* got shape \(2, 3\)"):
        CBPE(metrics=("business_value",), cost_matrix=[[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ConfigError, match="matrix of numbers"):
        CBPE(metrics=("business_value",), cost_matrix=[["a", "b"], ["c", "d"]])
    with pytest.raises(ConfigError, match=r"must be 2 x 2 .* got shape \(3, 3\)"):
        CBPE(metrics=("business_value",), cost_matrix=CLASS_COST).fit(p, y)
    p3, y3 = _draw3(rng, 300)
    with pytest.raises(ConfigError, match=r"must be 3 x 3 .* got shape \(2, 2\)"):
        CBPE(metrics=("business_value",), cost_matrix=BINARY_COST).fit(p3, y3)


def test_metrics_undefined_on_a_window_are_nan_and_not_flagged() -> None:
    rng = np.random.default_rng(26)
    cbpe = CBPE(metrics=("precision", "recall", "roc_auc"), seed=0).fit(*_draw(rng, 2000))
    p = rng.uniform(0.0, 0.4, 200)  # nothing predicted positive
    check = cbpe.check_with_labels(p, np.zeros(200, int))  # and no positive label
    assert np.isnan(check.realised["precision"])
    assert np.isnan(check.realised["roc_auc"])
    assert check.within_band["precision"]
    assert np.isnan(cbpe.estimate(p).estimates["precision"].value)
