"""The drift-test contract, and the binned view every test computes from.

Every test compares a column's reference :class:`~regrow.monitor.profile.ColumnProfile` with a
current window through a :class:`Binned` view. Because that view can hold a *batch* of
comparisons along its leading axis, the calibration evaluates exactly the same statistic on
simulated no-drift draws as on the observed window.

Numeric columns use a :class:`NumericGrid`: the reference's minimum, its quantiles at
``1/B, 2/B, ..., (B-1)/B`` (``B = 1000``, from the KLL sketch) and its maximum, deduplicated,
with the reference CDF ``F_ref`` at those edges. The current window's CDF ``F_cur`` is its
exact share of values at or below each edge. Small windows are sorted and read at the edges
with a binary search. Windows of at least :data:`LATTICE_FROM` values are counted in one pass,
with no sort, on the grid's ``aligned`` twin (:mod:`regrow.monitor.drift.lattice`): the same
quantile edges, each moved by less than ``1/K`` of the range (``K >= 1024`` equal cells) to the
end of its cell, with ``F_ref`` read from the sketch at the moved edges. Every statistic, and
the null the calibration simulates for it, is computed on whichever grid the window was binned
on; grids that cannot be aligned (far outliers in the reference) keep sorting.

Categorical columns use :class:`CategoricalBins`: the values the reference counted, plus one
``other`` bin that also receives current values the reference never counted.

>>> import pyarrow as pa
>>> from regrow.monitor.profile import profile_column
>>> ref = profile_column("x", pa.array([1.0, 2.0, 3.0, 4.0]))
>>> b = bin_current(ref, np.array([2.5, 3.5, 4.5, 5.5]))
>>> b.grid.edges.tolist(), b.ref.tolist(), b.cur.tolist()
([1.0, 2.0, 3.0, 4.0], [0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.25, 0.5])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import as_array
from regrow.errors import DataError
from regrow.monitor.drift.lattice import Lattice
from regrow.monitor.profile import ColumnProfile, Kind

__all__ = [
    "GRID_BINS",
    "GRID_RANKS",
    "LATTICE_FROM",
    "Binned",
    "BinnedTest",
    "CategoricalBins",
    "DriftTest",
    "NumericGrid",
    "bin_current",
    "numeric_values",
    "sorted_values",
]

Floats = npt.NDArray[np.float64]

GRID_BINS = 1000
"""Equal-mass reference bins of the numeric grid (its resolution is ``1 / GRID_BINS``)."""

GRID_RANKS = np.arange(1, GRID_BINS) / GRID_BINS
"""The reference ranks of the grid's inner edges."""

LATTICE_FROM = 200_000
"""Windows with at least this many values are binned on the lattice; smaller ones are sorted
(aligning a grid costs about as much as sorting this many values)."""


