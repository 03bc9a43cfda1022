"""The drift monitor: compare a window with a stored reference profile, column by column.

:class:`DriftMonitor` holds a reference :class:`~regrow.monitor.profile.Profile`; ``check(window)``
returns a :class:`DriftReport` with one :class:`FeatureDrift` per (column, slice) - and one more
per categorical column for values never seen in the reference. A column is **drifted** when its
test's p-value survives Benjamini-Hochberg at ``fdr`` across every feature x slice *and* its
effect size exceeds the test's practically-irrelevant margin (for example a Wasserstein distance
of 0.05 reference standard deviations); see :mod:`regrow.monitor.calibration`.

The window is read once: each numeric column's values are sorted once (columns on parallel
threads; numpy releases the GIL), categorical columns are counted by Arrow.

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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from regrow.data._compute import parallel_map
from regrow.data.frames import logical_dtype, to_arrow
from regrow.data.snapshot import apply_slice
from regrow.errors import DataError, SliceError
from regrow.monitor.calibration import Calibrator, Evaluation, adjusted_p_values
from regrow.monitor.drift import registry
from regrow.monitor.drift.base import (
    Binned,
    CategoricalBins,
    DriftTest,
    NumericGrid,
    bin_current,
    sorted_values,
)
from regrow.monitor.drift.null_rate import NULL_RATE, null_binned, null_count
from regrow.monitor.profile import ColumnProfile, Kind, Profile, kind_of

__all__ = ["DriftMonitor", "DriftReport", "FeatureDrift"]

_SINGLE_FROM = 100_000  # float columns of this many rows are sorted in float32 (see sorted_values)

_EFFECT_NAMES = {
    "ks": "KS distance",
    "wasserstein": "Wasserstein distance / reference std",
    "psi": "PSI",
    "jensen_shannon": "Jensen-Shannon distance",
    "chi_square": "Cramér's V",
    "unseen": "share of never-seen values",
    "null_rate": "absolute difference in null rate",
}


@dataclass(frozen=True)
class FeatureDrift:
    """The decision for one column in one slice (``slice`` is None for the whole window)."""

    column: str
    slice: str | None
    test: str
    statistic: float
    threshold: float
    p_value: float
    effect: float
    effect_interval: tuple[float, float]
    drifted: bool
    why: str
    adjusted_p_value: float = math.nan
    error_bound: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (NaN becomes None)."""
        out = asdict(self)
        out["effect_interval"] = [_json(v) for v in self.effect_interval]
        return {k: _json(v) if isinstance(v, float) else v for k, v in out.items()}


@dataclass(frozen=True)
class DriftReport:
    """Every :class:`FeatureDrift` of one window, in reference column order per slice."""

    features: tuple[FeatureDrift, ...]
    rows: int
    fdr: float
    slices: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        """The drifted features."""
        return tuple(f for f in self.features if f.drifted)

    @property
    def drifted_columns(self) -> list[str]:
        """Columns drifted in the whole window or in any slice, in report order."""
        return list(dict.fromkeys(f.column for f in self.features if f.drifted))

    def table(self) -> list[dict[str, Any]]:
        """One row per feature, for display (JSON types)."""
        return [f.to_dict() for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON types."""
        return {
            "rows": self.rows,
            "fdr": self.fdr,
            "slices": list(self.slices),
            "drifted_columns": self.drifted_columns,
            "features": self.table(),
        }


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
        self._grids: dict[tuple[str | None, str], NumericGrid | CategoricalBins] = {}
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
            frame = table.to_pandas()
            for name, expr in slices.items():
                if name not in self.reference.slices:
                    raise SliceError(
                        f"slice {name!r} is not profiled in the reference",
                        hint=f"profile the reference with slices={{{name!r}: {expr!r}}}",
                    )
                part = to_arrow(apply_slice(frame, name, expr))
                self._check_table(part, self.reference.slices[name], name, done, pending)
        return DriftReport(
            tuple(done + self._decide(pending)), table.num_rows, self.fdr, tuple(slices or ())
        )

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
        for name, ref in reference.columns.items():
            if name not in table.column_names:
                skip(name, "schema", True, "column is missing from the window")
                continue
            dtype = logical_dtype(table.schema.field(name).type)
            kind = kind_of(dtype)
            values = table.num_rows - table.column(name).null_count
            if ref.kind == "other":
                skip(name, "skipped", False, f"{ref.dtype} columns are not tested for drift")
            elif table.num_rows == 0:
                skip(name, "skipped", False, "the slice selects no rows of the window")
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
            binned = parallel_map(
                lambda rk: self._bin(rk[0], table.column(rk[0].name), slice_name),
                tested,
                cells=table.num_rows * len(tested),
            )
            for (ref, _), b in zip(tested, binned, strict=True):
                tests = [self._choose(ref, b.n)]
                if ref.kind == "categorical" and ref.complete:
                    tests.append(registry.get("unseen"))
                for test in tests:
                    key = (slice_name, ref.name)
                    evaluation = self._calibrator.evaluate(test, b, key, level=self.fdr)
                    pending.append(_Pending(ref.name, slice_name, test, evaluation, b.n))
        pending.extend(rates)

    def _null_rate(
        self,
        ref: ColumnProfile,
        column: pa.ChunkedArray,
        slice_name: str | None,
        pending: list[_Pending],
    ) -> None:
        """Queue the null-rate test of a column with values on both sides if either has nulls."""
        nulls = null_count(column)
        if ref.nulls == 0 and nulls == 0:
            return
        binned = null_binned(ref, column)
        key = (slice_name, ref.name)
        evaluation = self._calibrator.evaluate(NULL_RATE, binned, key, level=self.fdr)
        pending.append(_Pending(ref.name, slice_name, NULL_RATE, evaluation, binned.n))

    def _choose(self, ref: ColumnProfile, n: int) -> DriftTest:
        override = (self.overrides or {}).get(ref.name) or (self.tests or {}).get(ref.kind)
        return registry.choose(ref.kind, n, override=override, column=ref.name)

    def _bin(self, ref: ColumnProfile, column: pa.ChunkedArray, slice_name: str | None) -> Binned:
        key = (slice_name, ref.name)
        if key not in self._grids:
            self._grids[key] = self._reference_bins(ref, slice_name)
        bins = self._grids[key]
        if isinstance(bins, NumericGrid):
            single = pa.types.is_floating(column.type) and len(column) >= _SINGLE_FROM
            values = sorted_values(column, single=single)
            return bin_current(ref, values, grid=bins, presorted=True)
        return bin_current(ref, column, bins=bins)

    def _reference_bins(
        self, ref: ColumnProfile, slice_name: str | None
    ) -> NumericGrid | CategoricalBins:
        if ref.kind == "categorical":
            return CategoricalBins.of(ref)
        grid = NumericGrid.of(ref)
        if self._exact is not None and slice_name is None and ref.name in self._exact.column_names:
            values = sorted_values(self._exact.column(ref.name))
            cdf = np.searchsorted(values, grid.edges, side="right") / max(values.size, 1)
            grid = NumericGrid(grid.edges, cdf, values.size, grid.scale, 0.0)
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
    name = _EFFECT_NAMES.get(p.test.name, p.test.name)
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
    )


def _plain(column: str, slice_name: str | None, test: str, drifted: bool, why: str) -> FeatureDrift:
    nan = math.nan
    return FeatureDrift(column, slice_name, test, nan, nan, nan, nan, (nan, nan), drifted, why)


def _json(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
