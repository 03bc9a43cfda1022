"""The metrics CBPE estimates, computed from a (soft) confusion matrix or from ranked scores.

Every metric is computed the same way for the estimate, the realised value and the reference
samples that give its sampling error; only the truth changes. A window has ``k`` classes
(``k = 2`` for a binary model, class 1 the positive), scores ``s`` of shape ``(n, k)``, the
predicted class of each row, and a ``truth`` matrix ``(n, k)``: the calibrated probabilities
``q`` of each class when estimating (NannyML's estimators), one-hot labels when realised.

The **confusion matrix** ``C[t, p]`` is the share of rows of true class ``t`` predicted ``p``:
``C = truth.T @ onehot(pred) / n``; for a binary model ``E[TP] = mean(q * yhat)``,
``E[FP] = mean((1 - q) * yhat)``, and so on. From it:

- ``accuracy`` is ``trace(C)``; ``precision`` ``TP / (TP + FP)``; ``recall``
  ``TP / (TP + FN)``; ``specificity`` ``TN / (TN + FP)``; ``f1`` ``2 TP / (2 TP + FP + FN)``,
  of the positive class when binary, macro-averaged one-vs-rest over the classes otherwise
  (a class whose ratio is undefined is left out of the mean, as scikit-learn's
  ``zero_division=np.nan``);
- ``confusion_matrix`` is reported cell by cell, as **shares of the rows** (normalised by
  ``n``): ``true_positive``, ``false_positive``, ``true_negative``, ``false_negative`` when
  binary, ``confusion_matrix[<true>,<pred>]`` otherwise;
- ``business_value`` is ``sum(C * cost)``, the **mean value per row**, with ``cost`` laid out
  true x predicted: NannyML's ``[[value_TN, value_FP], [value_FN, value_TP]]`` when binary.

``roc_auc`` and ``average_precision`` rank rows by score, with the truth as (soft) labels
(:mod:`regrow.monitor._cbpe_ranked`); macro over the classes when multiclass.

>>> q = np.array([[0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
>>> pred = np.array([0, 1, 1])
>>> c = confusion(q, pred, 2)
>>> round(float(c[1, 1]), 4), round(float(from_confusion(c, "precision", True)), 4)
(0.5333, 0.8)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from regrow.errors import ConfigError
from regrow.monitor._cbpe_ranked import ranked

__all__ = [
    "CBPE_METRICS",
    "CONFUSION_METRICS",
    "RANKED_METRICS",
    "cell_names",
    "check_cost_matrix",
    "confusion",
    "estimate_names",
    "estimated",
    "from_confusion",
    "realised",
]

Array = np.ndarray

CBPE_METRICS = (
    "roc_auc",
    "f1",
    "precision",
    "recall",
    "specificity",
    "accuracy",
    "confusion_matrix",
    "business_value",
    "average_precision",
)
RANKED_METRICS = frozenset({"roc_auc", "average_precision"})
CONFUSION_METRICS = frozenset(CBPE_METRICS) - RANKED_METRICS
_BINARY_CELLS = (
    ("true_positive", 1, 1),
    ("false_positive", 0, 1),
    ("true_negative", 0, 0),
    ("false_negative", 1, 0),
)


def check_cost_matrix(cost: Any, metrics: Sequence[str]) -> Array | None:
    """The cost matrix as a square float array, or None; refused when unusable or missing."""
    if cost is None:
        if "business_value" in metrics:
            raise ConfigError(
                "CBPE cannot estimate 'business_value' without a cost matrix (cost_matrix=None)",
                hint="pass cost_matrix=[[value_TN, value_FP], [value_FN, value_TP]] for a binary "
                "model, or a k x k matrix (true x predicted) for k classes",
            )
        return None
    try:
        m = np.asarray(cost, float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"the 'cost_matrix' parameter of CBPE must be a matrix of numbers; got {cost!r}",
            hint="pass [[value_TN, value_FP], [value_FN, value_TP]]",
        ) from exc
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2 or not np.isfinite(m).all():
        raise ConfigError(
            f"the 'cost_matrix' parameter of CBPE must be a square k x k matrix of finite "
            f"numbers, k >= 2; got shape {m.shape}",
            hint="pass [[value_TN, value_FP], [value_FN, value_TP]] for a binary model",
        )
    return m


def cell_names(classes: Sequence[Any] | None) -> list[tuple[str, int, int]]:
    """``(name, true, predicted)`` of each reported confusion cell (``None``: binary)."""
    if classes is None:
        return list(_BINARY_CELLS)
    return [
        (f"confusion_matrix[{t},{p}]", i, j)
        for i, t in enumerate(classes)
        for j, p in enumerate(classes)
    ]


def estimate_names(metrics: Sequence[str], classes: Sequence[Any] | None) -> list[str]:
    """The names of the estimates ``metrics`` yield (a confusion matrix yields its cells)."""
    names: list[str] = []
    for m in metrics:
        names += [c[0] for c in cell_names(classes)] if m == "confusion_matrix" else [m]
    return names


def confusion(truth: Array, pred: Array, k: int) -> Array:
    """The ``(k, k)`` confusion matrix of shares ``C[t, p]`` of a truth matrix ``(n, k)``."""
    return np.asarray(truth.T @ np.eye(k)[pred] / len(pred))


def _ovr(c: Array) -> tuple[Array, Array, Array, Array]:
    """Per class one-vs-rest TP, FP, FN, TN shares of ``c`` (``(..., k, k)``)."""
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    fp = c.sum(axis=-2) - tp
    fn = c.sum(axis=-1) - tp
    tn = c.sum(axis=(-2, -1))[..., None] - tp - fp - fn
    return tp, fp, fn, tn


def _ratio(num: Array, den: Array, binary: bool) -> Array:
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)
    if binary:
        return np.asarray(per_class[..., 1])
    defined = np.isfinite(per_class)
    total = np.where(defined, per_class, 0.0).sum(axis=-1)
    count = defined.sum(axis=-1)
    return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan))


def from_confusion(c: Array, metric: str, binary: bool, cost: Array | None = None) -> Array:
    """``metric`` (not ``confusion_matrix``, not a ranked one) from confusion shares ``c``."""
    tp, fp, fn, tn = _ovr(c)
    if metric == "accuracy":
        return np.asarray(np.trace(c, axis1=-2, axis2=-1))
    if metric == "precision":
        return _ratio(tp, tp + fp, binary)
    if metric == "recall":
        return _ratio(tp, tp + fn, binary)
    if metric == "specificity":
        return _ratio(tn, tn + fp, binary)
    if metric == "f1":
        return _ratio(2 * tp, 2 * tp + fp + fn, binary)
    if metric == "business_value":
        assert cost is not None
        return np.asarray((c * cost).sum(axis=(-2, -1)))
    raise ConfigError(f"no confusion-matrix form for metric {metric!r}")


def _ranked_classes(k: int) -> range:
    return range(1, 2) if k == 2 else range(k)


def estimated(
    metrics: Sequence[str],
    scores: Array,
    truth: Array,
    pred: Array,
    classes: Sequence[Any] | None,
    cost: Array | None,
) -> dict[str, float]:
    """Every estimate of ``metrics`` for a window, its truth a ``(n, k)`` probability matrix."""
    k = scores.shape[1]
    binary = classes is None
    c = confusion(truth, pred, k)
    out: dict[str, float] = {}
    pairs: list[tuple[float, float]] = []
    if RANKED_METRICS & set(metrics):
        pairs = [ranked(scores[:, j], truth[:, j]) for j in _ranked_classes(k)]
    for m in metrics:
        if m == "confusion_matrix":
            out.update({name: float(c[i, j]) for name, i, j in cell_names(classes)})
        elif m in RANKED_METRICS:
            values = np.array([p[0 if m == "roc_auc" else 1] for p in pairs])
            out[m] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        else:
            out[m] = float(from_confusion(c, m, binary, cost))
    return out


def realised(
    metrics: Sequence[str],
    y: Array,
    scores: Array,
    pred: Array,
    classes: Sequence[Any] | None,
    cost: Array | None,
) -> dict[str, float]:
    """The realised value of every estimate, from labels ``y`` (class indices), by scikit-learn.

    ROC AUC and average precision are NaN where a class has no positive (or, for ROC AUC, no
    negative) row; macro averages leave those classes out.
    """
    k = scores.shape[1]
    labels = list(range(k))
    avg: dict[str, Any] = (
        {"average": "binary", "pos_label": 1} if classes is None else {"average": "macro"}
    )
    out: dict[str, float] = {}
    counts = confusion_matrix(y, pred, labels=labels)
    for m in metrics:
        if m == "accuracy":
            out[m] = float(accuracy_score(y, pred))
        elif m in ("precision", "recall", "f1"):
            fn = {"precision": precision_score, "recall": recall_score, "f1": f1_score}[m]
            out[m] = float(fn(y, pred, labels=labels, zero_division=np.nan, **avg))
        elif m == "specificity":
            out[m] = float(from_confusion(counts / len(y), m, classes is None))
        elif m == "confusion_matrix":
            out.update({name: float(counts[i, j] / len(y)) for name, i, j in cell_names(classes)})
        elif m == "business_value":
            assert cost is not None
            out[m] = float((counts * cost).sum() / len(y))
        else:
            out[m] = _realised_ranked(m, y, scores, k)
    return out


def _realised_ranked(metric: str, y: Array, scores: Array, k: int) -> float:
    values = []
    for j in _ranked_classes(k):
        truth = y == j
        if not truth.any() or (metric == "roc_auc" and truth.all()):
            values.append(np.nan)
        elif metric == "roc_auc":
            values.append(float(roc_auc_score(truth, scores[:, j])))
        else:
            values.append(float(average_precision_score(truth, scores[:, j])))
    arr = np.array(values)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