@dataclass(frozen=True, eq=False)
class NumericGrid:
    """The reference's quantile edges and its CDF at them (see the module docstring)."""

    edges: Floats
    ref_cdf: Floats
    count: int
    scale: float  # reference standard deviation; 1.0 when it is 0 or undefined
    rank_error: float  # the sketch's rank error bound (0 while exact)
    lattice: Lattice | None = None  # set on an aligned grid: bins a window in one pass
    aligned: NumericGrid | None = None  # the aligned twin large windows are binned on

    @classmethod
    def of(cls, ref: ColumnProfile, bins: int = GRID_BINS, *, align: bool = True) -> NumericGrid:
        """The grid of a numeric reference profile with at least one value.

        ``align`` also builds the ``aligned`` twin that large windows are binned on. Built once
        per profile object and kept with it (:meth:`ColumnProfile.derived`), so every monitor
        on the same profile shares it; its arrays are read-only.
        """
        return ref.derived(("numeric grid", bins, align), lambda r: cls._build(r, bins, align))

    @classmethod
    def _build(cls, ref: ColumnProfile, bins: int, align: bool) -> NumericGrid:
        kll = ref.kll()
        if kll is None or ref.kind != "numeric":
            raise DataError(
                f"column {ref.name!r} has no numeric values in the reference profile",
                hint="numeric drift tests need a reference with values",
            )
        ranks = GRID_RANKS if bins == GRID_BINS else np.arange(1, bins) / bins
        inner = np.asarray(kll.get_quantiles(ranks), dtype=np.float64)
        edges = _frozen(np.unique(np.concatenate(([ref.min], inner, [ref.max]))))
        std = ref.std
        scale = std if math.isfinite(std) and std > 0 else 1.0
        error = float(kll.normalized_rank_error(False)) if kll.is_estimation_mode() else 0.0
        lattice = Lattice.align(edges) if align else None
        if lattice is None:
            return cls(edges, _cdf(kll, edges)[0], ref.count, scale, error)
        _frozen(lattice.edges, lattice.edge_cell)
        cdf, aligned_cdf = _cdf(kll, edges, lattice.edges)
        aligned = cls(lattice.edges, aligned_cdf, ref.count, scale, error, lattice=lattice)
        return cls(edges, cdf, ref.count, scale, error, aligned=aligned)

    @cached_property
    def probs(self) -> Floats:
        """Reference probability of each bin ``(edges[i-1], edges[i]]`` (the first: ``<= min``)."""
        return _frozen(np.diff(self.ref_cdf, prepend=0.0))

    @cached_property
    def node_weights(self) -> Floats:
        """Left Riemann weights of the edges, so ``sum(|F_ref - F_cur| * w)`` integrates over x.

        Exact for step CDFs that jump only at edges (such as discrete data).
        """
        return _frozen(np.diff(self.edges, append=self.edges[-1]))

    def coarse(self, bins: int) -> npt.NDArray[np.intp]:
        """Indices of the edges nearest the reference quantiles ``1/bins, ..., (bins-1)/bins``."""
        targets = np.arange(1, bins) / bins
        idx = np.clip(np.searchsorted(self.ref_cdf, targets), 0, len(self.edges) - 1)
        return np.unique(idx[self.ref_cdf[idx] < 1.0])


@dataclass(frozen=True, eq=False)
class CategoricalBins:
    """The reference's counted values plus an ``other`` bin (last)."""

    values: tuple[str, ...]
    ref_counts: Floats
    count: int
    complete: bool
    singletons: int  # reference values seen once (Good-Turing estimate of unseen mass)
    index: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, ref: ColumnProfile) -> CategoricalBins:
        """The bins of a categorical reference profile (built once per profile object)."""
        return ref.derived("categorical bins", cls._build)

    @classmethod
    def _build(cls, ref: ColumnProfile) -> CategoricalBins:
        values = tuple(v for v, _ in ref.counts)
        counts = np.array([c for _, c in ref.counts] + [ref.other], dtype=np.float64)
        singles = sum(1 for _, c in ref.counts if c == 1)
        index = {v: i for i, v in enumerate(values)}
        return cls(values, counts, ref.count, ref.complete, singles, index)


@dataclass(frozen=True, eq=False)
class Binned:
    """A reference and a current distribution on the reference's bins.

    Numeric: ``ref`` and ``cur`` are CDFs at ``grid.edges``; categorical: probabilities per bin.
    Either may carry a leading batch axis (simulated draws). ``m`` and ``n`` are the reference
    and current counts; ``tails`` is the (observed-only) integral of ``F_cur`` outside the
    reference's range, and ``unseen`` the current values never seen in the reference.
    """

    kind: Kind
    ref: Floats
    cur: Floats
    m: int
    n: int
    grid: NumericGrid | None = None
    bins: CategoricalBins | None = None
    tails: float = 0.0
    unseen: int = 0
    gap: Floats | None = None  # |ref - cur|, when already computed (shared null draws)

    @property
    def abs_gap(self) -> Floats:
        """``|ref - cur|`` (numeric: the CDF gap at every edge)."""
        return np.abs(self.ref - self.cur) if self.gap is None else self.gap

    @property
    def numeric_grid(self) -> NumericGrid:
        """The grid, for numeric tests (raises for categorical data)."""
        if self.grid is None:
            raise DataError("a numeric drift test got categorical data", hint="pick another test")
        return self.grid


