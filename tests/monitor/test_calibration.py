"""Calibration: null distributions per window size, p-values, FDR, false-alarm rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import false_discovery_control

from regrow.monitor.calibration import (
    Calibrator,
    NullDistribution,
    adjusted_p_values,
    benjamini_hochberg,
)
from regrow.monitor.drift import KS, ChiSquare, Wasserstein, bin_current
from regrow.monitor.drift_monitor import DriftMonitor
from regrow.monitor.profile import Profile, profile_column

COLS = [f"c{i}" for i in range(10)]


def test_adjusted_p_values_match_scipy() -> None:
    p = np.random.default_rng(0).uniform(size=40) ** 3
    assert adjusted_p_values(p) == pytest.approx(false_discovery_control(p, method="bh"))


def test_benjamini_hochberg_rejects_only_small_p_values() -> None:
    assert benjamini_hochberg([0.2, 0.001, 0.04, 0.9], 0.05).tolist() == [False, True, False, False]
    assert benjamini_hochberg([], 0.05).tolist() == []


def test_threshold_shrinks_as_the_window_grows() -> None:
    ref = profile_column("x", pa.array(np.random.default_rng(1).normal(size=20_000)))
    cal = Calibrator(draws=300)
    rng = np.random.default_rng(2)
    small = cal.evaluate(KS(), bin_current(ref, rng.normal(size=300)), key="x")
    large = cal.evaluate(KS(), bin_current(ref, rng.normal(size=20_000)), key="x")
    assert small.threshold > 2 * large.threshold
    # the two-sample KS critical value at 5 %: 1.36 * sqrt(1/n + 1/m)
    assert small.threshold == pytest.approx(1.36 * np.sqrt(1 / 300 + 1 / 20_000), rel=0.15)


def test_null_distributions_are_cached_per_column_test_and_size() -> None:
    ref = profile_column("x", pa.array(np.random.default_rng(3).normal(size=5_000)))
    cal = Calibrator(draws=200)
    b1 = bin_current(ref, np.random.default_rng(4).normal(size=800))
    b2 = bin_current(ref, np.random.default_rng(5).normal(size=800))
    b3 = bin_current(ref, np.random.default_rng(6).normal(size=900))
    assert cal.null(Wasserstein(), b1, "x") is cal.null(Wasserstein(), b2, "x")
    assert cal.null(Wasserstein(), b1, "x") is not cal.null(Wasserstein(), b3, "x")
    assert cal.null(Wasserstein(), b1, "x") is not cal.null(KS(), b1, "x")


def test_chi_square_null_has_its_degrees_of_freedom() -> None:
    ref = profile_column("c", pa.array(np.random.default_rng(7).choice(list("abcde"), 5_000)))
    cal = Calibrator(draws=2_000)
    null = cal.null(ChiSquare(), bin_current(ref, list("abcde") * 100), "c")
    assert null.draws.mean() == pytest.approx(4.0, rel=0.1)  # 5 values + empty other: df 4


def test_p_value_is_empirical_in_the_bulk_and_gamma_in_the_tail() -> None:
    draws = np.random.default_rng(8).gamma(3.0, 2.0, size=1_000)
    null = NullDistribution(draws, draws)
    assert null.p_value(float(np.median(draws))) == pytest.approx(0.5, abs=0.02)
    far = null.p_value(60.0)
    assert 0 < far < 1e-6
    assert null.quantile(0.95) == pytest.approx(np.quantile(draws, 0.95), rel=0.1)


def test_ks_interval_covers_the_true_distance() -> None:
    ref = profile_column("x", pa.array(np.random.default_rng(9).normal(size=10_000)))
    cur = np.random.default_rng(10).normal(0.5, size=2_000)
    ev = Calibrator(draws=200).evaluate(KS(), bin_current(ref, cur), key="x")
    true = 0.19741265  # sup |Phi(x) - Phi(x - 0.5)| = 2 * Phi(0.25) - 1
    assert ev.interval[0] <= true <= ev.interval[1]


def _no_drift_p_values(test: str, windows: int, n: int, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cal = Calibrator(draws=300, seed=seed)
    ps: list[float] = []
    for _ in range(windows):  # a fresh reference each time: the unconditional false-alarm rate
        ref = Profile.of(pd.DataFrame(rng.normal(size=(m, len(COLS))), columns=COLS))
        monitor = DriftMonitor(ref, tests={"numeric": test}, margin={test: 0.0}, calibrator=cal)
        report = monitor.check(pd.DataFrame(rng.normal(size=(n, len(COLS))), columns=COLS))
        ps += [f.p_value for f in report.features]
    return np.array(ps)


@pytest.mark.parametrize(("test", "n", "m"), [("ks", 400, 3_000), ("wasserstein", 3_000, 3_000)])
def test_false_alarm_rate_is_at_most_nominal_plus_slack(test: str, n: int, m: int) -> None:
    p = _no_drift_p_values(test, windows=40, n=n, m=m, seed=11)
    assert p.size == 400
    assert (p < 0.05).mean() <= 0.05 + 0.035
    assert (p < 0.01).mean() <= 0.01 + 0.015
    assert (p < 0.5).mean() == pytest.approx(0.5, abs=0.1)  # p-values are roughly uniform


def test_twenty_no_drift_windows_flag_nothing() -> None:
    rng = np.random.default_rng(12)
    frame = pd.DataFrame(rng.normal(size=(20_000, len(COLS))), columns=COLS)
    frame["cat"] = rng.choice(list("abcd"), len(frame))
    monitor = DriftMonitor(Profile.of(frame))
    for _ in range(20):
        window = pd.DataFrame(rng.normal(size=(5_000, len(COLS))), columns=COLS)
        window["cat"] = rng.choice(list("abcd"), len(window))
        assert monitor.check(window).drifted_columns == []
