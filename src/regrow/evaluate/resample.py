"""Paired bootstrap resamples, drawn once and shared by every metric and gate of an evaluation.

A **Poisson bootstrap** (Hanley & MacGibbon 2006; Chamandy et al. 2012): in each of ``n_boot``
resamples, row ``i`` gets a weight ``w_bi`` drawn from Poisson(1), the number of times it would
be drawn into a resample. It approximates the classic multinomial bootstrap (resamples of
random size ``n +/- sqrt(n)``) and, unlike it, draws every row's weight independently, so
weights come in chunks of resamples that threads fill apart. The candidate and the baseline
are scored on the same weights (a **paired** bootstrap), as are every slice and every gate.

Weights are drawn with a 16-bit table (each Poisson probability exact to within 2^-16) as
``uint8``; chunk ``k`` uses the generator seeded ``[seed, k]``, so the draws depend only on
the seed, the number of rows and ``n_boot``, never on threads.

* Statistics that are ratios of weighted sums (a mean loss, an accuracy, a selection rate)
  come from one matrix product per chunk (:meth:`Resamples.sums`).
* ROC AUC is ranked once (:class:`RankedAUC`): per resample it is one cumulative sum of the
  negatives' weights in score order, read at each positive's rank. 1,000 resamples of 100,000
  rows take about 0.4 s per model on one core, where re-sorting each resample takes minutes.

>>> r = Resamples(5, n_boot=4, seed=1)
>>> r.sums(np.ones((5, 1))).ravel().tolist()  # resample sizes: Poisson(5)
[7.0, 6.0, 5.0, 4.0]
>>> auc = RankedAUC(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
>>> float(auc.values(np.ones((1, 4), np.uint8))[0])
0.75
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["RankedAUC", "Resamples", "percentile_interval"]

Array = np.ndarray[Any, Any]

#: Resamples x rows drawn at once: big enough to amortise Python, small enough for the cache.
CHUNK_CELLS = 2_000_000
#: Weights are kept between uses up to this many bytes (1,000 resamples of 200,000 rows).
CACHE_BYTES = 200_000_000


def _poisson_table() -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Poisson(1) quantiles of the 65,536 midpoints of [0, 1): a 16-bit draw's weight."""
    ks = np.arange(16)
    pmf = np.exp(-1.0) / np.array([math.factorial(int(k)) for k in ks])
    cdf = np.cumsum(pmf)
    u = (np.arange(65536) + 0.5) / 65536
    return np.searchsorted(cdf, u, side="right").astype(np.uint8)


_TABLE = _poisson_table()


