"""Population Stability Index on ten equal-mass reference bins.

``PSI = sum (cur_i - ref_i) * ln(cur_i / ref_i)`` over the bins cut at the reference deciles;
a proportion of zero is floored at ``1e-4`` so the index stays finite. The common rule of thumb
reads ``< 0.1`` as stable and ``> 0.25`` as a major shift.

>>> import numpy as np, pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("x", pa.array(np.arange(1000.0)))
>>> PSI().statistic(ref, np.arange(1000.0))
0.0
"""

from __future__ import annotations

import numpy as np

from regrow.monitor.drift.base import Binned, BinnedTest, Floats

__all__ = ["PSI", "coarse_probs", "psi"]

FLOOR = 1e-4
"""Proportions below this are raised to it before taking logarithms."""


def coarse_probs(binned: Binned, bins: int) -> tuple[Floats, Floats]:
    """Reference and current probabilities on ``bins`` equal-mass reference bins."""
    idx = binned.numeric_grid.coarse(bins)
    ref = np.diff(binned.ref[..., idx], prepend=0.0, append=1.0, axis=-1)
    cur = np.diff(binned.cur[..., idx], prepend=0.0, append=1.0, axis=-1)
    return ref, cur


def psi(ref: Floats, cur: Floats) -> Floats:
    """The PSI of probability vectors along the last axis (zeros floored at :data:`FLOOR`)."""
    r = np.maximum(ref, FLOOR)
    c = np.maximum(cur, FLOOR)
    return np.asarray(((c - r) * np.log(c / r)).sum(axis=-1), dtype=np.float64)


class PSI(BinnedTest):
    """Population Stability Index on numeric columns (effect size: the index)."""

    name = "psi"
    kinds = frozenset({"numeric"})
    margin = 0.02

    def batch(self, binned: Binned) -> Floats:
        """The PSI per comparison."""
        return psi(*coarse_probs(binned, 10))
