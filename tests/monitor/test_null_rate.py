"""The null-rate drift signal: calibrated under no drift, fires on a real change in null rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import fisher_exact

from regrow.monitor.drift.null_rate import NullRate, null_binned, null_count
from regrow.monitor.drift_monitor import DriftMonitor, DriftReport, FeatureDrift
from regrow.monitor.profile import ColumnProfile, Profile, profile_column


def _frame(n: int, seed: int, x_nulls: float = 0.01, c_nulls: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < x_nulls] = np.nan
    c = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    c[rng.random(n) < c_nulls] = None
    return pd.DataFrame({"x": x, "c": c, "g": rng.choice(["north", "south"], n)})


@pytest.fixture(scope="module")
def reference() -> Profile:
    return Profile.of(_frame(20_000, 1), slices={"north": "g == 'north'"})


def _rates(report: DriftReport) -> list[FeatureDrift]:
    return [f for f in report.features if f.test == "null_rate"]


def test_no_drift_windows_never_flag_the_null_rate(reference: Profile) -> None:
    monitor = DriftMonitor(reference)
    for seed in range(100, 120):  # 20 windows drawn with the reference's null rates
        report = monitor.check(_frame(5_000, seed), slices={"north": "g == 'north'"})
        rates = _rates(report)
        assert {(f.column, f.slice) for f in rates} == {
            ("x", None),
            ("c", None),
            ("x", "north"),
            ("c", "north"),
        }
        assert not any(f.drifted for f in rates), [f.why for f in rates if f.drifted]


def test_null_rate_from_1_to_10_percent_fires(reference: Profile) -> None:
    report = DriftMonitor(reference).check(_frame(5_000, 7, x_nulls=0.10))
    row = next(f for f in _rates(report) if f.column == "x")
    assert row.drifted
    assert row.effect == pytest.approx(0.09, abs=0.015)
    lo, hi = row.effect_interval
    assert 0.01 < lo < row.effect < hi
    assert row.adjusted_p_value < 1e-20
    assert "absolute difference in null rate" in row.why
    assert not next(f for f in _rates(report) if f.column == "c").drifted
    assert report.drifted_columns == ["x"]


def test_fully_non_null_data_adds_no_rows() -> None:
    frame = _frame(3_000, 2, x_nulls=0.0, c_nulls=0.0)
    report = DriftMonitor(Profile.of(frame)).check(_frame(2_000, 3, x_nulls=0.0, c_nulls=0.0))
    assert _rates(report) == []
    assert len(report.features) == 5  # x, c + unseen, g + unseen: the rows there were before


def test_nulls_appearing_in_a_non_null_column_fire() -> None:
    ref = Profile.of(_frame(5_000, 2, x_nulls=0.0, c_nulls=0.0))
    report = DriftMonitor(ref).check(_frame(5_000, 3, x_nulls=0.05, c_nulls=0.0))
    assert [(f.column, f.drifted) for f in _rates(report)] == [("x", True)]


def test_margin_silences_tiny_but_significant_changes() -> None:
    ref = Profile.of(_frame(200_000, 4, x_nulls=0.01, c_nulls=0.0))
    window = _frame(200_000, 5, x_nulls=0.016, c_nulls=0.0)
    row = _rates(DriftMonitor(ref).check(window))[0]
    assert row.adjusted_p_value < 0.05
    assert not row.drifted
    assert "irrelevance margin 0.01" in row.why
    strict = _rates(DriftMonitor(ref, margin={"null_rate": 0.001}).check(window))[0]
    assert strict.drifted


def test_rows_come_after_the_distribution_tests(reference: Profile) -> None:
    tests = [f.test for f in DriftMonitor(reference).check(_frame(2_000, 9)).features]
    assert tests[-2:] == ["null_rate", "null_rate"]
    assert "null_rate" not in tests[:-2]


@pytest.mark.parametrize(("m", "n", "rate"), [(20_000, 5_000, 0.01), (300, 80, 0.02)])
def test_p_value_is_calibrated_under_no_drift(m: int, n: int, rate: float) -> None:
    rng = np.random.default_rng(m + n)
    test, rejected, draws = NullRate(), 0, 2_000
    for x_ref, x_cur in zip(
        rng.binomial(m, rate, draws), rng.binomial(n, rate, draws), strict=True
    ):
        ref = ColumnProfile("x", "numeric", "float", m - int(x_ref), int(x_ref))
        cur = ColumnProfile("x", "numeric", "float", n - int(x_cur), int(x_cur))
        rejected += test.p_value(null_binned(ref, cur)) <= 0.05
    assert rejected / draws <= 0.065  # at most the nominal level (plus simulation noise)


def test_small_counts_use_fishers_exact_test() -> None:
    ref = profile_column("x", pa.array([None] * 2 + [1.0] * 98))
    window = pa.array([None] * 4 + [1.0] * 16)
    expected = fisher_exact([[2, 98], [4, 16]]).pvalue
    assert NullRate().p_value(null_binned(ref, window)) == pytest.approx(expected)


def test_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(500):
        x_ref, x_cur = rng.binomial(2_000, 0.05), rng.binomial(1_000, 0.08)
        ref = profile_column("x", pa.array([None] * int(x_ref) + [1.0] * (2_000 - int(x_ref))))
        cur = pa.array([None] * int(x_cur) + [1.0] * (1_000 - int(x_cur)), pa.float64())
        lo, hi = NullRate().interval(null_binned(ref, cur))
        covered += lo <= 0.03 <= hi
    assert covered / 500 >= 0.92


def test_nan_counts_as_null() -> None:
    assert null_count(pa.array([1.0, None, float("nan")])) == 2
    assert null_count(pa.chunked_array([pa.array(["a", None])])) == 1
