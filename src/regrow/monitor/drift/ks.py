"""Kolmogorov-Smirnov: the largest gap between the reference and current CDFs.

Computed at the reference grid's edges (:class:`~regrow.monitor.drift.base.NumericGrid`), with
the reference CDF taken from its KLL sketch. The exact two-sample statistic ``D`` satisfies
``D_hat - rank_error <= D <= D_hat + error_bound``, where :meth:`KS.error_bound` adds the sketch's
rank error and how much the CDF gap can grow between two adjacent edges.

>>> import numpy as np, pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("x", pa.array(np.arange(100.0)))
>>> KS().statistic(ref, np.arange(50.0, 150.0))
0.5
"""

from __future__ import annotations

import numpy as np

from regrow.monitor.drift.base import Binned, BinnedTest, Floats

__all__ = ["KS"]


class KS(BinnedTest):
    """Kolmogorov-Smirnov statistic on numeric columns (effect size: the statistic)."""

    name = "ks"
    kinds = frozenset({"numeric"})
    margin = 0.02

    def batch(self, binned: Binned) -> Floats:
        """``max |F_ref - F_cur|`` over the grid edges, per comparison."""
        return np.asarray(binned.abs_gap.max(axis=-1), dtype=np.float64)

    def error_bound(self, binned: Binned) -> float:
        """How far above :meth:`batch`'s value the exact two-sample KS statistic can lie.

        Between two adjacent edges each CDF only rises, by the mass it puts there, so the gap
        inside is at most the smaller gap at the two ends plus the larger of the two masses.
        The sketch's rank error is added (it can move the value either way).
        """
        gap = binned.abs_gap
        rises = np.maximum(np.diff(binned.ref), np.diff(binned.cur))
        inside = float((np.minimum(gap[:-1], gap[1:]) + rises).max(initial=0.0))
        below = float(gap[0] + binned.ref[0])  # left of the reference minimum
        excess = max(0.0, inside - float(gap.max()), below - float(gap.max()))
        return binned.numeric_grid.rank_error + excess
