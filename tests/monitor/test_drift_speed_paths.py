"""The faster paths of the drift binning give exactly what the step-by-step definitions give.

The lattice counts a window in blocks of several tail steps (``COUNT_BLOCK``), and a grid asks
its sketch for the CDF at the plain and the aligned edges in one query; neither may change a
count, a tail or a reference CDF by as much as one bit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from regrow.monitor.drift import lattice as lattice_module
from regrow.monitor.drift.base import NumericGrid
from regrow.monitor.drift.lattice import BLOCK, Lattice
from regrow.monitor.profile import profile_column

RNG = np.random.default_rng(11)


def _step_by_step(lattice: Lattice, values: np.ndarray) -> tuple[list[int], float]:
    """Counts at the edges by a sort; tails summed one step at a time, only where present."""
    at = np.searchsorted(np.sort(values.astype(np.float64)), lattice.edges, side="right")
    step = max(BLOCK, 4 * lattice.cells)
    first, last = lattice.edges[0], lattice.edges[-1]
    tails = 0.0
    for start in range(0, values.size, step):
        part = values[start : start + step]
        low, high = part[part < first], part[part > last]
        if low.size:
            tails += float(low.size * first - low.sum(dtype=np.float64))
        if high.size:
            tails += float(high.sum(dtype=np.float64) - high.size * last)
    return at.tolist(), tails


def _window(kind: str, size: int, lattice: Lattice) -> np.ndarray:
    e = lattice.edges
    if kind == "normal with far tails":
        return RNG.normal(0.3, 2.5, size)
    if kind == "ties on every edge":
        on = np.concatenate([e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf)])
        return RNG.permutation(np.resize(on, size))
    if kind == "infinities and huge values":
        values = RNG.normal(size=size)
        spots = RNG.choice(size, 40, replace=False)
        values[spots] = np.resize([np.inf, -np.inf, 1e300, -1e300], 40)
        return values
    if kind == "constant":
        return np.full(size, e[e.size // 2])
    if kind == "integers":
        return RNG.integers(-6, 7, size)
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def lattice() -> Lattice:
    grid = NumericGrid.of(profile_column("x", pa.array(RNG.normal(size=40_000))))
    assert grid.aligned is not None
    assert grid.aligned.lattice is not None
    return grid.aligned.lattice


@pytest.mark.parametrize(
    "kind",
    [
        "normal with far tails",
        "ties on every edge",
        "infinities and huge values",
        "constant",
        "integers",
    ],
)
@pytest.mark.parametrize("count_block", [1, 3 * BLOCK, lattice_module.COUNT_BLOCK])
def test_blocked_counts_and_tails_equal_the_step_by_step_ones_to_the_last_bit(
    kind: str, count_block: int, lattice: Lattice, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lattice_module, "COUNT_BLOCK", count_block)
    step = max(BLOCK, 4 * lattice.cells)
    values = _window(kind, 3 * step + 1234, lattice)  # a partial block at the end
    counts, tails = lattice.counts_and_tails(values)
    expected_counts, expected_tails = _step_by_step(lattice, values)
    assert counts.tolist() == expected_counts
    if np.isnan(expected_tails):
        assert np.isnan(tails)
    else:
        assert tails == expected_tails  # the same sums in the same order: not approximately


def test_a_window_smaller_than_one_step_is_counted_in_one_block(lattice: Lattice) -> None:
    values = RNG.normal(0.0, 3.0, 1000)
    counts, tails = lattice.counts_and_tails(values)
    assert (counts.tolist(), tails) == _step_by_step(lattice, values)


@pytest.mark.parametrize(
    "ref",
    [
        RNG.normal(size=60_000),
        RNG.lognormal(0.0, 1.0, 60_000),
        RNG.integers(0, 40, 60_000).astype(np.float64),
        1e6 + RNG.normal(size=60_000),
    ],
    ids=["normal", "lognormal", "integers", "far from zero"],
)
def test_one_sketch_query_gives_both_grids_the_cdf_separate_queries_give(ref: np.ndarray) -> None:
    profile = profile_column("x", pa.array(ref))
    grid = NumericGrid.of(profile)
    assert grid.aligned is not None
    kll = profile.kll()
    for g in (grid, grid.aligned, NumericGrid.of(profile, align=False)):
        alone = np.asarray(kll.get_cdf(g.edges, inclusive=True), dtype=np.float64)[:-1]
        alone[-1] = 1.0
        assert g.ref_cdf.tobytes() == alone.tobytes()


def test_an_infinite_reference_value_does_not_hide_drift_in_other_columns() -> None:
    """A single inf made one column's statistic NaN, and Benjamini-Hochberg then turned every
    adjusted p-value into NaN: nothing was flagged, not even a two-sd shift."""
    import pandas as pd

    from regrow.monitor import DriftMonitor, Profile

    rng = np.random.default_rng(0)
    z = rng.normal(size=5000)
    z[7] = np.inf
    reference = pd.DataFrame({"a": rng.normal(size=5000), "z": z})
    window = pd.DataFrame({"a": rng.normal(2.0, 1.0, size=5000), "z": rng.normal(size=5000)})
    report = DriftMonitor(Profile.of(reference), seed=0).check(window)
    assert "a" in report.drifted_columns
