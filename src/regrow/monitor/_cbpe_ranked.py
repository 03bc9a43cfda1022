"""The ranking metrics of CBPE, ROC AUC and average precision, on rows sorted by score.

Both metrics only depend on the order of the scores, so they are computed on arrays already
sorted by ascending score: ``truth`` holds, per row, the label (0/1) or the *probability*
that the row is positive (then the result is NannyML's expected metric), ``group`` a tie
group id (equal scores share one). Arrays may be ``(n,)`` or ``(B, n)``: ``B`` reference
samples are scored at once, without a loop over rows or samples.

- ROC AUC is the ratio of concordant to positive-negative pairs, ties counting one half; with
  probabilities a row is never paired with itself (its ``p (1 - p)`` is taken off both), as in
  :func:`regrow.monitor.performance.weighted_auc`.
- Average precision is scikit-learn's step sum over the distinct scores, from the highest:
  ``sum_t (R_t - R_t-1) P_t``, with ``P_t`` and ``R_t`` the (expected) precision and recall of
  predicting positive at or above score ``t``.

>>> s = np.array([0.1, 0.4, 0.35, 0.8])
>>> y = np.array([0, 0, 1, 1])
>>> [round(float(v), 4) for v in ranked(s, y)]
[0.75, 0.8333]
"""

from __future__ import annotations

import numpy as np

__all__ = ["ranked", "ranked_sorted", "sort_plan"]

Array = np.ndarray


def sort_plan(score: Array) -> tuple[Array, Array]:
    """The stable ascending order of ``score`` and each sorted row's tie group id."""
    order = np.argsort(score, kind="stable")
    sorted_s = score[order]
    group = np.cumsum(np.r_[False, sorted_s[1:] != sorted_s[:-1]])
    return order, group


def ranked(score: Array, truth: Array) -> tuple[float, float]:
    """``(roc_auc, average_precision)`` of ``score`` for labels or probabilities ``truth``."""
    order, group = sort_plan(np.asarray(score, float))
    auc, ap = ranked_sorted(np.asarray(truth, float)[order], group)
    return float(auc), float(ap)


def ranked_sorted(truth: Array, group: Array) -> tuple[Array, Array]:
    """ROC AUC and average precision of rows sorted by ascending score (see the module).

    ``truth`` is bool (labels) or float (probabilities), ``(n,)`` or ``(B, n)``. The work is
    done per tie group of the flattened samples, so each step is one pass over the rows. NaN
    where a sample has no positive (both) or no negative (ROC AUC) weight.
    """
    labels = np.asarray(truth).dtype == bool
    pos = np.atleast_2d(np.asarray(truth)).ravel()
    b, n = np.atleast_2d(truth).shape
    new = np.ones((b, n), bool)
    g = np.atleast_2d(group)
    np.not_equal(g[:, 1:], g[:, :-1], out=new[:, 1:])
    starts = np.flatnonzero(new)  # every sample's first row starts a group
    size = np.diff(np.r_[starts, b * n])
    g_pos = np.add.reduceat(pos, starts, dtype=float)
    g_neg = size - g_pos
    row = starts // n
    offset = starts - row * n  # rows of the sample below the group
    before = np.cumsum(g_pos) - g_pos  # positives before the group, over all samples
    first = np.flatnonzero(offset == 0)
    pos_below = before - before[first][row]
    total_pos = np.bincount(row, g_pos, b)
    total_neg = n - total_pos
    neg_below = offset - pos_below
    num = np.bincount(row, g_pos * (neg_below + 0.5 * g_neg), b)
    den = total_pos * total_neg
    if not labels:  # a row is never paired with itself
        self_pairs = np.sum(np.atleast_2d(truth) * (1.0 - np.atleast_2d(truth)), axis=1)
        num, den = num - 0.5 * self_pairs, den - self_pairs
    precision = (total_pos[row] - pos_below) / (n - offset)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), np.nan)
        ap = np.where(total_pos > 0, np.bincount(row, g_pos * precision, b) / total_pos, np.nan)
    if np.ndim(truth) == 1:
        return auc[0], ap[0]
    return auc, ap