@runtime_checkable
class DriftTest(Protocol):
    """A drift statistic: larger means more different. See :class:`BinnedTest`."""

    name: str
    kinds: frozenset[Kind]
    margin: float  # the default practically-irrelevant effect size

    def statistic(self, ref: ColumnProfile, current: Any) -> float:
        """The statistic between ``ref`` and ``current`` (raw values or a ColumnProfile)."""
        ...

    def batch(self, binned: Binned) -> Floats:
        """The statistic for each comparison along ``binned``'s leading axis."""
        ...

    def effect(self, statistic: Floats, binned: Binned) -> Floats:
        """The effect size (on a scale the margin applies to) of ``statistic``."""
        ...


class BinnedTest:
    """Base class: a test defined by its :meth:`batch` on the :class:`Binned` view."""

    name: str = ""
    kinds: frozenset[Kind] = frozenset()
    margin: float = 0.0

    def statistic(self, ref: ColumnProfile, current: Any) -> float:
        """The statistic between ``ref`` and ``current`` (raw values or a ColumnProfile)."""
        return float(self.batch(bin_current(ref, current)))

    def batch(self, binned: Binned) -> Floats:
        """The statistic for each comparison along ``binned``'s leading axis."""
        raise NotImplementedError

    def effect(self, statistic: Floats, binned: Binned) -> Floats:
        """The effect size: by default the statistic itself."""
        return statistic

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def numeric_values(values: Any, *, nan_free: bool = False) -> npt.NDArray[Any]:
    """The non-null, non-NaN values of an array-like as numpy, unsorted (integers stay integers).

    ``nan_free`` skips the NaN scan when the caller knows there is none (tables from
    :func:`~regrow.data.frames.to_arrow` hold NaN as null). No copy for an Arrow array without
    nulls.

    >>> numeric_values(pa.array([3.0, None, float("nan"), 1.0])).tolist()
    [3.0, 1.0]
    """
    if isinstance(values, pa.ChunkedArray):
        values = as_array(values)  # no copy for a single chunk
    if isinstance(values, pa.Array):
        if values.null_count:
            values = pc.drop_null(values)
        values = values.to_numpy(zero_copy_only=False)
    out = np.asarray(values)
    if out.dtype.kind not in "fiu":
        out = out.astype(np.float64)
    if out.dtype.kind == "f" and not nan_free:
        nan = np.isnan(out)
        if nan.any():
            out = out[~nan]
    return out


def sorted_values(values: Any, *, single: bool = False) -> npt.NDArray[np.floating[Any]]:
    """The non-null values of an array-like, sorted, as float64 (``single``: float32).

    Single precision halves the sort's time; a value then only moves across a grid edge when it
    lies within one float32 step (relative ``6e-8``) of it, since rounding is monotone.

    >>> sorted_values(pa.array([3, None, 1])).tolist()
    [1.0, 3.0]
    """
    return np.sort(numeric_values(values).astype(np.float32 if single else np.float64))


