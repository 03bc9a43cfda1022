"""The one-pass lattice binning gives exactly the counts a sort gives on the aligned grid."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from regrow.monitor.drift import KS, Wasserstein, base, bin_current
from regrow.monitor.drift.base import NumericGrid, numeric_values
from regrow.monitor.drift.lattice import Lattice
from regrow.monitor.profile import profile_column

RNG = np.random.default_rng(7)
GRIDS = {
    "normal": (RNG.normal(size=60_000), RNG.normal(0.2, 1.1, size=50_000)),
    "lognormal": (RNG.lognormal(size=60_000), RNG.lognormal(0.1, size=50_000)),
    "integers": (RNG.integers(0, 40, 60_000), RNG.integers(0, 45, 50_000)),
    "offset": (1e6 + RNG.normal(size=60_000), 1e6 + RNG.normal(size=50_000)),
    "point mass": (
        np.r_[np.zeros(30_000), RNG.normal(size=30_000)],
        np.r_[np.zeros(10_000), RNG.normal(size=40_000)],
    ),
    "outside": (RNG.normal(size=60_000), RNG.normal(6.0, size=50_000)),
}


def _sorted_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(values), edges, side="right")


def _aligned(ref: np.ndarray) -> tuple[NumericGrid, NumericGrid, Lattice]:
    grid = NumericGrid.of(profile_column("x", pa.array(ref)))
    aligned = grid.aligned
    assert aligned is not None
    assert aligned.lattice is not None
    return grid, aligned, aligned.lattice


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_lattice_counts_equal_a_sort_and_search_at_the_aligned_edges(name: str) -> None:
    ref, cur = GRIDS[name]
    _, aligned, lattice = _aligned(ref)
    counts, tails = lattice.counts_and_tails(cur)
    assert counts.tolist() == _sorted_counts(aligned.edges, cur).tolist()
    first, last = aligned.edges[0], aligned.edges[-1]
    expected = (first - cur[cur < first]).sum() + (cur[cur > last] - last).sum()
    assert tails == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_aligned_edges_move_less_than_one_cell_and_keep_the_reference_cdf(name: str) -> None:
    ref, _ = GRIDS[name]
    grid, aligned, lattice = _aligned(ref)
    assert aligned.edges.size == grid.edges.size
    moved = aligned.edges - grid.edges
    assert moved.min() >= 0
    assert moved.max() <= 1.0 / lattice.scale
    assert np.all(lattice.cell(aligned.edges) == lattice.edge_cell)
    assert np.all(lattice.cell(np.nextafter(aligned.edges, np.inf)) > lattice.edge_cell)
    exact = _sorted_counts(aligned.edges, ref) / ref.size  # the sketch is exact up to its error
    assert np.abs(aligned.ref_cdf - exact).max() <= 3 * grid.rank_error + 1e-12


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_large_windows_are_binned_on_the_aligned_grid_like_a_sort(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "LATTICE_FROM", 20_000)  # these windows count as large
    ref, cur = GRIDS[name]
    profile = profile_column("x", pa.array(ref))
    grid = NumericGrid.of(profile)
    assert cur.size >= base.LATTICE_FROM  # so bin_current takes the lattice
    fast = bin_current(profile, cur, grid=grid)
    assert fast.grid is grid.aligned
    slow = bin_current(profile, np.sort(cur.astype(np.float64)), grid=fast.grid, presorted=True)
    assert np.array_equal(fast.cur, slow.cur)
    assert fast.tails == pytest.approx(slow.tails, rel=1e-12, abs=1e-15)
    for test in (KS(), Wasserstein()):
        assert float(test.batch(fast)) == pytest.approx(float(test.batch(slow)), rel=1e-12)


@pytest.mark.parametrize("name", ["normal", "integers", "outside", "point mass"])
def test_fast_statistics_stay_within_their_bound_of_the_exact_two_sample_ones(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "LATTICE_FROM", 20_000)
    ref, cur = GRIDS[name]
    binned = bin_current(profile_column("x", pa.array(ref)), cur)
    assert binned.numeric_grid.lattice is not None
    ks = float(KS().batch(binned))
    exact_ks = ks_2samp(ref, cur).statistic
    rank_error = binned.numeric_grid.rank_error
    assert exact_ks - KS().error_bound(binned) <= ks <= exact_ks + rank_error
    w = float(Wasserstein().batch(binned))
    exact_w = wasserstein_distance(ref, cur) / ref.std(ddof=1)
    assert abs(w - exact_w) <= Wasserstein().error_bound(binned)


def test_far_outliers_in_the_reference_make_windows_sorted_instead() -> None:
    ref = np.r_[RNG.normal(size=50_000), 1e12]
    profile = profile_column("x", pa.array(ref))
    grid = NumericGrid.of(profile)
    assert grid.aligned is None
    cur = RNG.normal(size=30_000)
    binned = bin_current(profile, cur, grid=grid)
    assert binned.grid is grid
    assert binned.cur.tolist() == (_sorted_counts(grid.edges, cur) / cur.size).tolist()


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_values_on_and_next_to_every_aligned_edge_are_counted_like_a_sort(name: str) -> None:
    ref, _ = GRIDS[name]
    grid, aligned, lattice = _aligned(ref)
    e = aligned.edges
    around = [e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf), grid.edges]
    values = RNG.permutation(np.concatenate([*around, (e[:-1] + e[1:]) / 2]))
    counts, _ = lattice.counts_and_tails(values)
    assert counts.tolist() == _sorted_counts(e, values).tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_single_precision_and_integer_windows_are_binned_in_double(dtype: type) -> None:
    ref = 1e5 + RNG.normal(size=20_000)  # far from 0, where float32 bounds would round off
    _, aligned, lattice = _aligned(ref)
    cur = np.r_[1e5 + 3 * RNG.normal(size=20_000), 1e5 - 60, 1e5 + 60].astype(dtype)
    counts, _ = lattice.counts_and_tails(cur)
    assert counts.tolist() == _sorted_counts(aligned.edges, cur.astype(np.float64)).tolist()


def test_edges_end_their_cells_whichever_way_the_tie_at_a_cell_boundary_rounds() -> None:
    lattice = Lattice.align(np.linspace(-3.0, 3.0, 41))
    assert lattice is not None
    cells = lattice.edge_cell
    assert {int(c) % 2 for c in cells} == {0, 1}  # both tie directions are exercised
    midpoints = (cells + lattice.offset + 0.5) / lattice.scale  # exactly half way
    assert np.all(lattice.cell(midpoints) == np.where(cells % 2 == 0, cells, cells + 1))
    assert np.all(
        lattice.edges == np.where(cells % 2 == 0, midpoints, np.nextafter(midpoints, -np.inf))
    )


def test_the_grid_is_built_once_per_profile_and_shared_by_monitors() -> None:
    profile = profile_column("x", pa.array(RNG.normal(size=5000)))
    grid = NumericGrid.of(profile)
    assert NumericGrid.of(profile) is grid
    assert NumericGrid.of(profile, align=False) is not grid  # its own key
    with pytest.raises(ValueError, match="read-only"):
        grid.edges[0] = 0.0


def test_huge_and_infinite_values_land_in_the_outer_cells() -> None:
    lattice = Lattice.align(np.array([0.0, 1.0, 2.0]))
    assert lattice is not None
    values = np.array([-np.inf, -1e308, 0.5, 1e308, np.inf])
    assert lattice.counts_and_tails(values)[0].tolist() == [2, 3, 3]


def test_numeric_values_drops_nulls_and_nan_and_keeps_integers() -> None:
    assert numeric_values(pa.array([1.0, None, np.nan, 2.0])).tolist() == [1.0, 2.0]
    assert numeric_values(pa.array([3, None, 1])).dtype.kind == "i"
    assert numeric_values([2.0, np.nan], nan_free=True).size == 2  # trusted: no scan


def test_the_monitor_bins_large_windows_on_the_lattice(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from regrow.monitor import DriftMonitor, Profile

    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(size=30_000), "b": rng.normal(size=30_000)})
    window = pd.DataFrame({"a": rng.normal(size=30_000), "b": rng.normal(0.3, size=30_000)})
    profile = Profile.of(ref)
    sorted_report = DriftMonitor(profile).check(window)
    monkeypatch.setattr(base, "LATTICE_FROM", 20_000)
    monitor = DriftMonitor(profile)
    lattice_report = monitor.check(window)
    assert any(isinstance(g, NumericGrid) and g.aligned for g in monitor._grids.values())
    assert lattice_report.drifted_columns == sorted_report.drifted_columns == ["b"]
    a, b = (next(f for f in r.features if f.column == "b") for r in (sorted_report, lattice_report))
    assert b.effect == pytest.approx(a.effect, abs=0.01)
