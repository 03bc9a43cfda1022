"""The drift monitor: compare a window with a stored reference profile, column by column.

:class:`DriftMonitor` holds a reference :class:`~regrow.monitor.profile.Profile`; ``check(window)``
returns a :class:`DriftReport` with one :class:`FeatureDrift` per (column, slice) - and one more
per categorical column for values never seen in the reference. A column is **drifted** when its
test's p-value survives Benjamini-Hochberg at ``fdr`` across every feature x slice *and* its
effect size exceeds the test's practically-irrelevant margin (for example a Wasserstein distance
of 0.05 reference standard deviations); see :mod:`regrow.monitor.calibration`.

The window is read once: each numeric column is counted onto its reference grid in one pass
(:mod:`regrow.monitor.drift.lattice`; columns on parallel threads, numpy releases the GIL),
categorical columns are counted by Arrow. The reference grids are built once per profile object
and kept with it (:meth:`~regrow.monitor.profile.ColumnProfile.derived`), so a second monitor
on the same profile starts with them. :meth:`DriftMonitor.check_chunks` checks each chunk
of a window apart and decides every chunk's tests in one Benjamini-Hochberg family.

Bad input, decided per case:

==========================================  ==================================================
case                                        result
==========================================  ==================================================
empty window (no rows)                      :class:`~regrow.errors.DataError`
column of the reference missing             ``FeatureDrift(test="schema", drifted=True)``
column not in the reference                 ``FeatureDrift(test="schema", drifted=False)``
numeric vs categorical mismatch             ``FeatureDrift(test="schema", drifted=True)``
column all null (reference had values)      ``FeatureDrift(test="nulls", drifted=True)``
reference all null, window has values       ``FeatureDrift(test="nulls", drifted=True)``
null rate changed (either side has nulls)   ``FeatureDrift(test="null_rate")`` (decided as a test)
categories never seen in the reference      ``FeatureDrift(test="unseen")`` (decided as a test)
datetime and other untested kinds           ``FeatureDrift(test="skipped", drifted=False)``
slice not profiled in the reference         :class:`~regrow.errors.SliceError`
slice that selects no rows of the window    ``FeatureDrift(test="skipped")`` per column
==========================================  ==================================================

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = Profile.of(pd.DataFrame({"a": rng.normal(size=5000), "b": rng.normal(size=5000)}))
>>> window = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.normal(0.5, size=5000)})
>>> report = DriftMonitor(ref).check(window)
>>> report.drifted_columns
['b']
>>> [(row["column"], row["test"], row["drifted"]) for row in report.table()]
[('a', 'wasserstein', False), ('b', 'wasserstein', True)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from regrow.data._compute import parallel_map
from regrow.data.frames import logical_dtype, to_arrow
from regrow.data.snapshot import apply_slice
from regrow.errors import DataError, SliceError
from regrow.monitor.calibration import Calibrator, Evaluation, adjusted_p_values
from regrow.monitor.chunks import Chunk
from regrow.monitor.drift import base as drift_base
from regrow.monitor.drift import registry
from regrow.monitor.drift.base import (
    Binned,
    CategoricalBins,
    DriftTest,
    NumericGrid,
    bin_current,
    numeric_values,
    sorted_values,
)
from regrow.monitor.drift.null_rate import NULL_RATE, null_binned
from regrow.monitor.drift.report import EFFECT_NAMES, DriftReport, FeatureDrift
from regrow.monitor.profile import ColumnProfile, Kind, Profile, kind_of

__all__ = ["DriftMonitor", "DriftReport", "FeatureDrift"]


@dataclass
class _Pending:  # one tested feature waiting for the FDR step
    column: str
    slice: str | None
    test: DriftTest
    evaluation: Evaluation
    n: int


class DriftMonitor:
    """Checks windows against a reference profile (see the module docstring).

    ``tests`` maps a kind (``"numeric"``, ``"categorical"``) to a test name used for every column
    of that kind instead of the automatic rule; ``overrides`` maps column names to test names;
    ``margin`` maps test names to effect sizes never flagged (defaults: each test's ``margin``).
    ``reference_data``, when given, replaces the sketch by the exact reference CDF at the grid
    edges (numeric columns of the whole window; slices keep their profiles). ``calibrator``
    shares simulated null draws (and their cache) between monitors; by default each monitor
    has its own ``Calibrator(draws, seed)``.
    """

    def __init__(
        self,
        reference: Profile,
        *,
        tests: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
        fdr: float = 0.05,
        margin: Mapping[str, float] | None = None,
        draws: int = 500,
        seed: int = 0,
        reference_data: Any = None,
        calibrator: Calibrator | None = None,
    ) -> None:
        if not 0 < fdr < 1:
            raise DataError(f"fdr must be in (0, 1) (got {fdr!r})", hint="for example fdr=0.05")
        self.reference = reference
        self.tests = tests
        self.overrides = overrides
        self.fdr = fdr
        self.margin = margin
        self.draws = draws
        self.seed = seed
        self.reference_data = reference_data
        self.calibrator = calibrator
        for name in list((tests or {}).values()) + list((overrides or {}).values()):
            registry.get(name)  # fail early on unknown names
        self._calibrator = calibrator or Calibrator(draws, seed)
        self._grids: dict[tuple[str | None, str, bool], NumericGrid | CategoricalBins] = {}
        self._exact = to_arrow(reference_data) if reference_data is not None else None

    def __repr__(self) -> str:
        return f"DriftMonitor(<{len(self.reference.columns)} columns>, fdr={self.fdr})"

    def check(self, window: Any, *, slices: Mapping[str, str] | None = None) -> DriftReport:
        """Compare ``window`` (DataFrame, Arrow table, ...) with the reference.

        ``slices`` maps slice names profiled in the reference to their pandas query expressions.
        """
        table = to_arrow(window)
        if table.num_rows == 0:
            raise DataError(
                "the window has no rows", hint="pass a window with data; drift needs values"
            )
        done: list[FeatureDrift] = []
        pending: list[_Pending] = []
        self._check_table(table, self.reference, None, done, pending)
        if slices:
            self._check_slices(table.to_pandas(), slices, done, pending)
        return DriftReport(
            tuple(done + self._decide(pending)),
            table.num_rows,
            self.fdr,
            tuple(slices or ()),
            family=len(pending),
        )

    def check_chunks(
        self,
        window: Any,
        chunks: Sequence[Chunk],
        *,
        slices: Mapping[str, str] | None = None,
    ) -> list[DriftReport]:
        """One :class:`DriftReport` per chunk of ``window`` (see :mod:`regrow.monitor.chunks`).

        Each chunk is checked as a window of its own (each test calibrated for the chunk's
        size), and Benjamini-Hochberg runs once over every chunk x column x slice test, so the
        false discovery rate holds across chunks; each report's ``family`` is that total. The
        window is converted to Arrow (and, with ``slices``, to pandas) once; a chunk with no
        rows gets a report of skipped columns.

        >>> import numpy as np, pandas as pd
        >>> from regrow.monitor.chunks import Chunking
        >>> rng = np.random.default_rng(0)
        >>> ref = Profile.of(pd.DataFrame({"a": rng.normal(size=4000)}))
        >>> window = pd.DataFrame({"a": np.r_[rng.normal(size=2000), rng.normal(1, size=2000)]})
        >>> reports = DriftMonitor(ref).check_chunks(window, Chunking(count=2).split(window))
        >>> [(r.chunk, r.drifted_columns, r.family) for r in reports]
        [('rows 0-1999', [], 2), ('rows 2000-3999', ['a'], 2)]
        """
        table = to_arrow(window)
        frame = table.to_pandas() if slices else None
        parts: list[tuple[Chunk, pa.Table, list[FeatureDrift], list[_Pending]]] = []
        for chunk in chunks:
            index = np.asarray(chunk.index, dtype=np.int64)
            if index.size and (int(index.min()) < 0 or int(index.max()) >= table.num_rows):
                raise DataError(
                    f"chunk {chunk.label!r} has row positions outside the window "
                    f"(0-{table.num_rows - 1})",
                    hint="split the same window the chunks are checked on",
                )
            part = table.take(pa.array(index))
            done: list[FeatureDrift] = []
            pending: list[_Pending] = []
            self._check_table(part, self.reference, None, done, pending)
            if slices and frame is not None:
                self._check_slices(frame.iloc[index], slices, done, pending)
            parts.append((chunk, part, done, pending))
        decided = iter(self._decide([p for *_, pending in parts for p in pending]))
        family = sum(len(pending) for *_, pending in parts)
        return [
            DriftReport(
                tuple(done + [next(decided) for _ in pending]),
                part.num_rows,
                self.fdr,
                tuple(slices or ()),
                chunk=chunk.label,
                family=family,
            )
            for chunk, part, done, pending in parts
        ]

    def _check_slices(
        self,
        frame: pd.DataFrame,
        slices: Mapping[str, str],
        done: list[FeatureDrift],
        pending: list[_Pending],
    ) -> None:
        for name, expr in slices.items():
            if name not in self.reference.slices:
                raise SliceError(
                    f"slice {name!r} is not profiled in the reference",
                    hint=f"profile the reference with slices={{{name!r}: {expr!r}}}",
                )
            part = to_arrow(apply_slice(frame, name, expr))
            self._check_table(part, self.reference.slices[name], name, done, pending)

    # -- one table -----------------------------------------------------------------------

    def _check_table(
        self,
        table: pa.Table,
        reference: Profile,
        slice_name: str | None,
        done: list[FeatureDrift],
        pending: list[_Pending],
    ) -> None:
        def skip(column: str, test: str, drifted: bool, why: str) -> None:
            done.append(_plain(column, slice_name, test, drifted, why))

        tested: list[tuple[ColumnProfile, Kind]] = []
        rates: list[_Pending] = []  # null-rate tests, queued after the distribution tests
        present = set(table.column_names)
        for name, ref in reference.columns.items():
            if name not in present:
                skip(name, "schema", True, "column is missing from the window")
                continue
            dtype = logical_dtype(table.schema.field(name).type)
            kind = kind_of(dtype)
            values = table.num_rows - table.column(name).null_count
            if ref.kind == "other":
                skip(name, "skipped", False, f"{ref.dtype} columns are not tested for drift")
            elif table.num_rows == 0:
                skip(name, "skipped", False, "the slice or chunk selects no rows of the window")
            elif ref.count == 0 and values:
                skip(name, "nulls", True, "column was all null in the reference, has values now")
            elif ref.count == 0:
                skip(name, "skipped", False, "column is all null in the reference and the window")
            elif values == 0 or dtype is None:
                skip(name, "nulls", True, f"column is all null ({table.num_rows} rows)")
            elif kind != ref.kind:
                why = f"column is {dtype} ({kind}) but was {ref.dtype} ({ref.kind}) in reference"
                skip(name, "schema", True, why)
            else:
                tested.append((ref, kind))
            if table.num_rows and ref.count and values and dtype is not None:
                self._null_rate(ref, table.column(name), slice_name, rates)
        for name in table.column_names:
            if name not in reference.columns:
                skip(name, "schema", False, "column is not in the reference profile; not tested")
        if tested:
            # Each column's whole path (reference grid, binning, calibration) runs on a thread:
            # the binning releases the GIL for most of its time, and the sketch calls and the
            # calibration, which hold it, run meanwhile for another column.
            evaluated = parallel_map(
                lambda rk: self._evaluate(
                    rk[0], self._bin(rk[0], table.column(rk[0].name), slice_name), slice_name
                ),
                tested,
                cells=table.num_rows * len(tested),
            )
            for found in evaluated:
                pending.extend(found)
        pending.extend(rates)

    def _null_rate(
        self,
        ref: ColumnProfile,
        column: pa.ChunkedArray,
        slice_name: str | None,
        pending: list[_Pending],
    ) -> None:
        """Queue the null-rate test of a column with values on both sides if either has nulls.

        The table comes from :func:`~regrow.data.frames.to_arrow`, which turns NaN into null,
        so Arrow's null count is the column's.
        """
        nulls = column.null_count
        if ref.nulls == 0 and nulls == 0:
            return
        binned = null_binned(ref, column, nulls=nulls)
        key = (slice_name, ref.name)
        evaluation = self._calibrator.evaluate(NULL_RATE, binned, key, level=self.fdr)
        pending.append(_Pending(ref.name, slice_name, NULL_RATE, evaluation, binned.n))

    def _evaluate(
        self, ref: ColumnProfile, binned: Binned, slice_name: str | None
    ) -> list[_Pending]:
        """The column's tests on its binned window, waiting for the FDR step."""
        tests = [self._choose(ref, binned.n)]
        if ref.kind == "categorical" and ref.complete:
            tests.append(registry.get("unseen"))
        key = (slice_name, ref.name)
        return [
            _Pending(
                ref.name,
                slice_name,
                test,
                self._calibrator.evaluate(test, binned, key, level=self.fdr),
                binned.n,
            )
            for test in tests
        ]

    def _choose(self, ref: ColumnProfile, n: int) -> DriftTest:
        override = (self.overrides or {}).get(ref.name) or (self.tests or {}).get(ref.kind)
        return registry.choose(ref.kind, n, override=override, column=ref.name)

    def _reference_grid(
        self, ref: ColumnProfile, slice_name: str | None, rows: int
    ) -> NumericGrid | CategoricalBins:
        """The column's reference bins; aligned for a lattice when windows are that large."""
        key = (slice_name, ref.name, rows >= drift_base.LATTICE_FROM)
        if key not in self._grids:
            self._grids[key] = self._reference_bins(ref, slice_name, align=key[2])
        return self._grids[key]

    def _bin(self, ref: ColumnProfile, column: pa.ChunkedArray, slice_name: str | None) -> Binned:
        bins = self._reference_grid(ref, slice_name, len(column))
        if isinstance(bins, NumericGrid):
            values = numeric_values(column, nan_free=True)  # to_arrow made NaN null
            return bin_current(ref, values, grid=bins, clean=True)
        return bin_current(ref, column, bins=bins)

    def _reference_bins(
        self, ref: ColumnProfile, slice_name: str | None, *, align: bool
    ) -> NumericGrid | CategoricalBins:
        if ref.kind == "categorical":
            return CategoricalBins.of(ref)
        grid = NumericGrid.of(ref, align=align)
        if self._exact is not None and slice_name is None and ref.name in self._exact.column_names:
            values = sorted_values(self._exact.column(ref.name))

            def exact(g: NumericGrid) -> NumericGrid:
                cdf = np.searchsorted(values, g.edges, side="right") / max(values.size, 1)
                return replace(g, ref_cdf=cdf, count=values.size, rank_error=0.0, aligned=None)

            aligned = None if grid.aligned is None else exact(grid.aligned)
            grid = replace(exact(grid), aligned=aligned)
        return grid

    # -- decisions -----------------------------------------------------------------------

    def _decide(self, pending: list[_Pending]) -> list[FeatureDrift]:
        adjusted = adjusted_p_values([p.evaluation.p_value for p in pending])
        return [
            _feature(p, float(q), self.fdr, self._margin(p.test))
            for p, q in zip(pending, adjusted, strict=True)
        ]

    def _margin(self, test: DriftTest) -> float:
        return float((self.margin or {}).get(test.name, test.margin))


def _feature(p: _Pending, adjusted: float, fdr: float, margin: float) -> FeatureDrift:
    e = p.evaluation
    name = EFFECT_NAMES.get(p.test.name, p.test.name)
    significant = adjusted <= fdr
    relevant = e.effect > margin
    drifted = significant and relevant
    numbers = (
        f"{name} {e.effect:.4g} (95% interval {e.interval[0]:.4g}-"
        f"{e.interval[1]:.4g}), p={e.p_value:.3g}, BH-adjusted {adjusted:.3g}, n={p.n}"
    )
    if drifted:
        why = f"drifted: {numbers}; significant at FDR {fdr} and above the margin {margin:g}"
    elif significant:
        why = f"not drifted: {numbers}; significant but within the irrelevance margin {margin:g}"
    else:
        why = f"not drifted: {numbers}; not significant at FDR {fdr}"
    if e.error_bound is not None:
        why += f" (statistic within ±{e.error_bound:.2g} of the exact two-sample KS)"
    return FeatureDrift(
        p.column,
        p.slice,
        p.test.name,
        e.statistic,
        e.threshold,
        e.p_value,
        e.effect,
        e.interval,
        drifted,
        why,
        adjusted,
        e.error_bound,
        margin,
    )


def _plain(column: str, slice_name: str | None, test: str, drifted: bool, why: str) -> FeatureDrift:
    nan = math.nan
    return FeatureDrift(column, slice_name, test, nan, nan, nan, nan, (nan, nan), drifted, why)