class Resamples:
    """``n_boot`` Poisson(1) weights for each of ``rows`` rows (see the module docstring)."""

    def __init__(self, rows: int, n_boot: int = 1000, *, seed: int = 0) -> None:
        self.rows = rows
        self.n_boot = n_boot
        self.seed = seed
        self._per_chunk = max(1, min(n_boot, CHUNK_CELLS // max(rows, 1)))
        self._cache: dict[int, Array] | None = {} if rows * n_boot <= CACHE_BYTES else None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Resamples(rows={self.rows}, n_boot={self.n_boot}, seed={self.seed})"

    @property
    def chunks(self) -> int:
        """How many chunks of resamples the weights come in."""
        return -(-self.n_boot // self._per_chunk)

    def chunk(self, k: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The weights of chunk ``k``: ``uint8``, one row per resample, one column per row."""
        if self._cache is not None and k in self._cache:
            return self._cache[k]
        size = min(self._per_chunk, self.n_boot - k * self._per_chunk)
        draws = np.random.default_rng([self.seed, k]).integers(
            0, 65536, (size, self.rows), dtype=np.uint16
        )
        weights = _TABLE[draws]
        if self._cache is not None:
            with self._lock:
                self._cache[k] = weights
        return weights

    def __iter__(self) -> Iterator[np.ndarray[Any, np.dtype[np.uint8]]]:
        return (self.chunk(k) for k in range(self.chunks))

    def map(self, fn: Callable[[Array], Array]) -> Array:
        """``fn`` of each chunk's weights, stacked: one result row per resample.

        Chunks run on threads (numpy releases the GIL on large arrays).
        """
        from regrow.data._compute import parallel_map  # (regrow.data loads pandas)

        parts = parallel_map(
            lambda k: np.asarray(fn(self.chunk(k))), range(self.chunks), cells=self.rows * 64
        )
        return np.concatenate(parts, axis=0)

    def sums(self, columns: Array, *, counts: bool = False) -> Array:
        """``(n_boot, k)``: each resample's weighted sum of each of the ``k`` columns of
        ``columns`` (``(rows, k)``), by one matrix product per chunk (chunks on threads).

        ``counts``: the columns hold small whole numbers (0/1 indicators), so every sum is a
        whole number below 2^24 for up to a million rows and single precision is exact (and
        twice as fast).
        """
        dtype = np.float32 if counts and self.rows <= 1_000_000 else np.float64
        cols: Array = np.asarray(columns, dtype=dtype)
        return self.map(lambda w: np.asarray(np.matmul(w.astype(dtype), cols), dtype=np.float64))


class RankedAUC:
    """The binary ROC AUC of one score under any weights, its rows ranked once.

    ``positive`` marks the positive rows; ``rows`` (positions) restricts the AUC to a subset,
    such as a slice. Ties count one half, as in :func:`sklearn.metrics.roc_auc_score`. For a
    resample, the numerator counts, for each positive, the weight of the negatives scored
    below it (plus half of those tied with it), times its own weight.
    """

    def __init__(self, score: Array, positive: Array, rows: Array | None = None) -> None:
        score = np.asarray(score, dtype=np.float64)
        positive = np.asarray(positive, dtype=bool)
        where = np.arange(len(score)) if rows is None else np.asarray(rows)
        neg = where[~positive[where]]
        pos = where[positive[where]]
        self._neg = neg[np.argsort(score[neg], kind="stable")]
        self._pos = pos[np.argsort(score[pos], kind="stable")]
        sorted_neg = score[self._neg]
        # Positives in score order: their ranks among the negatives only grow, so the ones
        # with a negative below them are a suffix (a view of the weights, not a copy).
        low = np.searchsorted(sorted_neg, score[self._pos], side="left")
        high = np.searchsorted(sorted_neg, score[self._pos], side="right")
        self._low = (int(np.searchsorted(low, 0, side="right")), low - 1)
        # With ties, below + tied / 2 = (strictly below + below or tied) / 2.
        tied = bool((high > low).any())
        self._high = (int(np.searchsorted(high, 0, side="right")), high - 1) if tied else None

    def values(self, weights: Array) -> Array:
        """The AUC under each row of ``weights`` (``(b, rows)``); NaN where a class weighs 0."""
        w = np.asarray(weights)
        if self._neg.size == 0 or self._pos.size == 0:
            return np.full(w.shape[0], np.nan)
        # The weight of the negatives up to each rank. int32 holds it (and times a weight,
        # at most 15) below 100 million rows.
        dtype = np.int32 if w.shape[1] < 100_000_000 else np.int64
        negatives = np.take(w, self._neg, axis=1).astype(dtype)
        np.cumsum(negatives, axis=1, out=negatives)
        positives = np.take(w, self._pos, axis=1)
        total_neg = negatives[:, -1].astype(np.float64)
        total_pos = positives.sum(axis=1, dtype=np.int64).astype(np.float64)
        twice = _weighted_reads(negatives, positives, *self._low)
        if self._high is None:
            twice *= 2
        else:
            twice += _weighted_reads(negatives, positives, *self._high)
        with np.errstate(invalid="ignore", divide="ignore"):
            pairs = total_pos * total_neg
            return np.asarray(np.where(pairs > 0, twice / (2 * pairs), np.nan))


def _weighted_reads(cumulative: Array, weights: Array, first: int, at: Array) -> Array:
    """Per resample: the sum over positives ``first:`` of each one's weight times
    ``cumulative`` at ``at`` (the positives before ``first`` read nothing)."""
    if first >= len(at):
        return np.zeros(cumulative.shape[0], dtype=np.float64)
    read = np.take(cumulative, at[first:], axis=1)
    read *= weights[:, first:]
    return np.asarray(read.sum(axis=1, dtype=np.int64), dtype=np.float64)


def percentile_interval(draws: Array, level: float) -> tuple[float, float]:
    """The percentile interval of the finite ``draws`` (NaN, NaN when fewer than two)."""
    finite = np.asarray(draws, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)
