"""The share of null values in a column, as a drift signal of its own.

Every column profile counts its nulls (NaN counts as null in float columns), so the window's
null rate ``p_cur = x_cur / n`` is compared with the reference's ``p_ref = x_ref / m`` by a
two-sided **two-proportion test** that uses both sample sizes (the reference is a sample too):

* the pooled z-test (the 1-degree-of-freedom chi-square without continuity correction) when
  every cell of the 2 x 2 table expects at least :data:`MIN_EXPECTED` values under the pooled
  rate;
* Fisher's exact test otherwise (few nulls or few rows), which never under-states the p-value.

The statistic and the effect size are the absolute difference ``|p_cur - p_ref|``; its 95 %
interval comes from Newcombe's hybrid score interval of ``p_cur - p_ref`` (method 10, built from
the two Wilson intervals). The default practically-irrelevant margin is 0.01 (one percentage
point). The test is analytic, so :class:`~regrow.monitor.calibration.Calibrator` simulates
nothing for it. It is not in :mod:`~.registry`'s table: it is not a choice of distribution test
but an extra row the drift monitor adds for every column where either side has nulls.

>>> import pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("x", pa.array([None] * 50 + [1.0] * 4950))  # 1 % null
>>> window = pa.array([None] * 500 + [1.0] * 4500)  # 10 % null
>>> binned = null_binned(ref, window)
>>> round(NullRate().statistic(ref, window), 3), NullRate().p_value(binned) < 1e-50
(0.09, True)
>>> lo, hi = NullRate().interval(binned)
>>> bool(0.08 < lo < 0.09 < hi < 0.1)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import fisher_exact

from regrow.data._compute import as_array
from regrow.errors import DataError
from regrow.monitor.drift.base import Binned, BinnedTest, Floats
from regrow.monitor.profile import ColumnProfile, Kind

__all__ = ["MIN_EXPECTED", "NULL_RATE", "NullRate", "null_binned", "null_count"]

MIN_EXPECTED = 5.0
"""Use the z-test when every cell of the 2 x 2 table expects at least this many values."""

_Z95 = 1.959964


class NullRate(BinnedTest):
    """Difference in null rate between the window and the reference (effect: its absolute value).

    It works on a two-bin :class:`~.base.Binned` view from :func:`null_binned`: bin 0 holds the
    share of values, bin 1 the share of nulls; ``m`` and ``n`` are the reference's and the
    window's row counts (nulls included).
    """

    name = "null_rate"
    kinds: frozenset[Kind] = frozenset({"numeric", "categorical", "other"})
    margin = 0.01

    def statistic(self, ref: ColumnProfile, current: Any) -> float:
        """``|p_cur - p_ref|`` for raw values (an array-like) or a current profile."""
        return float(self.batch(null_binned(ref, current)))

    def batch(self, binned: Binned) -> Floats:
        """``|p_cur - p_ref|`` for each comparison along the leading axis."""
        return np.asarray(np.abs(binned.cur[..., 1] - binned.ref[..., 1]), dtype=np.float64)

    def p_value(self, binned: Binned) -> float:
        """Two-sided p-value of equal null rates (pooled z-test, or Fisher's exact test)."""
        m, n = binned.m, binned.n
        x_ref = round(float(binned.ref[1]) * m)
        x_cur = round(float(binned.cur[1]) * n)
        nulls, total = x_ref + x_cur, m + n
        if nulls == 0 or nulls == total:
            return 1.0
        pooled = nulls / total
        expected = min(pooled, 1 - pooled) * min(m, n)
        if expected < MIN_EXPECTED:
            table = [[x_ref, m - x_ref], [x_cur, n - x_cur]]
            return float(fisher_exact(table, alternative="two-sided").pvalue)
        se = math.sqrt(pooled * (1 - pooled) * (1 / m + 1 / n))
        z = abs(x_cur / n - x_ref / m) / se
        return float(math.erfc(z / math.sqrt(2)))

    def interval(self, binned: Binned, z: float = _Z95) -> tuple[float, float]:
        """95 % interval of ``|p_cur - p_ref|`` from Newcombe's hybrid score interval."""
        p_ref, p_cur = float(binned.ref[1]), float(binned.cur[1])
        l_ref, u_ref = _wilson(p_ref, binned.m, z)
        l_cur, u_cur = _wilson(p_cur, binned.n, z)
        diff = p_cur - p_ref
        lower = diff - math.sqrt((p_cur - l_cur) ** 2 + (u_ref - p_ref) ** 2)
        upper = diff + math.sqrt((u_cur - p_cur) ** 2 + (p_ref - l_ref) ** 2)
        if lower <= 0 <= upper:
            return 0.0, min(1.0, max(-lower, upper))
        a, b = sorted((abs(lower), abs(upper)))
        return max(0.0, a), min(1.0, b)


NULL_RATE = NullRate()
"""The instance the drift monitor uses."""


def null_count(values: Any) -> int:
    """Nulls in an array-like, NaN included (``len`` minus the real values).

    >>> null_count(pa.array([1.0, None, float("nan")]))
    2
    """
    if isinstance(values, pa.ChunkedArray):
        values = as_array(values)
    if not isinstance(values, pa.Array):
        values = pa.array(values, from_pandas=True)
    nulls = values.null_count
    if pa.types.is_floating(values.type):
        nulls += int(pc.sum(pc.is_nan(values)).as_py() or 0)
    return int(nulls)


def null_binned(ref: ColumnProfile, current: Any, *, nulls: int | None = None) -> Binned:
    """The two-bin (values, nulls) view of ``current`` (raw values or a profile) against ``ref``.

    ``nulls``: the count of nulls (NaN included) in ``current`` when the caller already knows it.
    """
    m = ref.count + ref.nulls
    if isinstance(current, ColumnProfile):
        n, nulls = current.count + current.nulls, current.nulls
    else:
        n, nulls = len(current), null_count(current) if nulls is None else nulls
    if m == 0 or n == 0:
        hint = "a null rate needs rows on both sides"
        raise DataError(f"column {ref.name!r} has no rows on one side", hint=hint)
    ref_p = np.array([ref.count / m, ref.nulls / m], dtype=np.float64)
    cur_p = np.array([(n - nulls) / n, nulls / n], dtype=np.float64)
    return Binned("categorical", ref_p, cur_p, m, n)


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` of ``n``."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
