"""Metrics against scikit-learn, including one-class and multiclass labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from regrow.evaluate.metrics import METRICS, paired_bootstrap

RNG = np.random.default_rng(0)


def binary() -> tuple[np.ndarray, np.ndarray]:
    y = RNG.integers(0, 2, 300)
    p = np.clip(0.3 * y + RNG.uniform(0, 0.7, 300), 0.01, 0.99)
    return y, np.column_stack([1 - p, p])


def multiclass() -> tuple[np.ndarray, np.ndarray]:
    y = RNG.integers(0, 3, 300)
    raw = RNG.dirichlet([1, 1, 1], 300) + np.eye(3)[y] * 0.5
    return y, raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("make", [binary, multiclass])
def test_metrics_match_sklearn(make) -> None:  # type: ignore[no-untyped-def]
    y, proba = make()
    classes = sorted(np.unique(y).tolist())
    assert METRICS["log_loss"].fn(y, proba, classes) == pytest.approx(
        skm.log_loss(y, proba, labels=classes)
    )
    assert METRICS["accuracy"].fn(y, proba, classes) == pytest.approx(
        skm.accuracy_score(y, proba.argmax(axis=1))
    )
    expected_auc = (
        skm.roc_auc_score(y, proba[:, 1])
        if proba.shape[1] == 2
        else skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert METRICS["roc_auc"].fn(y, proba, classes) == pytest.approx(expected_auc)


def test_one_class_labels_use_the_models_classes() -> None:
    y = np.zeros(4, dtype=int)
    proba = np.array([[0.9, 0.1]] * 4)
    assert METRICS["log_loss"].fn(y, proba, [0, 1]) == pytest.approx(-np.log(0.9))
    assert METRICS["accuracy"].fn(np.ones(4, dtype=int), proba, [0, 1]) == 0.0
    assert np.isnan(METRICS["roc_auc"].fn(y, proba, [0, 1]))


def test_string_labels() -> None:
    y = np.array(["no", "yes", "yes", "no"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])
    assert METRICS["accuracy"].fn(y, proba, ["no", "yes"]) == 1.0
    assert METRICS["roc_auc"].fn(y, proba, ["no", "yes"]) == 1.0


def test_regression_metrics() -> None:
    y = RNG.normal(size=100)
    pred = y + RNG.normal(scale=0.3, size=100)
    assert METRICS["rmse"].fn(y, pred, None) == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, pred))
    )
    assert METRICS["mae"].fn(y, pred, None) == pytest.approx(skm.mean_absolute_error(y, pred))


def test_paired_bootstrap_interval_covers_a_real_improvement_only() -> None:
    y, good = binary()
    noise = np.clip(good + RNG.normal(scale=0.3, size=good.shape), 0.01, 0.99)
    noise = noise / noise.sum(axis=1, keepdims=True)
    lo, hi = paired_bootstrap(METRICS["roc_auc"], y, good, noise, classes=[0, 1], n_boot=200)
    assert 0 < lo < hi
    lo, hi = paired_bootstrap(METRICS["roc_auc"], y, good, good, classes=[0, 1], n_boot=50)
    assert lo == hi == 0.0


def test_resampled_metrics_are_the_metrics_under_each_resamples_weights() -> None:
    from regrow.evaluate.metrics import resampled_values
    from regrow.evaluate.resample import Resamples

    y, proba = multiclass()
    resamples = Resamples(len(y), 20, seed=1)
    weights = np.vstack(list(resamples))
    auc = resampled_values(METRICS["roc_auc"], y, [proba], resamples, classes=[0, 1, 2])
    for b in range(0, 20, 5):
        expected = skm.roc_auc_score(y, proba, multi_class="ovr", sample_weight=weights[b])
        assert auc[0, b, 0] == pytest.approx(expected)
    target = RNG.normal(size=300)
    pred = target + RNG.normal(scale=0.3, size=300)
    rmse = resampled_values(METRICS["rmse"], target, [pred], Resamples(300, 10, seed=2))
    w = np.vstack(list(Resamples(300, 10, seed=2)))
    for b in range(10):
        expected = np.sqrt(skm.mean_squared_error(target, pred, sample_weight=w[b]))
        assert rmse[0, b, 0] == pytest.approx(expected)


def test_the_paired_interval_is_deterministic_for_a_seed() -> None:
    y, good = binary()
    noise = np.clip(good + RNG.normal(scale=0.2, size=good.shape), 0.01, 0.99)
    first = paired_bootstrap(METRICS["log_loss"], y, good, noise, classes=[0, 1], seed=3)
    assert first == paired_bootstrap(METRICS["log_loss"], y, good, noise, classes=[0, 1], seed=3)
    assert first != paired_bootstrap(METRICS["log_loss"], y, good, noise, classes=[0, 1], seed=4)
