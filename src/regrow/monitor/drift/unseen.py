"""The share of current values never seen in the reference, as its own signal.

It applies when the reference profile counted every distinct value (``complete``). Its p-value
is analytic: by Good-Turing, the probability mass of values a reference of ``m`` rows never
showed is about ``f1 / m`` (``f1``: values seen exactly once; at least ``1 / m``), so the number
of unseen values in ``n`` current rows is compared with a Binomial(n, f1 / m) tail. Its effect
interval is the Wilson 95 % interval of the rate.

>>> import pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("c", pa.array(["a", "b"] * 50))
>>> Unseen().statistic(ref, ["a", "b", "z", "z"])
0.5
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import bdtrc

from regrow.monitor.drift.base import Binned, BinnedTest, Floats

__all__ = ["Unseen"]


class Unseen(BinnedTest):
    """Rate of never-seen categories (effect size: the rate)."""

    name = "unseen"
    kinds = frozenset({"categorical"})
    margin = 0.001

    def batch(self, binned: Binned) -> Floats:
        """The unseen rate (the same for every draw: only observed data has unseen values)."""
        shape = binned.cur.shape[:-1]
        return np.full(shape, binned.unseen / binned.n, dtype=np.float64)

    def p_value(self, binned: Binned) -> float:
        """P(at least this many unseen values | no drift), from the Good-Turing mass."""
        if binned.unseen == 0:
            return 1.0
        assert binned.bins is not None
        mass = max(binned.bins.singletons, 1) / binned.m
        return float(bdtrc(binned.unseen - 1, binned.n, min(mass, 1.0)))

    def interval(self, binned: Binned, z: float = 1.959964) -> tuple[float, float]:
        """Wilson score interval of the unseen rate."""
        n, p = binned.n, binned.unseen / binned.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)
