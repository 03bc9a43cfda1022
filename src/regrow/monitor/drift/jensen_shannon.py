"""Jensen-Shannon distance (base 2, so it lies in ``[0, 1]``).

Numeric columns: on twenty equal-mass reference bins. Categorical columns: on the reference's
values plus the ``other`` bin. Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

Where the reference counted every value (``complete``), values it never saw are the ``unseen``
test's to judge, and the distance compares the shares of the values it knows: the distance is
a square root, so a sliver of new values weighed heavily (4 rows of a new category in 5,000
moved it from 0.003 to 0.020, past the margin, for a column whose known values had not moved).

>>> import pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("c", pa.array(["a", "a", "b", "b"]))
>>> round(JensenShannon().statistic(ref, ["a", "a", "a", "a"]), 4)
0.5579
"""

from __future__ import annotations

import numpy as np

from regrow.monitor.drift.base import Binned, BinnedTest, Floats
from regrow.monitor.drift.psi import coarse_probs

__all__ = ["JensenShannon", "js_distance"]

NUMERIC_BINS = 20


def js_distance(p: Floats, q: Floats) -> Floats:
    """Jensen-Shannon distance (base 2) of probability vectors along the last axis."""
    p = np.maximum(p, 0.0)
    q = np.maximum(q, 0.0)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=-1)
        kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=-1)
    return np.asarray(np.sqrt(np.maximum((kp + kq) / 2, 0.0)), dtype=np.float64)


class JensenShannon(BinnedTest):
    """Jensen-Shannon distance on numeric or categorical columns (effect: the distance)."""

    name = "jensen_shannon"
    kinds = frozenset({"numeric", "categorical"})
    margin = 0.02

    def batch(self, binned: Binned) -> Floats:
        """The distance per comparison."""
        if binned.kind == "numeric":
            return js_distance(*coarse_probs(binned, NUMERIC_BINS))
        if binned.unseen and binned.bins is not None and binned.bins.complete:
            seen = binned.cur[..., :-1]  # (a complete reference has nothing in ``other``)
            total = seen.sum(axis=-1, keepdims=True)
            if np.all(total > 0):
                return js_distance(binned.ref[..., :-1], seen / total)
        return js_distance(binned.ref, binned.cur)
