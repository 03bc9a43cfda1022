"""Chi-square test of homogeneity between the reference and current category counts.

The statistic is Pearson's chi-square of the 2 x k contingency table (reference counts, current
counts) over the reference's values plus ``other``, as ``scipy.stats.chi2_contingency(...,
correction=False)`` computes it; bins empty in both are dropped. The effect size is Cramér's V,
``sqrt(chi2 / (m + n))``, which does not grow with the sample size.

>>> import pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("c", pa.array(["a", "b"] * 50))
>>> ChiSquare().statistic(ref, ["a"] * 50 + ["b"] * 50)
0.0
"""

from __future__ import annotations

import numpy as np

from regrow.monitor.drift.base import Binned, BinnedTest, Floats

__all__ = ["ChiSquare"]


class ChiSquare(BinnedTest):
    """Pearson chi-square on categorical columns (effect size: Cramér's V)."""

    name = "chi_square"
    kinds = frozenset({"categorical"})
    margin = 0.02

    def batch(self, binned: Binned) -> Floats:
        """Chi-square of the 2 x k table per comparison."""
        m, n = binned.m, binned.n
        r = binned.ref * m
        c = binned.cur * n
        total = r + c
        er = total * (m / (m + n))
        ec = total * (n / (m + n))
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(total > 0, (r - er) ** 2 / er + (c - ec) ** 2 / ec, 0.0)
        return np.asarray(terms.sum(axis=-1), dtype=np.float64)

    def effect(self, statistic: Floats, binned: Binned) -> Floats:
        """Cramér's V of the 2 x k table."""
        return np.asarray(np.sqrt(statistic / (binned.m + binned.n)), dtype=np.float64)
