"""Metrics, and paired bootstrap intervals for the difference between two models.

Every metric takes the labels, a model's output (class probabilities with columns in the
order of ``classes``, the probability of the last class, or values) and the model's classes
(None for regression), and returns a float (NaN where it is undefined, e.g. ROC AUC on rows
of one class).

:func:`resampled_values` gives a metric's value on every resample of a
:class:`~regrow.evaluate.resample.Resamples`, for several models and row groups (slices) at
once: ROC AUC through :class:`~regrow.evaluate.resample.RankedAUC` (multiclass: the mean of
the one-vs-rest AUCs, as scikit-learn's ``multi_class="ovr"``), the others as weighted means
of per-row terms (``Metric.terms``; RMSE is the root of one), from one matrix product.

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

from regrow.errors import ConfigError
from regrow.evaluate.resample import RankedAUC, Resamples, percentile_interval

__all__ = [
    "BOUNDED",
    "METRICS",
    "Metric",
    "default_metric",
    "get_metric",
    "paired_bootstrap",
    "resampled_values",
]

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
        from sklearn.metrics import roc_auc_score  # here: importing the metrics stays light

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
    ones = np.ones((1, len(y)), dtype=np.uint8)
    return float(RankedAUC(proba[:, -1], pos).values(ones)[0])


def _log_loss_terms(y: Array, score: Array, classes: Sequence[Any] | None) -> Array:
    classes = _classes(y, classes)
    proba = _proba_matrix(score)
    idx = _label_index(y, classes)
    p = np.where(idx >= 0, proba[np.arange(len(y)), np.maximum(idx, 0)], 0.0)
    return np.asarray(-np.log(np.clip(p, 1e-15, 1.0)))


def _accuracy_terms(y: Array, score: Array, classes: Sequence[Any] | None) -> Array:
    idx = _label_index(y, _classes(y, classes))
    return np.asarray(_proba_matrix(score).argmax(axis=1) == idx, dtype=np.float64)


def _squared_terms(y: Array, pred: Array, classes: Sequence[Any] | None) -> Array:
    return np.asarray((y.astype(float) - pred) ** 2)


def _absolute_terms(y: Array, pred: Array, classes: Sequence[Any] | None) -> Array:
    return np.asarray(np.abs(y.astype(float) - pred))


def _log_loss(y: Array, score: Array, classes: Sequence[Any] | None) -> float:
    return float(np.mean(_log_loss_terms(y, score, classes)))


def _accuracy(y: Array, score: Array, classes: Sequence[Any] | None) -> float:
    return float(np.mean(_accuracy_terms(y, score, classes)))


def _rmse(y: Array, pred: Array, classes: Sequence[Any] | None) -> float:
    return float(np.sqrt(np.mean(_squared_terms(y, pred, classes))))


def _mae(y: Array, pred: Array, classes: Sequence[Any] | None) -> float:
    return float(np.mean(_absolute_terms(y, pred, classes)))


Terms = Callable[[Array, Array, Sequence[Any] | None], Array]


@dataclass(frozen=True)
class Metric:
    """A named metric and whether higher values are better.

    ``terms`` gives per-row terms whose mean is the metric (``root``: whose mean's square root
    is), None for ROC AUC, which ranks rows against each other.
    """

    name: str
    fn: Callable[[Array, Array, Sequence[Any] | None], float]
    higher_is_better: bool
    task: str
    terms: Terms | None = None
    root: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", _roc_auc, True, "classification"),
        Metric("log_loss", _log_loss, False, "classification", _log_loss_terms),
        Metric("accuracy", _accuracy, True, "classification", _accuracy_terms),
        Metric("rmse", _rmse, False, "regression", _squared_terms, root=True),
        Metric("mae", _mae, False, "regression", _absolute_terms),
    )
}

#: Metrics whose values lie in [0, 1]: an absolute change of 1 or more is impossible.
BOUNDED = frozenset({"roc_auc", "accuracy"})


def default_metric(task: str) -> str:
    """The metric used when none is named: ROC AUC for classification, RMSE for regression."""
    return "roc_auc" if task == "classification" else "rmse"


def get_metric(name: str, task: str) -> Metric:
    """The metric called ``name``, checked against the system's task."""
    metric = METRICS.get(name)
    if metric is None:
        import difflib

        mine = sorted(n for n, m in METRICS.items() if m.task == task) or sorted(METRICS)
        close = difflib.get_close_matches(name, mine, n=1)
        raise ConfigError(
            f"unknown metric {name!r}",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + f"the {task} metrics are {mine}",
        )
    if metric.task != task:
        raise ConfigError(
            f"metric {name!r} is for {metric.task}, not {task}",
            hint=f"use one of {sorted(n for n, m in METRICS.items() if m.task == task)}",
        )
    return metric


def resampled_values(
    metric: Metric,
    y: Array,
    scores: Sequence[Array],
    resamples: Resamples,
    *,
    classes: Sequence[Any] | None = None,
    groups: Sequence[Array | None] = (None,),
) -> Array:
    """``metric`` of each of ``scores`` on each resample and row group: ``(len(scores),
    n_boot, len(groups))``. A group is an array of row positions (a slice); None is every row.
    NaN where the metric is undefined on a resample (a class with no weight).

    >>> y = np.array([0, 1, 0, 1, 1, 0])
    >>> p = np.array([0.2, 0.9, 0.4, 0.6, 0.3, 0.1])
    >>> values = resampled_values(METRICS["accuracy"], y, [p], Resamples(6, 200))
    >>> values.shape, bool(0 < np.nanmean(values) < 1)
    ((1, 200, 1), True)
    """
    rows = resamples.rows
    where = [np.arange(rows) if g is None else np.asarray(g) for g in groups]
    if metric.terms is not None:
        masks = np.zeros((rows, len(where)))
        for j, positions in enumerate(where):
            masks[positions, j] = 1.0
        terms = [metric.terms(y, np.asarray(s), classes) for s in scores]
        columns = np.hstack([masks, *(t[:, None] * masks for t in terms)])
        sums = resamples.sums(columns)
        weight = sums[:, : len(where)]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.stack(
                [
                    np.where(weight > 0, sums[:, (i + 1) * len(where) : (i + 2) * len(where)], 0)
                    / np.where(weight > 0, weight, np.nan)
                    for i in range(len(scores))
                ]
            )
        return np.sqrt(out) if metric.root else out
    return np.stack([_resampled_auc(y, np.asarray(s), classes, resamples, where) for s in scores])


def _resampled_auc(
    y: Array, score: Array, classes: Sequence[Any] | None, resamples: Resamples, where: list[Array]
) -> Array:
    classes = _classes(y, classes)
    proba = _proba_matrix(score)
    idx = _label_index(y, classes)
    if proba.shape[1] == 2:
        rankings = [[RankedAUC(proba[:, 1], idx == 1, rows)] for rows in where]
    else:
        rankings = [
            [RankedAUC(proba[:, k], idx == k, rows) for k in range(proba.shape[1])]
            for rows in where
        ]

    def chunk(weights: Array) -> Array:
        return np.stack(
            [np.mean([r.values(weights) for r in group], axis=0) for group in rankings], axis=1
        )

    return resamples.map(chunk)


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

    Both models are scored on the same resampled rows (Poisson weights,
    :class:`~regrow.evaluate.resample.Resamples`), so the interval reflects the difference
    between them, not the noise of each.
    """
    values = resampled_values(
        metric, y, [candidate, baseline], Resamples(len(y), n_boot, seed=seed), classes=classes
    )
    return percentile_interval(values[0, :, 0] - values[1, :, 0], level)
