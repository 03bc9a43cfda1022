"""Metrics, and paired bootstrap intervals for the difference between two models.

Every metric takes the labels, a model's output (class probabilities with columns in the
order of ``classes``, the probability of the last class, or values) and the model's classes
(None for regression), and returns a float (NaN where it is undefined, e.g. ROC AUC on rows
of one class).

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1])
>>> round(METRICS["roc_auc"].fn(y, np.array([0.1, 0.4, 0.35, 0.8]), [0, 1]), 3)
0.75
>>> METRICS["rmse"].higher_is_better
False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from regrow.errors import ConfigError

__all__ = ["METRICS", "Metric", "default_metric", "paired_bootstrap"]

Array = np.ndarray


def _label_index(y: Array, classes: Sequence[Any]) -> Array:
    """Each label's column in the probability matrix; -1 for a label the model never saw."""
    order = np.asarray(classes)
    idx = np.searchsorted(order, y)
    idx = np.clip(idx, 0, len(order) - 1)
    return np.where(order[idx] == y, idx, -1)


def _classes(y: Array, classes: Sequence[Any] | None) -> Sequence[Any]:
    """The model's classes, or (when not given) the labels present, sorted."""
    return classes if classes is not None else sorted(np.unique(y).tolist())


def _proba_matrix(score: Array) -> Array:
    return score if score.ndim == 2 else np.column_stack([1 - score, score])


def _roc_auc(y: Array, score: Array, classes: Sequence[Any] | None) -> float:
    classes = _classes(y, classes)
    proba = _proba_matrix(score)
    if proba.shape[1] > 2:
        present = np.unique(y)
        if len(present) < 2:
            return float("nan")
        try:
            return float(roc_auc_score(y, proba, multi_class="ovr", labels=np.asarray(classes)))
        except ValueError:  # a class of the model missing from these labels
            return float("nan")
    pos = y == classes[-1]
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(proba[:, -1])
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(y: Array, score: Array, classes: Sequence[Any] | None) -> float:
    classes = _classes(y, classes)
    proba = _proba_matrix(score)
    idx = _label_index(y, classes)
    p = np.where(idx >= 0, proba[np.arange(len(y)), np.maximum(idx, 0)], 0.0)
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))


def _accuracy(y: Array, score: Array, classes: Sequence[Any] | None) -> float:
    classes = _classes(y, classes)
    idx = _label_index(y, classes)
    return float(np.mean(_proba_matrix(score).argmax(axis=1) == idx))


def _rmse(y: Array, pred: Array, classes: Sequence[Any] | None) -> float:
    return float(np.sqrt(np.mean((y.astype(float) - pred) ** 2)))


def _mae(y: Array, pred: Array, classes: Sequence[Any] | None) -> float:
    return float(np.mean(np.abs(y.astype(float) - pred)))


@dataclass(frozen=True)
class Metric:
    """A named metric and whether higher values are better."""

    name: str
    fn: Callable[[Array, Array, Sequence[Any] | None], float]
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
    classes: Sequence[Any] | None = None,
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
        deltas[i] = metric.fn(y[idx], candidate[idx], classes) - metric.fn(
            y[idx], baseline[idx], classes
        )
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(deltas, [alpha, 1 - alpha])
    return float(lo), float(hi)
