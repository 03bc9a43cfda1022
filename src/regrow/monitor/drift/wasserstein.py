"""Wasserstein-1 distance, in units of the reference standard deviation.

``W = integral |F_ref(x) - F_cur(x)| dx / std_ref``: the average distance values must move to
turn one distribution into the other, so ``0.1`` reads "a tenth of a standard deviation". The
integral is a left Riemann sum over the reference grid's edges (``1/1000`` quantile spacing), plus
the exact contribution of current values outside the reference's range;
:meth:`Wasserstein.error_bound` bounds the difference to the exact two-sample distance.

>>> import numpy as np, pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("x", pa.array(np.arange(100.0)))
>>> round(Wasserstein().statistic(ref, np.arange(100.0) + 20) * ref.std, 6)
20.0
"""

from __future__ import annotations

import numpy as np

from regrow.monitor.drift.base import Binned, BinnedTest, Floats

__all__ = ["Wasserstein"]


class Wasserstein(BinnedTest):
    """Wasserstein-1 normalised by the reference std (effect size: the statistic)."""

    name = "wasserstein"
    kinds = frozenset({"numeric"})
    margin = 0.05

    def batch(self, binned: Binned) -> Floats:
        """``integral |F_ref - F_cur| dx / std_ref`` per comparison."""
        grid = binned.numeric_grid
        inside = binned.abs_gap @ grid.node_weights
        return np.asarray((inside + binned.tails) / grid.scale, dtype=np.float64)

    def error_bound(self, binned: Binned) -> float:
        """How far :meth:`batch`'s value can lie from the exact normalised distance.

        Inside each pair of adjacent edges the CDF gap changes by at most the larger of the two
        masses there, and the sketch's rank error can shift the reference CDF everywhere in
        the reference's range.
        """
        grid = binned.numeric_grid
        rises = np.maximum(np.diff(binned.ref), np.diff(binned.cur))
        spread = float(grid.edges[-1] - grid.edges[0])
        return float((np.diff(grid.edges) @ rises + spread * grid.rank_error) / grid.scale)
