"""DLE's six metrics: one loss model per distinct loss, bands that cover, refused inputs."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_log_error,
)
from threadpoolctl import threadpool_limits

from regrow.errors import ConfigError, DataError
from regrow.monitor._dle_losses import default_model
from regrow.monitor.dle import DLE, DLE_METRICS

REALISED = {
    "mae": mean_absolute_error,
    "mape": mean_absolute_percentage_error,
    "mse": mean_squared_error,
    "rmse": lambda y, p: np.sqrt(mean_squared_error(y, p)),
    "msle": mean_squared_log_error,
    "rmsle": lambda y, p: np.sqrt(mean_squared_log_error(y, p)),
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: on small data the boosting's threads only add overhead."""
    with threadpool_limits(limits=1):
        yield


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Positive targets (for the log metrics) whose noise grows with |z| and in category b.

    The model predicts ``2 x + 4``; the noise is clipped at 3 sd so targets stay above 1.
    """
    x = rng.uniform(1, 3, n)
    z = rng.normal(shift, 1.0, n)
    frame = pd.DataFrame({"x": x, "z": z, "c": rng.choice(["a", "b"], n)})
    sd = 0.2 + 0.3 * np.minimum(np.abs(z), 4) + 0.2 * (frame["c"] == "b")
    return frame, 2 * x + 4 + np.clip(rng.normal(size=n), -3, 3) * sd


def _pred(frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(2 * frame["x"] + 4)


@pytest.fixture(scope="module")
def fitted() -> DLE:
    ref, y = _rows(np.random.default_rng(30), 4000)
    return DLE(metrics=DLE_METRICS, seed=0).fit(ref, _pred(ref), y)


def test_every_band_covers_the_realised_value_in_at_least_17_of_20_windows(fitted: DLE) -> None:
    rng = np.random.default_rng(31)
    covered = dict.fromkeys(DLE_METRICS, 0)
    for _ in range(20):
        frame, y = _rows(rng, 600)  # undrifted
        pred = _pred(frame)
        result = fitted.estimate(frame, pred)
        assert result.estimate == result.estimates["mae"]  # the first metric asked for
        for m, est in result.estimates.items():
            covered[m] += est.low <= REALISED[m](y, pred) <= est.high
    assert min(covered.values()) >= 17, covered


def test_estimates_rise_with_a_shift_into_the_noisy_region(fitted: DLE) -> None:
    rng = np.random.default_rng(32)
    calm, y_calm = _rows(rng, 2000)
    noisy, y_noisy = _rows(rng, 2000, shift=1.0)
    before = fitted.estimate(calm, _pred(calm)).estimates
    after = fitted.estimate(noisy, _pred(noisy)).estimates
    for m in DLE_METRICS:
        realised_rise = REALISED[m](y_noisy, _pred(noisy)) / REALISED[m](y_calm, _pred(calm))
        assert realised_rise > 1.15, m
        estimated_rise = after[m].value / before[m].value
        assert estimated_rise - 1 > 0.6 * (realised_rise - 1), (m, estimated_rise, realised_rise)


def test_metrics_sharing_a_row_loss_share_one_model(fitted: DLE) -> None:
    assert sorted(fitted._models) == [
        "absolute_error",
        "absolute_percentage_error",
        "squared_error",
        "squared_log_error",
    ]
    frame, _ = _rows(np.random.default_rng(33), 500)
    est = fitted.estimate(frame, _pred(frame)).estimates
    assert est["rmse"].value == pytest.approx(np.sqrt(est["mse"].value))
    assert est["rmsle"].value == pytest.approx(np.sqrt(est["msle"].value))
    assert fitted.reference_values_["mse"] == pytest.approx(fitted.reference_values_["rmse"] ** 2)
    loss = fitted.row_loss(frame, _pred(frame), "mape")
    assert loss.mean() == pytest.approx(est["mape"].value)
    assert repr(fitted).startswith("DLE(metrics=")
    assert DLE("mae").metrics == ("mae",)


def test_without_lightgbm_the_default_is_scikit_learns_boosting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # importing it now fails
    model, kwargs = default_model([False, True], seed=0, threads=1)
    assert isinstance(model, HistGradientBoostingRegressor)
    assert kwargs == {}
    ref, y = _rows(np.random.default_rng(34), 1000)
    dle = DLE("rmse", seed=0).fit(ref, _pred(ref), y)
    assert isinstance(dle._models["squared_error"], HistGradientBoostingRegressor)
    frame, y_w = _rows(np.random.default_rng(35), 1000)
    est = dle.estimate(frame, _pred(frame)).estimate
    assert abs(est.value - REALISED["rmse"](y_w, _pred(frame))) < 3 * est.sampling_error


def test_bad_metrics_and_log_metrics_below_minus_one_are_refused() -> None:
    rng = np.random.default_rng(36)
    ref, y = _rows(rng, 200)
    with pytest.raises(ConfigError, match=r"'metrics'.*'r2'"):
        DLE(metrics=("mae", "r2"))
    with pytest.raises(ConfigError, match="not both"):
        DLE("mae", metrics=("rmse",))
    with pytest.raises(
        DataError, match=r"\['msle'\] when reference targets are -1 or less"
    ) as info:
        DLE(metrics=("mae", "msle")).fit(ref, _pred(ref), y - 10)
    assert "log1p" in str(info.value.hint)
    DLE("mae").fit(ref, _pred(ref), y - 10)  # the absolute error takes any target
    dle = DLE("rmsle").fit(ref, _pred(ref), y)
    with pytest.raises(DataError, match="window predictions"):
        dle.estimate(ref, np.full(len(ref), -2.0))
    with pytest.raises(ConfigError, match="not fitted for metric 'mae'"):
        dle.row_loss(ref, _pred(ref), "mae")
