"""DLE: the estimated RMSE / MAE follows covariate shift, and its band covers the truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits

from regrow import Member, System, Workspace
from regrow.errors import ConfigError, DataError
from regrow.monitor.dle import DLE


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: on small data HistGradientBoosting's threads only add overhead, and on
    a loaded 2-core machine their spin-waiting made the loss models 10x slower."""
    with threadpool_limits(limits=1):
        yield


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    x = rng.normal(size=n)
    noise_driver = rng.normal(shift, 1.0, n)
    frame = pd.DataFrame({"x": x, "z": noise_driver, "c": rng.choice(["a", "b"], n)})
    sd = 0.3 + 0.5 * np.abs(noise_driver) + 0.3 * (frame["c"] == "b")
    return frame, 2 * x + rng.normal(size=n) * sd


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_band_covers_the_realised_loss_under_covariate_shift(metric: str) -> None:
    rng = np.random.default_rng(0)
    ref, y_ref = _rows(rng, 4000)
    dle = DLE(metric, seed=0).fit(ref, 2 * ref["x"], y_ref)
    covered, errors = 0, []
    for w in range(20):
        frame, y = _rows(rng, 500, shift=0.05 * w)  # the noisy region grows over time
        pred = 2 * frame["x"].to_numpy()
        err = y - pred
        realised = np.sqrt(np.mean(err**2)) if metric == "rmse" else np.mean(np.abs(err))
        est = dle.estimate(frame, pred).estimate
        covered += est.low <= realised <= est.high
        errors.append(realised - est.value)
    assert covered >= 17
    assert abs(np.mean(errors)) < 0.03
    late, _ = _rows(rng, 2000, shift=1.5)
    assert dle.estimate(late, 2 * late["x"]).estimate.value > 1.25 * dle.reference_value_


def test_unseen_categories_and_out_of_range_values_raise_warnings() -> None:
    rng = np.random.default_rng(1)
    ref, y_ref = _rows(rng, 1000)
    dle = DLE().fit(ref, 2 * ref["x"], y_ref)
    window, _ = _rows(rng, 300)
    window["c"] = "new"
    result = dle.estimate(window, 2 * window["x"])
    assert result.outside_by_column["c"] == 1.0
    assert "'c'" in result.warnings[0]
    assert result.to_dict()["estimate"]["metric"] == "rmse"


def test_on_a_fitted_regression_system(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame, y = _rows(rng, 1500)
    frame["y"] = y
    system = System(
        "reg",
        target="y",
        task="regression",
        components=[Member("m", LinearRegression(), inputs=["x", "z"])],
    )
    ws = Workspace.init(tmp_path / "ws")
    model = ws.load(ws.train(system, ws.snapshot(frame[:1000], name="d"), workers=1).version.ref)
    ref = frame[:1000]
    dle = DLE().fit(ref[["x", "z", "c"]], model.predict(ref), ref["y"])
    window = frame[1000:]
    pred = model.predict(window)
    est = dle.estimate(window[["x", "z", "c"]], pred).estimate
    realised = float(np.sqrt(np.mean((window["y"] - pred) ** 2)))
    # one window: its 95% band may miss; three sampling errors may not
    assert abs(realised - est.value) < 3 * est.sampling_error


def test_bad_inputs_are_refused() -> None:
    rng = np.random.default_rng(3)
    ref, y = _rows(rng, 200)
    with pytest.raises(ConfigError, match="'metric'"):
        DLE("auc")
    with pytest.raises(ConfigError, match="not fitted"):
        DLE().row_loss(ref, y)
    with pytest.raises(DataError, match="differ in length"):
        DLE().fit(ref, y[:10], y)
    dle = DLE().fit(ref, 2 * ref["x"], y)
    with pytest.raises(DataError, match="lacks columns"):
        dle.estimate(ref.drop(columns="z"), y)
    with pytest.raises(DataError, match="empty"):
        dle.estimate(ref[:0], y[:0])
