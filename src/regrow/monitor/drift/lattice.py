"""One-pass binning of a window onto a reference grid whose edges end equal cells (no sort).

A :class:`Lattice` cuts a grid's range into ``K`` equal cells. A value's cell is
``trunc(clip(origin - x * scale, 0, cells - 1))``: a multiply-add, a clip and a cast, with no
search (cells count *down* as ``x`` grows, so a value equal to an edge falls in the edge's
cell). That map is monotone, since every step rounds monotonically. :meth:`Lattice.align` moves
each reference quantile edge to the largest number still in its cell, so the window's share at
or below an edge is **exactly** its share in that cell and the ones before: one ``bincount`` of
the cells gives the window's CDF at every edge, the same numbers a sort and a binary search
give on the aligned edges. An edge moves by less than one cell (``K`` is at least twice the
range over the smallest gap between quantile edges, so each keeps a cell of its own), and the
reference CDF is read from the sketch at the moved edges, so both CDFs are taken at the same
points.

>>> lattice = Lattice.align(np.array([0.0, 1.0, 2.5, 3.0]))
>>> lattice.edges.round(4).tolist()  # each moved up to the end of its cell (width 3/1024)
[0.0, 1.002, 2.502, 3.0]
>>> values = np.array([-1.0, 0.0, 0.5, 1.0, 2.9, 3.0, 7.0])
>>> counts, tails = lattice.counts_and_tails(values)
>>> counts.tolist(), round(tails, 9)
([2, 4, 4, 6], 5.0)
>>> np.searchsorted(np.sort(values), lattice.edges, side="right").tolist()
[2, 4, 4, 6]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BLOCK", "MAX_CELLS", "MIN_CELLS", "Lattice"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

MIN_CELLS = 1024
"""The fewest equal cells a lattice has."""

MAX_CELLS = 1 << 18
"""The most equal cells a lattice has (skewed references need many; their counts stay small)."""

BLOCK = 1 << 16
"""Values binned per step (their temporaries fit in a core's cache), at least four per cell."""

_STEPS = 70  # bisection steps over the 2**64 floats


@dataclass(frozen=True, eq=False)
class Lattice:
    """Equal cells over a grid's range; build one with :meth:`align`."""

    scale: float
    origin: float
    cells: int  # the range's cells, plus one above it (0) and one below it (last)
    edge_cell: Ints  # per aligned edge, its cell (decreasing, as the edges increase)
    edges: Floats  # the aligned edges: the largest float of each edge's cell

    @classmethod
    def align(cls, edges: Floats) -> Lattice | None:
        """A lattice over sorted, distinct ``edges`` and the edges moved to their cells' ends.

        None when that would not pay off: fewer than two edges, an infinite range, or far
        outliers that would crowd two quantile edges into one cell (then the window is sorted
        and read at the quantile edges instead).
        """
        edges = np.asarray(edges, dtype=np.float64)
        if edges.size < 2 or not np.all(np.isfinite(edges[[0, -1]])):
            return None
        span = float(edges[-1] - edges[0])
        gap = float(np.diff(edges).min())
        wanted = 2 * span / gap if gap > 0 else math.inf
        k = MAX_CELLS if not math.isfinite(wanted) else int(min(MAX_CELLS, max(MIN_CELLS, wanted)))
        scale = k / span
        if not math.isfinite(scale):
            return None
        origin = float(edges[-1]) * scale + 1.0
        top = int(origin - float(edges[0]) * scale) + 2  # the cell below the range
        probe = cls(scale, origin, top + 1, np.empty(0, np.intp), edges)
        cells = np.unique(probe.cell(edges))[::-1]
        if cells.size < edges.size or cells.min() < 1 or cells.max() >= top:
            return None
        aligned = probe._ends(cells)
        if aligned is None:
            return None
        return cls(scale, origin, top + 1, cells.astype(np.intp), aligned)

    def cell(self, values: npt.NDArray[Any]) -> Ints:
        """The cell of each value (no NaN allowed)."""
        out = np.empty(np.shape(values), dtype=np.intp)
        self._cells_into(np.asarray(values), np.empty(np.shape(values)), out)
        return out

    def counts_and_tails(self, values: npt.NDArray[Any]) -> tuple[Ints, float]:
        """How many ``values`` (no NaN) lie at or below each aligned edge; and the tails.

        The tails are ``sum(edges[0] - x)`` over values below the first edge plus
        ``sum(x - edges[-1])`` over values above the last, with ``edges[0]`` and
        ``edges[-1]`` the aligned ends of the reference minimum's and maximum's cells. The
        values are taken in blocks of :data:`BLOCK`, so the temporaries stay in cache.
        """
        counts = np.zeros(self.cells, dtype=np.intp)
        step = max(BLOCK, 4 * self.cells)  # so clearing the counts stays a small part
        size = min(step, values.size)
        coord, key = np.empty(size), np.empty(size, np.intp)
        first, last = self.edges[0], self.edges[-1]
        tails = 0.0
        for start in range(0, values.size, step):
            block = values[start : start + step]
            n = block.size
            self._cells_into(block, coord[:n], key[:n])
            counts += np.bincount(key[:n], minlength=self.cells)
            if block.min() < first:
                low = block[block < first]
                tails += float(low.size * first - low.sum(dtype=np.float64))
            if block.max() > last:
                high = block[block > last]
                tails += float(high.sum(dtype=np.float64) - high.size * last)
        at_or_above = np.cumsum(counts[::-1])[::-1]  # values in this cell or a later one
        return np.asarray(at_or_above[self.edge_cell], dtype=np.intp), tails

    def _cells_into(self, values: npt.NDArray[Any], coord: Floats, out: Ints) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # inf and huge values clip
            np.multiply(values, -self.scale, out=coord)
            coord += self.origin
        np.clip(coord, 0.0, self.cells - 1, out=coord)
        np.copyto(out, coord, casting="unsafe")

    def _ends(self, cells: Ints) -> Floats | None:
        """The largest float in each cell (or in a later one): where an aligned edge lies.

        A bisection over the floats in order (their bit patterns, made monotone), from a few
        rounding steps either side of the cell's nominal end (two cells where that misses).
        """
        guess = (self.origin - cells.astype(np.float64)) / self.scale
        size = abs(self.origin) + self.cells + np.abs(guess) * self.scale  # of the terms
        slack = 16 * (np.spacing(size) / self.scale + np.spacing(guess))
        lo, hi = _ordered(guess - slack), _ordered(guess + slack)
        wide = (self._cell_of_edges(_float(lo)) < cells) | (
            self._cell_of_edges(_float(hi)) >= cells
        )
        lo[wide] = _ordered(guess[wide] - 2 / self.scale)
        hi[wide] = _ordered(guess[wide] + 2 / self.scale)
        active = np.flatnonzero(hi - lo > 1)
        for _ in range(_STEPS):
            if active.size == 0:
                break
            a, b, c = lo[active], hi[active], cells[active]
            mid = a // 2 + b // 2 + (a % 2 + b % 2) // 2
            inside = self._cell_of_edges(_float(mid)) >= c
            lo[active] = np.where(inside, mid, a)
            hi[active] = np.where(inside, b, mid)
            active = active[hi[active] - lo[active] > 1]
        x = _float(lo)
        inside = self._cell_of_edges(x) >= cells
        beyond = self._cell_of_edges(np.nextafter(x, np.inf)) < cells
        return x if bool(inside.all() and beyond.all()) else None

    def _cell_of_edges(self, x: Floats) -> Ints:
        """:meth:`cell` for a few finite values (the same arithmetic, less overhead)."""
        coord = x * -self.scale + self.origin
        return np.clip(coord, 0.0, self.cells - 1).astype(np.intp)


_SIGN = np.int64(-0x8000000000000000)


def _ordered(x: Floats) -> npt.NDArray[np.int64]:
    """Integers in the order of the floats ``x`` (adjacent floats differ by one)."""
    bits = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, _SIGN - bits, bits)


def _float(key: npt.NDArray[np.int64]) -> Floats:
    """The inverse of :func:`_ordered`."""
    return np.where(key < 0, _SIGN - key, key).view(np.float64)
