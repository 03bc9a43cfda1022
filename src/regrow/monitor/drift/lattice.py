"""One-pass binning of a window onto a reference grid whose edges end equal cells (no sort).

A :class:`Lattice` cuts a grid's range into equal cells of width ``1 / scale``, with ``scale`` a
power of two, so ``x * scale`` is exact. Cell ``k`` holds the values whose ``x * scale -
offset`` is nearest ``k`` (ties to the even cell). No search and no float-to-integer conversion
finds it: the value is clipped to the lattice's range and ``shift`` is added, which puts the sum
in the binade where adjacent floats lie exactly one cell apart; the one rounding of that sum is
the binning, and its bit pattern less that of the binade's start is the cell. That is three
passes (clip, add, integer subtract) and a ``bincount``, all of which release the GIL.

The map is monotone, and its one rounding has a closed-form inverse: the largest float in cell
``k`` is ``(k + offset + 1/2) / scale``, or the float below it when ``k`` is odd (the tie goes to
the even cell). :meth:`Lattice.align` moves each reference quantile edge there, to the end of
its cell, so the window's share at or below an edge is **exactly** its share in that cell and
the ones before: one ``bincount`` of the cells gives the window's CDF at every edge, the same
numbers a sort and a binary search give on the aligned edges. An edge moves by less than one
cell (``K`` is at least twice the range over the smallest gap between quantile edges, so each
keeps a cell of its own), and the reference CDF is read from the sketch at the moved edges, so
both CDFs are taken at the same points.

>>> lattice = Lattice.align(np.array([0.0, 1.0, 2.5, 3.0]))
>>> lattice.edges.round(4).tolist()  # each moved up to the end of its cell (width 1/512)
[0.001, 1.001, 2.501, 3.001]
>>> values = np.array([-1.0, 0.0, 0.5, 1.0, 2.9, 3.0, 7.0])
>>> counts, tails = lattice.counts_and_tails(values)
>>> counts.tolist(), round(tails, 9)
([2, 4, 4, 6], 5.000976562)
>>> np.searchsorted(np.sort(values), lattice.edges, side="right").tolist()
[2, 4, 4, 6]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BLOCK", "COUNT_BLOCK", "MAX_CELLS", "MIN_CELLS", "Lattice"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

MIN_CELLS = 1024
"""The fewest equal cells asked for a lattice's range (it gets up to twice as many)."""

MAX_CELLS = 1 << 18
"""The most equal cells asked for (skewed references need many; their counts stay small)."""

BLOCK = 1 << 16
"""Values per step of the tails' sums, at least four per cell: each step's sums are added on
their own, so the tails do not depend on :data:`COUNT_BLOCK` to the last bit."""

COUNT_BLOCK = 1 << 18
"""Values binned per ``bincount`` (a whole number of steps, at least one): the fewer calls,
the less their fixed costs weigh (a fresh array of counts to clear and add, the clip's checks);
the temporaries (2 MiB) still fit in the shared cache."""

_BINADE = 2.0**52  # adjacent floats in [2**52, 2**53) are exactly 1 apart
_EXACT = 2.0**51  # cell numbers and offsets stay below this, so every step above is exact