def bin_current(
    ref: ColumnProfile,
    current: Any,
    *,
    grid: NumericGrid | None = None,
    bins: CategoricalBins | None = None,
    presorted: bool = False,
    clean: bool = False,
) -> Binned:
    """The :class:`Binned` view of ``current`` (raw values or a profile) against ``ref``.

    ``clean``: ``current`` is already a numpy array of non-null, non-NaN values (as from
    :func:`numeric_values`); ``presorted``: and sorted as well.
    """
    if ref.kind == "numeric":
        if isinstance(current, ColumnProfile):
            return _numeric_from_profile(grid or NumericGrid.of(ref, align=False), current)
        values = current if presorted or clean else numeric_values(current)
        if values.size == 0:
            raise DataError(f"column {ref.name!r} has no values in the window", hint=_EMPTY)
        large = not presorted and values.size >= LATTICE_FROM
        return _numeric_binned(grid or NumericGrid.of(ref, align=large), values, presorted)
    if ref.kind == "categorical":
        bins = bins or CategoricalBins.of(ref)
        counts = current.counts if isinstance(current, ColumnProfile) else _value_counts(current)
        cur = np.zeros(len(bins.values) + 1)
        unseen = 0
        for value, count in counts:  # one step per distinct value, not per row
            i = bins.index.get(value)
            cur[len(bins.values) if i is None else i] += count
            unseen += count if i is None and bins.complete else 0
        if isinstance(current, ColumnProfile):
            cur[-1] += current.other
        n = int(cur.sum())
        if n == 0:
            raise DataError(f"column {ref.name!r} has no values in the window", hint=_EMPTY)
        ref_p = bins.ref_counts / bins.count
        return Binned("categorical", ref_p, cur / n, bins.count, n, bins=bins, unseen=unseen)
    raise DataError(
        f"column {ref.name!r} is of kind {ref.kind!r}, which no drift test applies to",
        hint="drift tests apply to numeric and categorical columns",
    )


def _numeric_binned(grid: NumericGrid, values: npt.NDArray[Any], presorted: bool) -> Binned:
    """``F_cur`` at the edges and the tails outside them, from a lattice pass or a sort."""
    n = values.size
    target = grid if grid.lattice is not None else grid.aligned
    if not presorted and n >= LATTICE_FROM and target is not None and target.lattice is not None:
        at, tails = target.lattice.counts_and_tails(values)
        return Binned(
            "numeric", target.ref_cdf, at / n, grid.count, n, grid=target, tails=tails / n
        )
    if not presorted:
        values = np.sort(values if values.dtype.kind == "f" else values.astype(np.float64))
    first, last = grid.edges[0], grid.edges[-1]
    at = np.searchsorted(values, grid.edges.astype(values.dtype, copy=False), side="right")
    lo = int(np.searchsorted(values, first, side="left"))
    hi = int(np.searchsorted(values, last, side="right"))
    below = lo * first - values[:lo].sum(dtype=np.float64)
    above = values[hi:].sum(dtype=np.float64) - (n - hi) * last
    tails = float((below + above) / n)
    return Binned("numeric", grid.ref_cdf, at / n, grid.count, n, grid=grid, tails=tails)


_EMPTY = "drop the column from the comparison or check why every value is null"


def _cdf(kll: Any, *edges: Floats) -> list[Floats]:
    """The sketch's CDF at each set of ``edges`` (1 at a set's last edge: the maximum or above).

    One query serves every set: the sketch ranks each point on its own, so a point's CDF does
    not depend on the points asked with it.
    """
    points = np.unique(np.concatenate(edges))
    ranks = np.asarray(kll.get_cdf(points.tolist(), inclusive=True), dtype=np.float64)
    found = []
    for some in edges:
        cdf = ranks[np.searchsorted(points, some)]
        cdf[-1] = 1.0
        found.append(_frozen(cdf))
    return found


def _frozen(array: npt.NDArray[Any], *more: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``array`` (and ``more``) made read-only: grids are shared by every monitor of a profile."""
    for a in (array, *more):
        a.flags.writeable = False
    return array


def _numeric_from_profile(grid: NumericGrid, current: ColumnProfile) -> Binned:
    kll = current.kll()
    if kll is None:
        raise DataError(f"column {current.name!r} has no values in the window", hint=_EMPTY)
    cur = np.asarray(kll.get_cdf(grid.edges, inclusive=True), dtype=np.float64)[:-1]
    return Binned("numeric", grid.ref_cdf, cur, grid.count, current.count, grid=grid)


def _value_counts(values: Any) -> list[tuple[str, int]]:
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = as_array(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    vc = pc.value_counts(pc.drop_null(array))
    return list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
