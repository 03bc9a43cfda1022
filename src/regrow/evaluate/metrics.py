"""Metrics, and paired bootstrap intervals for the difference between two models.

Every metric takes the labels and a model's output (the probability of the positive class,
class probabilities, or values) and returns a float.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1])
>>> round(METRICS["roc_auc"].fn(y, np.array([0.1, 0.4, 0.35, 0.8])), 3)
0.75
>>> METRICS["rmse"].higher_is_better
False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from regrow.errors import ConfigError

__all__ = ["METRICS", "Metric", "default_metric", "paired_bootstrap"]

Array = np.ndarray


def _positive(score: Array) -> Array:
    return score[:, -1] if score.ndim == 2 else score


def _roc_auc(y: Array, score: Array) -> float:
    s = _positive(score)
    pos = y == y.max() if y.dtype != bool else y
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(y: Array, score: Array) -> float:
    p = np.clip(_positive(score), 1e-15, 1 - 1e-15)
    pos = y == y.max()
    return float(-np.mean(np.where(pos, np.log(p), np.log(1 - p))))


def _accuracy(y: Array, score: Array) -> float:
    if score.ndim == 2:
        return float(np.mean(score.argmax(axis=1) == np.searchsorted(np.unique(y), y)))
    return float(np.mean((score >= 0.5) == (y == y.max())))


def _rmse(y: Array, pred: Array) -> float:
    return float(np.sqrt(np.mean((y.astype(float) - pred) ** 2)))


def _mae(y: Array, pred: Array) -> float:
    return float(np.mean(np.abs(y.astype(float) - pred)))


@dataclass(frozen=True)
class Metric:
    """A named metric and whether higher values are better."""

    name: str
    fn: Callable[[Array, Array], float]
    higher_is_better: bool
    task: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", _roc_auc, True, "classification"),
        Metric("log_loss", _log_loss, False, "classification"),
        Metric("accuracy", _accuracy, True, "classification"),
        Metric("rmse", _rmse, False, "regression"),
        Metric("mae", _mae, False, "regression"),
    )
}


def default_metric(task: str) -> str:
    """The metric used when none is named: ROC AUC for classification, RMSE for regression."""
    return "roc_auc" if task == "classification" else "rmse"


def get_metric(name: str, task: str) -> Metric:
    """The metric called ``name``, checked against the system's task."""
    metric = METRICS.get(name)
    if metric is None:
        raise ConfigError(f"unknown metric {name!r}", hint=f"use one of {sorted(METRICS)}")
    if metric.task != task:
        raise ConfigError(
            f"metric {name!r} is for {metric.task}, not {task}",
            hint=f"use one of {sorted(n for n, m in METRICS.items() if m.task == task)}",
        )
    return metric


def paired_bootstrap(
    metric: Metric,
    y: Array,
    candidate: Array,
    baseline: Array,
    *,
    n_boot: int = 300,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``metric(candidate) - metric(baseline)`` over paired resamples.

    Both models are scored on the same resampled rows, so the interval reflects the
    difference between them, not the noise of each.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    deltas = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        deltas[i] = metric.fn(y[idx], candidate[idx]) - metric.fn(y[idx], baseline[idx])
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(deltas, [alpha, 1 - alpha])
    return float(lo), float(hi)
