"""regrow's side of ``benchmarks/monitoring_peers.py`` (run in regrow's interpreter, in-process).

For one dataset and setup, fitted on the ``fit`` frame and run on every chunk of the
``window`` frame (``Chunking(size=...)``, the chunks NannyML and Evidently also see):

- drift: ``DriftMonitor(Profile.of(fit[features])).check_chunks(window[features], chunks)``
  with its defaults (a feature is flagged in a chunk when it is in ``drifted_columns``);
- classification: ``CBPE(metrics=CBPE_METRICS, cost_matrix=..., threshold=..., seed=0)`` fitted
  on the fit frame's scores and labels, then ``estimate`` per chunk; its confusion cells
  (shares of rows) are renamed NannyML's way;
- regression: ``DLE(metrics=DLE_METRICS, seed=0)`` fitted on features, predictions and targets,
  then ``estimate`` per chunk.

:func:`monitor_50k` times the whole external monitor (drift, multivariate drift, estimates,
per chunk) on one window: ``regrow.monitor.external.monitor_predictions``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from regrow.monitor import DriftMonitor, Profile
from regrow.monitor.chunks import Chunk, Chunking

Estimates = list[dict[str, tuple[float, float, float]]]


def split(window: pd.DataFrame, size: int) -> list[Chunk]:
    """The chunks of ``size`` rows every tool is scored on."""
    return Chunking(size=size).split(window)


def drift(
    fit: pd.DataFrame, window: pd.DataFrame, features: Sequence[str], chunks: list[Chunk]
) -> list[dict[str, bool]]:
    """Per chunk, whether regrow's drift monitor flagged each feature."""
    monitor = DriftMonitor(Profile.of(fit[list(features)]))
    frame = window[list(features)]
    check_chunks = getattr(monitor, "check_chunks", None)
    if check_chunks is not None:
        reports = list(check_chunks(frame, chunks))
    else:  # before check_chunks landed: one check per chunk (no FDR control across chunks)
        reports = [monitor.check(frame.iloc[c.index]) for c in chunks]
    return [{f: f in set(r.drifted_columns) for f in features} for r in reports]


def _cell_name(name: str) -> str:
    """regrow's ``confusion_matrix[a,b]`` as NannyML's ``true_a_pred_b``."""
    if name.startswith("confusion_matrix["):
        true, pred = name[len("confusion_matrix[") : -1].split(",")
        return f"true_{true}_pred_{pred}"
    return name


def threshold_of(scores: np.ndarray, predictions: np.ndarray) -> float:
    """The binary model's decision threshold, read from its reference rows: the smallest score
    predicted positive, when every score from there up is predicted positive; else 0.5."""
    positive = predictions == 1
    if positive.any() and (~positive).any() and scores[~positive].max() < scores[positive].min():
        return float(scores[positive].min())
    return 0.5


def cbpe(
    job: dict[str, Any], fit: pd.DataFrame, window: pd.DataFrame, chunks: list[Chunk]
) -> Estimates:
    """Per chunk, regrow's CBPE estimates ``{metric: (value, low, high)}``."""
    from regrow.monitor.cbpe import CBPE, CBPE_METRICS

    scores = job["scores"]
    fit_s: np.ndarray
    win_s: np.ndarray
    if isinstance(scores, str):
        fit_s, win_s = fit[scores].to_numpy(float), window[scores].to_numpy(float)
        threshold = threshold_of(fit_s, fit[job["prediction"]].to_numpy())
        classes = None
    else:
        cols = list(scores.values())
        fit_s, win_s = fit[cols].to_numpy(float), window[cols].to_numpy(float)
        threshold, classes = 0.5, list(scores)
    estimator = CBPE(
        metrics=CBPE_METRICS, cost_matrix=job["cost_matrix"], threshold=threshold, seed=0
    )
    if classes is None:
        estimator.fit(fit_s, fit[job["target"]].to_numpy())
    else:
        estimator.fit(fit_s, fit[job["target"]].to_numpy(), classes=classes)
    out: Estimates = []
    for chunk in chunks:
        result = estimator.estimate(win_s[chunk.index])
        out.append({_cell_name(n): (e.value, e.low, e.high) for n, e in result.estimates.items()})
    return out


def dle(
    job: dict[str, Any], fit: pd.DataFrame, window: pd.DataFrame, chunks: list[Chunk]
) -> Estimates:
    """Per chunk, regrow's DLE estimates ``{metric: (value, low, high)}``."""
    from regrow.monitor.dle import DLE, DLE_METRICS

    features, pred = list(job["features"]), job["prediction"]
    estimator = DLE(metrics=DLE_METRICS, seed=0).fit(
        fit[features], fit[pred].to_numpy(float), fit[job["target"]].to_numpy(float)
    )
    out: Estimates = []
    for chunk in chunks:
        rows = window.iloc[chunk.index]
        result = estimator.estimate(rows[features], rows[pred].to_numpy(float))
        out.append({n: (e.value, e.low, e.high) for n, e in result.estimates.items()})
    return out


def run_setup(job: dict[str, Any], fit: pd.DataFrame, window: pd.DataFrame, size: int) -> Any:
    """Drift and estimates of one (fit, window) pair, with the seconds each took."""
    chunks = split(window, size)
    t = time.perf_counter()
    flags = drift(fit, window, job["features"], chunks)
    drift_s = time.perf_counter() - t
    t = time.perf_counter()
    estimates: Estimates | None
    error = None
    try:
        run = dle if job["task"] == "regression" else cbpe
        estimates = run(job, fit, window, chunks)
    except ImportError as exc:  # the extended CBPE / DLE API has not landed
        estimates, error = None, f"{type(exc).__name__}: {exc}"
    estimate_s = time.perf_counter() - t
    return {
        "drift": flags,
        "estimates": estimates,
        "error": error,
        "seconds": {"drift": drift_s, "estimates": estimate_s},
    }


def monitor_50k(
    reference: pd.DataFrame, window: pd.DataFrame, job: dict[str, Any], size: int
) -> tuple[float | None, str]:
    """Seconds for the whole external monitor on ``window`` (labels dropped), and a note."""
    try:
        from regrow.monitor.external import monitor_predictions
    except ImportError as exc:
        return None, f"regrow.monitor.external is not available yet ({exc})"
    unlabelled = window.drop(columns=[job["target"]])
    t = time.perf_counter()
    result = monitor_predictions(
        reference,
        unlabelled,
        prediction=job["prediction"],
        score=job["scores"],
        target=job["target"],
        features=job["features"],
        chunking=Chunking(size=size),
        cost_matrix=job["cost_matrix"],
        seed=0,
    )
    result.to_dict()
    seconds = time.perf_counter() - t
    kinds = "drift, multivariate, estimates"
    return seconds, f"{len(unlabelled):,} rows, {len(result.chunks)} chunks ({kinds})"
