"""The sampling error of each CBPE estimate: the spread of its realised value over windows.

A window of ``n`` rows drawn like the labelled reference has a realised metric that varies
from window to window; its standard deviation is the sampling error that sets the width of the
estimate's band. It is computed once per window size, for every metric at once:

- **analytic** where the metric is a mean of row terms: accuracy (is the row right), each
  confusion cell (is the row in the cell) and business value (the row's value), whose
  standard deviation is exactly ``std(term) / sqrt(n)``;
- **resampled** otherwise: ``n_samples`` samples of ``n`` reference rows, drawn with
  replacement, share one draw of row indices. Ratios (precision, recall, specificity, F1)
  come from each sample's confusion counts (one ``bincount``); ranked metrics (ROC AUC,
  average precision) sort each sample's positions in the reference's score order, so the
  cost is ``O(n_samples * n log n)`` whatever the reference size. Above
  :data:`RESAMPLED_ROWS` rows the samples hold that many rows and the spread is scaled by
  ``sqrt(RESAMPLED_ROWS / n)``: these metrics are smooth functions of means, whose spread
  falls as ``1 / sqrt(n)`` (a 50,000-row window then costs what a 5,000-row one does).

>>> rng = np.random.default_rng(0)
>>> y = (rng.uniform(size=2000) < 0.5).astype(int)
>>> s = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.2, 2000), 0, 1)
>>> scores = np.column_stack([1 - s, s])
>>> se = sampling_errors(["accuracy", "f1", "roc_auc"], y, scores, (s >= 0.5).astype(int),
...                      None, None, 500)
>>> [round(se[m], 3) for m in ("accuracy", "f1", "roc_auc")]
[0.018, 0.02, 0.016]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from regrow.monitor._cbpe_metrics import RANKED_METRICS, cell_names, from_confusion
from regrow.monitor._cbpe_ranked import ranked_sorted, sort_plan

__all__ = ["RESAMPLED_ROWS", "sampling_errors"]

Array = np.ndarray
RESAMPLED_ROWS = 5_000
"""The most rows a resample holds; larger windows scale its spread by ``sqrt(rows / n)``."""
_CELLS_PER_BLOCK = 500_000  # sampled row indices held at once (a few float copies each)
_RATIOS = frozenset({"precision", "recall", "specificity", "f1"})


def _analytic(
    metrics: Sequence[str], y: Array, pred: Array, classes: Sequence[Any] | None, cost: Any
) -> dict[str, Array]:
    rows: dict[str, Array] = {}
    for m in metrics:
        if m == "accuracy":
            rows[m] = (pred == y).astype(float)
        elif m == "confusion_matrix":
            for name, i, j in cell_names(classes):
                rows[name] = ((y == i) & (pred == j)).astype(float)
        elif m == "business_value":
            rows[m] = np.asarray(cost, float)[y, pred]
    return rows


def _nan_mean(values: Array) -> Array:
    """The mean over axis 0 of the finite values (NaN where there are none), without warning."""
    ok = np.isfinite(values)
    count = ok.sum(axis=0)
    total = np.where(ok, values, 0.0).sum(axis=0)
    return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan))


def _std(draws: list[Array]) -> float:
    values = np.concatenate(draws)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


def sampling_errors(
    metrics: Sequence[str],
    y: Array,
    scores: Array,
    pred: Array,
    classes: Sequence[Any] | None,
    cost: Any,
    n: int,
    *,
    n_samples: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """The sampling error of every estimate of ``metrics`` for a window of ``n`` rows.

    ``y`` are the reference labels (class indices), ``scores`` its ``(n_ref, k)`` scores,
    ``pred`` its predicted classes; ``classes`` is ``None`` for a binary model.
    """
    k = scores.shape[1]
    out = {
        name: float(terms.std(ddof=1) / np.sqrt(n))
        for name, terms in _analytic(metrics, y, pred, classes, cost).items()
    }
    ratios = [m for m in metrics if m in _RATIOS]
    ranks = [m for m in metrics if m in RANKED_METRICS]
    if not ratios and not ranks:
        return out
    plans = []
    for j in range(1, 2) if k == 2 else range(k):
        order, group = sort_plan(scores[:, j])
        rank = np.empty(len(order), int)
        rank[order] = np.arange(len(order))
        plans.append((rank, y[order] == j, group))
    rng = np.random.default_rng(seed)
    cell = y * k + pred
    size = min(n, RESAMPLED_ROWS)
    scale = float(np.sqrt(size / n))
    block = max(1, _CELLS_PER_BLOCK // max(size, 1))
    draws: dict[str, list[Array]] = {m: [] for m in (*ratios, *ranks)}
    for start in range(0, n_samples, block):
        b = min(block, n_samples - start)
        idx = rng.integers(0, len(y), (b, size))
        if ratios:
            flat = (cell[idx] + (np.arange(b) * k * k)[:, None]).ravel()
            c = np.bincount(flat, minlength=b * k * k).reshape(b, k, k) / size
            for m in ratios:
                draws[m].append(from_confusion(c, m, classes is None))
        if ranks:
            per_class = []
            for rank, truth, group in plans:
                r = np.sort(rank[idx], axis=1)
                per_class.append(ranked_sorted(truth[r], group[r]))
            for m in ranks:
                which = 1 if m == "average_precision" else 0
                draws[m].append(_nan_mean(np.stack([p[which] for p in per_class])))
    out.update({m: _std(d) * scale for m, d in draws.items()})
    return out