@dataclass(frozen=True, eq=False)
class Lattice:
    """Equal cells over a grid's range; build one with :meth:`align`."""

    scale: float  # cells per unit of x, a power of two
    offset: float  # an integer: cell k holds the x with x * scale - offset nearest k
    cells: int  # cell 0 is empty; 1 and cells - 1 take the values clipped below and above
    edge_cell: Ints  # per aligned edge, its cell (increasing)
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
        if not span > 0 or not gap > 0:
            return None
        wanted = 2 * span / gap
        k = MAX_CELLS if not math.isfinite(wanted) else min(MAX_CELLS, max(MIN_CELLS, wanted))
        cells_per_unit = k / span
        if not 0 < cells_per_unit < math.inf:
            return None
        scale = 2.0 ** math.ceil(math.log2(cells_per_unit))
        lo, hi = float(edges[0]) * scale, float(edges[-1]) * scale
        if not (abs(lo) < _EXACT and abs(hi) < _EXACT and math.isfinite(_BINADE / scale)):
            return None
        offset, top = math.floor(lo) - 2.0, math.floor(hi) + 2.0
        probe = cls(scale, offset, int(top - offset) + 1, np.empty(0, np.intp), edges)
        cells = probe.cell(edges)
        if np.any(np.diff(cells) <= 0) or cells[0] < 2 or cells[-1] > probe.cells - 2:
            return None  # two edges share a cell
        half_way = (cells + offset + 0.5) / scale  # exact: a tie, which goes to the even cell
        ends: Floats = np.where(cells % 2 == 1, np.nextafter(half_way, -np.inf), half_way)
        in_cell = probe.cell(ends) == cells
        beyond = probe.cell(np.nextafter(ends, np.inf)) > cells
        if not bool(np.all(in_cell & beyond)):  # a range too far from 0 for its cell width
            return None
        return cls(scale, offset, probe.cells, cells, ends)

    def cell(self, values: npt.NDArray[Any]) -> Ints:
        """The cell of each value (no NaN allowed)."""
        values = np.asarray(values)
        return self._cells_into(values, np.empty(values.shape)).copy()

    def counts_and_tails(self, values: npt.NDArray[Any]) -> tuple[Ints, float]:
        """How many ``values`` (no NaN) lie at or below each aligned edge; and the tails.

        The tails are ``sum(edges[0] - x)`` over values below the first edge plus
        ``sum(x - edges[-1])`` over values above the last, with ``edges[0]`` and
        ``edges[-1]`` the aligned ends of the reference minimum's and maximum's cells. The
        values are counted in blocks of :data:`COUNT_BLOCK`, so the temporaries stay in
        cache; a block's counts tell whether it has values in a tail, so only those blocks
        are read again for it (:meth:`_add_tails`).
        """
        counts = np.zeros(self.cells, dtype=np.intp)
        step = max(BLOCK, 4 * self.cells)  # of the tails' sums
        block_size = step * max(1, COUNT_BLOCK // step)  # clearing the counts stays a small part
        coord = np.empty(min(block_size, values.size))
        below, above = int(self.edge_cell[0]) + 1, int(self.edge_cell[-1]) + 1
        tails = 0.0
        for start in range(0, values.size, block_size):
            block = values[start : start + block_size]
            cells = self._cells_into(block, coord[: block.size])
            found = np.bincount(cells, minlength=self.cells)
            counts += found
            if found[:below].any() or found[above:].any():
                tails = self._add_tails(tails, block, cells, step)
        return np.asarray(np.cumsum(counts)[self.edge_cell], dtype=np.intp), tails

    def _add_tails(self, tails: float, values: npt.NDArray[Any], cells: Ints, step: int) -> float:
        """``tails`` plus the tails of ``values`` (in ``cells``), added ``step`` values at a time.

        Each step's sums are added on their own, in order, whatever the block, so the tails do
        not depend on :data:`COUNT_BLOCK` to the last bit; a step's cells tell whether it has
        values in a tail.
        """
        first, last = self.edges[0], self.edges[-1]
        below, above = int(self.edge_cell[0]) + 1, int(self.edge_cell[-1]) + 1
        for start in range(0, values.size, step):
            part, part_cells = values[start : start + step], cells[start : start + step]
            if part_cells.min() < below:
                out = part[part < first]
                tails += float(out.size * first - out.sum(dtype=np.float64))
            if part_cells.max() >= above:
                out = part[part > last]
                tails += float(out.sum(dtype=np.float64) - out.size * last)
        return tails

    def _cells_into(self, values: npt.NDArray[Any], coord: Floats) -> Ints:
        """The cells of ``values``, computed in ``coord`` and returned as a view of it."""
        low, high, shift, start = self._constants
        np.clip(values, low, high, out=coord)  # in float64 whatever the values' type
        coord += shift  # rounds to whole cells: the binning
        cells: Ints = coord.view(np.intp)
        cells -= start
        return cells

    @cached_property
    def _constants(self) -> tuple[np.float64, np.float64, float, int]:
        """The clip bounds (cells 1 and ``cells - 1``), the shift, and the binade's start."""
        scale, offset = self.scale, self.offset
        low, high = (offset + 1) / scale, (offset + self.cells - 1) / scale
        start = int(np.array(_BINADE / scale).view(np.intp))
        return np.float64(low), np.float64(high), (_BINADE - offset) / scale, start
