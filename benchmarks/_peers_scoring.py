"""Scoring for ``benchmarks/monitoring_peers.py``: realised metrics, drift ground truth, figures.

Realised metrics follow NannyML's definitions (so every tool is scored against the same
numbers, and NannyML's own realised values can be checked against them): the model's own
``prediction`` column is the predicted label; multiclass ``f1``, ``precision``, ``recall``,
``specificity``, ``roc_auc`` (one-vs-rest) and ``average_precision`` are macro averages over the
classes; confusion cells are shares of the chunk's rows, named NannyML's way
(``true_positive`` ..., ``true_<class>_pred_<class>``); ``business_value`` is the mean value per
row, ``sum(confusion * cost) / n`` with ``cost`` laid out true x predicted. Regression metrics
are NannyML's six: ``mae``, ``mape``, ``mse``, ``msle``, ``rmse``, ``rmsle``.

The drift **effect** of a feature, used for the ground truth, is tool-neutral and measured on
whole frames, not chunks: for a numeric column with more than 10 distinct reference values the
Wasserstein distance in reference standard deviations; for any other column (categorical,
boolean, counts with few values) the total-variation distance of the value shares (half the
L1 distance; 0.05 means 5 % of rows changed category).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_log_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

DRIFTED_FROM = 0.05  # effect on the whole post-change data from which a feature counts drifted
UNDRIFTED_BELOW = 0.02  # effect below which it counts undrifted; in between: "marginal"


def effect(reference: pd.Series, current: pd.Series) -> float:
    """How far ``current`` is from ``reference`` (see the module docstring).

    >>> x = pd.Series(np.arange(20.0))  # 20 distinct values: Wasserstein / std
    >>> round(effect(x, x + 2.0), 3)
    0.347
    >>> effect(pd.Series(["a", "b"]), pd.Series(["a", "a"]))
    0.5
    """
    numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    if numeric and reference.nunique() > 10:
        x, y = reference.to_numpy(float), current.to_numpy(float)
        return float(wasserstein_distance(x, y) / x.std())
    p = reference.value_counts(normalize=True)
    q = current.value_counts(normalize=True)
    values = p.index.union(q.index)
    diff = p.reindex(values, fill_value=0.0).to_numpy(float) - q.reindex(
        values, fill_value=0.0
    ).to_numpy(float)
    return float(0.5 * np.abs(diff).sum())


def realised_classification(
    y: np.ndarray,
    pred: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[Any],
    cost: Sequence[Sequence[float]],
) -> dict[str, float]:
    """Every CBPE metric of one chunk, NannyML's way. Binary: ``classes = [0, 1]``, ``scores``
    the positive class's probability; multiclass: ``scores`` is ``(n, k)`` in class order."""
    labels = list(classes)
    cm = confusion_matrix(y, pred, labels=labels).astype(float) / len(y)
    out = {"accuracy": float(np.trace(cm)), "business_value": float((cm * np.asarray(cost)).sum())}
    if len(labels) == 2:
        out["roc_auc"] = float(roc_auc_score(y, scores))
        out["average_precision"] = float(average_precision_score(y, scores))
        out["f1"] = float(f1_score(y, pred))
        out["precision"] = float(precision_score(y, pred))
        out["recall"] = float(recall_score(y, pred))
        (tn, fp), (fn, tp) = cm
        out["specificity"] = float(tn / (tn + fp))
        out |= {"true_positive": tp, "false_positive": fp}
        out |= {"true_negative": tn, "false_negative": fn}
        return {k: float(v) for k, v in out.items()}
    order = np.argsort(
        np.asarray(labels, dtype=object).astype(str)
    )  # scikit-learn wants them sorted
    ranked_labels, ranked_scores = [labels[i] for i in order], scores[:, order]
    onehot = np.asarray(y)[:, None] == np.asarray(ranked_labels)[None, :]
    out["roc_auc"] = float(roc_auc_score(y, ranked_scores, multi_class="ovr", labels=ranked_labels))
    out["average_precision"] = float(
        average_precision_score(onehot, ranked_scores, average="macro")
    )
    for name, score_fn in (
        ("f1", f1_score),
        ("precision", precision_score),
        ("recall", recall_score),
    ):
        out[name] = float(score_fn(y, pred, labels=labels, average="macro", zero_division=np.nan))
    spec = [(cm.sum() - cm[i].sum() - cm[:, i].sum() + cm[i, i]) for i in range(len(labels))]
    negatives = [cm.sum() - cm[i].sum() for i in range(len(labels))]
    out["specificity"] = float(np.mean(np.asarray(spec) / np.asarray(negatives)))
    for i, t in enumerate(labels):
        for j, p in enumerate(labels):
            out[f"true_{t}_pred_{p}"] = float(cm[i, j])
    return out


def realised_regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """NannyML's six regression metrics of one chunk."""
    mse = float(mean_squared_error(y, pred))
    msle = float(mean_squared_log_error(y, pred))
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "mape": float(mean_absolute_percentage_error(y, pred)),
        "mse": mse,
        "msle": msle,
        "rmse": float(np.sqrt(mse)),
        "rmsle": float(np.sqrt(msle)),
    }


def estimate_figures(
    chunks: Sequence[Mapping[str, Any]], estimates: Sequence[Mapping[str, Sequence[float]]]
) -> dict[str, dict[str, float]]:
    """Per metric: mean absolute error over every chunk, and the band's coverage over all
    chunks and over the undrifted ones. ``chunks[i]["realised"]`` holds the truth;
    ``estimates[i][metric]`` is ``(value, low, high)``; metrics a chunk lacks are skipped."""
    out: dict[str, dict[str, float]] = {}
    metrics = sorted({m for e in estimates for m in e})
    for m in metrics:
        err, hit, hit_undrifted = [], [], []
        for chunk, est in zip(chunks, estimates, strict=True):
            truth = chunk["realised"].get(m)
            if m not in est or truth is None or not np.isfinite(truth):
                continue
            value, low, high = est[m]
            if value is None or not np.isfinite(value):
                continue
            err.append(abs(value - truth))
            inside = low is not None and high is not None and low <= truth <= high
            hit.append(inside)
            if not chunk["drifted"]:
                hit_undrifted.append(inside)
        if err:
            out[m] = {
                "mae": float(np.mean(err)),
                "coverage": float(np.mean(hit)),
                "coverage_undrifted": float(np.mean(hit_undrifted)) if hit_undrifted else np.nan,
                "chunks": len(err),
            }
    return out


def drift_figures(
    truth: Sequence[Mapping[str, str]], flagged: Sequence[Mapping[str, bool]]
) -> dict[str, float]:
    """Recall on the drifted cells (chunk x feature), false alarms on the undrifted ones, and
    recall on the marginal ones, of one tool's flags against the ground truth."""
    counts = {"drifted": 0, "found": 0, "undrifted": 0, "false_alarms": 0}
    counts |= {"marginal": 0, "marginal_found": 0}
    for cells, flags in zip(truth, flagged, strict=True):
        for feature, state in cells.items():
            hit = bool(flags.get(feature, False))
            if state == "drifted":
                counts["drifted"] += 1
                counts["found"] += hit
            elif state == "marginal":
                counts["marginal"] += 1
                counts["marginal_found"] += hit
            else:
                counts["undrifted"] += 1
                counts["false_alarms"] += hit
    return {k: float(v) for k, v in counts.items()}


def add_drift(total: dict[str, float], part: Mapping[str, float]) -> dict[str, float]:
    """Sum of two :func:`drift_figures` results."""
    return {k: total.get(k, 0.0) + v for k, v in part.items()}
