"""NannyML's side of ``benchmarks/monitoring_peers.py``, run in NannyML's own interpreter.

    python benchmarks/_peers_nannyml.py export DIR
    python benchmarks/_peers_nannyml.py run JOBS.json OUT.json

- ``export``: writes NannyML's three bundled datasets (they ship inside the package; nothing is
  downloaded) to ``DIR/<name>_reference.parquet`` and ``DIR/<name>_analysis.parquet``, the
  analysis rows joined with their targets on ``id``, so every tool reads the same rows.
- ``run``: for each dataset and setup of the jobs file (written by the benchmark), fits on the
  ``fit`` frame and runs on the ``window`` frame in chunks of ``chunk_size`` rows, with
  NannyML's defaults except where a comparison needs a choice (said in place):

  - classification: ``CBPE`` with every metric it supports, the confusion matrix normalised by
    all rows (``normalize_confusion_matrix="all"``, as regrow reports shares of rows) and the
    business value as NannyML's default total per chunk, divided here by the chunk's rows
    (estimate, band and realised alike) to give regrow's mean value per row. NannyML's
    ``normalize_business_value="per_prediction"`` is not that: it divides each confusion
    column by its predicted-class count, a sum of per-class ratios;
  - regression: ``DLE`` with its six metrics (default LightGBM, no tuning);
  - every dataset: ``UnivariateDriftCalculator`` on the features with its default methods
    (Jensen-Shannon for continuous and categorical columns) and default thresholds.

  Per chunk it writes the estimate, its confidence band (NannyML's ±3 sampling errors, clipped
  to the metric's range), NannyML's own realised value, and per feature whether the drift
  calculator raised an alert; and the seconds each calculator took (fit + run).

NannyML's usage telemetry is switched off (``NML_DISABLE_USAGE_LOGGING``): the machine is
offline and its retries would be timed otherwise.
"""

from __future__ import annotations

import os

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import nannyml as nml
import pandas as pd

DATASETS = {
    "binary": "load_synthetic_binary_classification_dataset",
    "multiclass": "load_synthetic_multiclass_classification_dataset",
    "car_price": "load_synthetic_car_price_dataset",
}
CBPE_METRICS = [
    "roc_auc",
    "f1",
    "precision",
    "recall",
    "specificity",
    "accuracy",
    "confusion_matrix",
    "business_value",
    "average_precision",
]
DLE_METRICS = ["mae", "mape", "mse", "msle", "rmse", "rmsle"]
_FIELDS = {
    "value": "value",
    "low": "lower_confidence_boundary",
    "high": "upper_confidence_boundary",
    "realised": "realized",
    "sampling_error": "sampling_error",
}


def export(folder: str) -> None:
    """Write the bundled datasets to ``folder`` as Parquet (analysis rows with targets)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, loader in DATASETS.items():
        reference, analysis, targets = getattr(nml, loader)()
        analysis = analysis.merge(targets, on="id", how="left", validate="one_to_one")
        reference.to_parquet(out / f"{name}_reference.parquet")
        analysis.to_parquet(out / f"{name}_analysis.parquet")


def _number(value: Any) -> float | None:
    number = float(value)
    return None if number != number else number  # NaN -> None


def _estimates(result: Any) -> list[dict[str, dict[str, float | None]]]:
    """Per analysis chunk, ``{metric: {value, low, high, realised, sampling_error}}``."""
    frame = result.filter(period="analysis").to_df()
    metrics = sorted({m for m, _ in frame.columns if m != "chunk"}, key=str)
    out = []
    for _, row in frame.iterrows():
        chunk = {m: {k: _number(row[(m, f)]) for k, f in _FIELDS.items()} for m in metrics}
        if "business_value" in chunk:  # the total per chunk, as a mean per row
            rows = int(row[("chunk", "end_index")]) - int(row[("chunk", "start_index")]) + 1
            chunk["business_value"] = {
                k: None if v is None else v / rows for k, v in chunk["business_value"].items()
            }
        out.append(chunk)
    return out


def _drift(result: Any, features: list[str]) -> list[dict[str, bool]]:
    """Per analysis chunk, whether NannyML raised an alert for each feature."""
    frame = result.filter(period="analysis").to_df()
    methods = {f: [c for c in frame.columns if c[0] == f and c[-1] == "alert"] for f in features}
    return [
        {f: bool(any(bool(row[c]) for c in methods[f])) for f in features}
        for _, row in frame.iterrows()
    ]


def _bounds(result: Any) -> list[list[int]]:
    frame = result.filter(period="analysis").to_df()
    return [
        [int(s), int(e)]
        for s, e in zip(frame[("chunk", "start_index")], frame[("chunk", "end_index")], strict=True)
    ]


def _sorted_cost(scores: str | dict[str, str], cost: list[list[float]]) -> list[list[float]]:
    """The cost matrix in NannyML's class order: a multiclass CBPE sorts its classes by name
    (the jobs give them in score-column order)."""
    if isinstance(scores, str):
        return cost
    given = list(scores)
    at = [given.index(c) for c in sorted(given)]
    return [[cost[i][j] for j in at] for i in at]


def run_setup(job: dict[str, Any], setup: dict[str, str], size: int) -> dict[str, Any]:
    """Every NannyML calculator on one (fit, window) pair of a dataset."""
    fit, window = pd.read_parquet(setup["fit"]), pd.read_parquet(setup["window"])
    features: list[str] = job["features"]
    seconds: dict[str, float] = {}
    out: dict[str, Any] = {}
    t = time.perf_counter()
    if job["task"] == "regression":
        estimator: Any = nml.DLE(
            feature_column_names=features,
            y_pred=job["prediction"],
            y_true=job["target"],
            metrics=DLE_METRICS,
            chunk_size=size,
        )
        kind = "dle"
    else:
        binary = isinstance(job["scores"], str)
        estimator = nml.CBPE(
            metrics=CBPE_METRICS,
            y_pred_proba=job["scores"],
            y_pred=job["prediction"],
            y_true=job["target"],
            problem_type="classification_binary" if binary else "classification_multiclass",
            chunk_size=size,
            normalize_confusion_matrix="all",
            business_value_matrix=_sorted_cost(job["scores"], job["cost_matrix"]),
        )
        kind = "cbpe"
    result = estimator.fit(fit).estimate(window)
    seconds[kind] = time.perf_counter() - t
    out["estimates"] = _estimates(result)
    out["bounds"] = _bounds(result)
    t = time.perf_counter()
    drift = nml.UnivariateDriftCalculator(column_names=features, chunk_size=size)
    drift_result = drift.fit(fit).calculate(window)
    seconds["drift"] = time.perf_counter() - t
    out["drift"] = _drift(drift_result, features)
    out["seconds"] = seconds
    return out


def run(jobs_path: str, out_path: str) -> None:
    """Run every job of the jobs file and write the results as JSON."""
    jobs = json.loads(Path(jobs_path).read_text())
    results: dict[str, dict[str, Any]] = {}
    for job in jobs["datasets"]:
        results[job["name"]] = {}
        for setup in job["setups"]:
            results[job["name"]][setup["name"]] = run_setup(job, setup, jobs["chunk_size"])
            print(f"nannyml: {job['name']} {setup['name']} done", file=sys.stderr)
    Path(out_path).write_text(json.dumps({"version": nml.__version__, "results": results}))


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # NannyML and pandas 3 deprecation chatter, not results
    if sys.argv[1] == "export":
        export(sys.argv[2])
    else:
        run(sys.argv[2], sys.argv[3])
