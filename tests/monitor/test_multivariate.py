"""Multivariate drift: both methods see a correlation flip, stay quiet at their level without
drift, flag only the drifted chunks, and take dirty input without a traceback."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from regrow.errors import ConfigError, DataError
from regrow.monitor._multivariate_pca import _errors
from regrow.monitor.chunks import Chunking
from regrow.monitor.multivariate import (
    METHODS,
    MultivariateDrift,
    PCAReconstruction,
    domain_check,
    domain_classifier,
    multivariate_drift,
)
from regrow.plan import domain as plan_domain

COLUMNS = ["a", "b", "x", "c"]


def _frame(n: int, seed: int, *, flip: bool = False) -> pd.DataFrame:
    """``a`` and ``b`` correlated at 0.8 (at -0.8 when ``flip``: every marginal unchanged), an
    independent ``x`` and a label ``c``."""
    rng = np.random.default_rng(seed)
    a, noise = rng.normal(size=n), rng.normal(size=n)
    b = (-0.8 if flip else 0.8) * a + 0.6 * noise
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "x": rng.normal(size=n),
            "c": rng.choice(["p", "q", "r"], n, p=[0.5, 0.3, 0.2]),
        }
    )


REFERENCE = _frame(4000, 0)


def test_a_correlation_flip_with_unchanged_marginals_is_detected_by_both_methods() -> None:
    flipped = _frame(2000, 1, flip=True)
    for col in ("a", "b"):  # the marginals are the reference's: N(0, 1)
        assert abs(flipped[col].mean()) < 0.1
        assert abs(flipped[col].std() - 1) < 0.1
    results = multivariate_drift(REFERENCE, flipped, COLUMNS)
    assert [r.method for r in results] == list(METHODS)
    assert all(r.drifted and r.value > r.threshold for r in results)
    auc, pca = results
    assert auc.value > 0.8
    assert auc.low > auc.threshold
    assert pca.value > 1.2 * pca.reference
    assert auc.why.startswith(f"AUC {auc.value:.3f} [")
    assert "a classifier tells the window's rows from the reference's" in auc.why
    assert "no longer lie where" in pca.why
    same = multivariate_drift(REFERENCE, _frame(2000, 2), COLUMNS)
    assert not any(r.drifted for r in same), [r.why for r in same]


def test_the_domain_threshold_is_chance_s_bound_at_the_scored_row_counts() -> None:
    result = domain_classifier(REFERENCE, _frame(400, 3), COLUMNS, level=0.99)
    scored = 200  # 400 window rows and as many reference rows drawn; half of each scored
    se0 = math.sqrt((2 * scored + 1) / (12 * scored * scored))
    assert result.threshold == pytest.approx(0.5 + norm.ppf(0.99) * se0)
    assert result.rows == 400
    assert result.reference == 0.5
    assert result.low <= result.value <= result.high


def test_the_pca_threshold_narrows_as_the_window_grows() -> None:
    pca = PCAReconstruction(seed=1).fit(REFERENCE, COLUMNS)
    small, large = pca.check(_frame(50, 4)), pca.check(_frame(5000, 5))
    assert small.reference == large.reference
    assert small.threshold - small.reference > 3 * (large.threshold - large.reference) > 0
    assert large.low < large.reference < large.high
    assert pca.components >= 1


def test_the_false_alarm_rate_without_drift_stays_near_one_minus_the_level() -> None:
    # margin 0: the calibrated threshold alone decides; 30 undrifted windows at level 0.9
    # expect 3 false alarms (8 or more has probability 0.008).
    domain = pca = 0
    for seed in range(30):
        reference, window = _frame(600, 100 + seed), _frame(150, 200 + seed)
        domain += domain_classifier(
            reference, window, COLUMNS, seed=seed, rows=300, level=0.9, margin=0
        ).drifted
        fitted = PCAReconstruction(level=0.9, margin=0, seed=seed).fit(reference, COLUMNS)
        pca += fitted.check(window).drifted
    assert domain <= 7
    assert pca <= 7
    # both do alarm sometimes: a threshold that never fires would pass the bound trivially
    assert domain + pca >= 1


def test_drift_only_in_the_second_half_is_flagged_in_those_chunks() -> None:
    window = pd.concat([_frame(1000, 6), _frame(1000, 7, flip=True)], ignore_index=True)
    chunks = Chunking(count=4).split(window)
    results = multivariate_drift(REFERENCE, window, COLUMNS, chunks=chunks)
    labels = [None, *(c.label for c in chunks)]
    assert [r.chunk for r in results] == [label for label in labels for _ in METHODS]
    flagged = {(r.chunk, r.method): r.drifted for r in results}
    for method in METHODS:
        assert flagged[(None, method)]  # half the window flipped
        assert [flagged[(c.label, method)] for c in chunks] == [False, False, True, True]
    assert all(r.rows == 500 for r in results if r.chunk is not None)


def _dirty(n: int, seed: int) -> pd.DataFrame:
    """Nulls, infinities, nullable integers, booleans, times and labels with nulls."""
    rng = np.random.default_rng(seed)
    frame = _frame(n, seed)
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    frame.loc[rng.random(n) < 0.01, "x"] = np.inf
    frame["i"] = pd.array(rng.integers(0, 5, n), dtype="Int64")
    frame.loc[rng.random(n) < 0.1, "i"] = pd.NA
    frame["flag"] = rng.random(n) < 0.3
    frame["t"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), "s")
    frame["c"] = frame["c"].where(rng.random(n) > 0.05, None)
    return frame


DIRTY = ["a", "b", "x", "c", "i", "flag", "t"]


@pytest.mark.parametrize("method", METHODS)
def test_dirty_input_is_read_without_a_traceback(method: str) -> None:
    reference, window = _dirty(3000, 8), _dirty(1000, 9)
    window.loc[:200, "c"] = "never seen"
    (result,) = multivariate_drift(reference, window, DIRTY, methods=[method])
    assert math.isfinite(result.value)
    assert result.rows == 1000
    quiet = _dirty(1000, 10)
    (same,) = multivariate_drift(reference, quiet, DIRTY, methods=[method])
    assert not same.drifted, same.why


@pytest.mark.parametrize("method", METHODS)
def test_a_column_missing_from_the_window_is_read_as_all_null_and_named(method: str) -> None:
    window = _frame(1000, 11).drop(columns="x")
    (result,) = multivariate_drift(REFERENCE, window, COLUMNS, methods=[method])
    assert result.drifted  # the reference had values there
    assert result.why.endswith("column(s) 'x' missing from the window were read as all null")


def test_a_column_missing_from_the_reference_is_a_data_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"'nope' are not in the reference"):
        domain_classifier(REFERENCE, REFERENCE, ["a", "nope"])
    with pytest.raises(DataError, match=r"'nope' are not in the reference"):
        PCAReconstruction().fit(REFERENCE, ["nope"])


@pytest.mark.parametrize("rows", [0, 12])
def test_a_window_of_too_few_rows_is_not_judged(rows: int) -> None:
    results = multivariate_drift(REFERENCE, _frame(rows, 12), COLUMNS)
    for result in results:
        assert not result.drifted
        assert result.why.startswith(f"too few rows to judge: the window has {rows}")
        assert math.isnan(result.value)
        assert result.to_dict()["value"] is None
    assert results[1].reference > 0  # the reference's mean error is still known


def test_bad_settings_and_an_unfitted_pca_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown multivariate method"):
        multivariate_drift(REFERENCE, REFERENCE, COLUMNS, methods=["ks"])
    with pytest.raises(ConfigError, match="level must be a probability"):
        domain_classifier(REFERENCE, REFERENCE, COLUMNS, level=1.5)
    with pytest.raises(ConfigError, match="variance must be a share"):
        PCAReconstruction(variance=0)
    with pytest.raises(ConfigError, match="not fitted"):
        PCAReconstruction().check(REFERENCE)
    with pytest.raises(DataError, match="the reference has 30 rows"):
        PCAReconstruction().fit(REFERENCE.head(30), COLUMNS)


def test_results_survive_a_json_round_trip() -> None:
    chunks = Chunking(count=2).split(REFERENCE.head(30))
    results = multivariate_drift(REFERENCE, REFERENCE.head(30), COLUMNS, chunks=chunks)
    for result in results:
        text = json.dumps(result.to_dict(), allow_nan=False)
        back = MultivariateDrift.from_dict(json.loads(text))
        assert back.to_dict() == result.to_dict()
        if result.chunk is None:
            assert back == result  # every value finite: equal field by field
    assert results[2].to_dict()["threshold"] is None  # 15 rows: not judged


def test_without_lightgbm_the_classifier_is_histgradientboosting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm raises ImportError
    reference, window = _dirty(600, 13), _frame(600, 14, flip=True)
    reference["id"] = [f"row{i}" for i in range(len(reference))]  # 600 levels: over 255
    window["id"] = [f"row{i}" for i in range(len(window))]
    result = domain_classifier(reference, window, [*COLUMNS, "id"])
    assert result.drifted


def test_the_planner_s_domain_check_is_the_monitor_s_held_out_auc() -> None:
    assert plan_domain.domain_check is domain_check
    window = _frame(1500, 15, flip=True)
    check = domain_check(REFERENCE, window, COLUMNS, seed=3)
    result = domain_classifier(REFERENCE, window, COLUMNS, seed=3)
    assert check.auc == result.value
    assert check.rows == 1500  # scored rows: half of each side's 1,500
    assert check.low < check.auc < check.high


@pytest.mark.parametrize("kept", [1, 4, 7])
def test_a_row_s_error_is_its_distance_to_the_kept_components(kept: int) -> None:
    rng = np.random.default_rng(16)
    X = rng.normal(size=(50, 8))
    vectors = np.linalg.qr(rng.normal(size=(8, 8)))[0]  # orthonormal columns
    projected = X @ vectors[:, :kept] @ vectors[:, :kept].T
    expected = np.linalg.norm(X - projected, axis=1)
    np.testing.assert_allclose(_errors(X, vectors, kept), expected, rtol=1e-9, atol=1e-12)
