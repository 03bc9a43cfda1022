"""Evidently's side of ``benchmarks/monitoring_peers.py``, run in Evidently's own interpreter.

    python benchmarks/_peers_evidently.py JOBS.json OUT.json

For each dataset and setup of the jobs file, ``Report([DataDriftPreset()])`` compares every
chunk of ``chunk_size`` rows of the ``window`` frame with the whole ``fit`` frame, both cut to
the dataset's features. Evidently's defaults decide everything else: the test per column
(for over 1,000 reference rows: the normed Wasserstein distance for numeric columns and the
Jensen-Shannon distance for categorical ones, each with threshold 0.1; p-value tests for small
data) and which columns are numeric. A feature is flagged in a chunk when its ``ValueDrift``
says drift: a p-value below the threshold, or a distance at or above it.

Writes ``{"results": {dataset: {setup: {"drift": [{feature: flagged}], "seconds": s}}}}``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def flagged(result: Any) -> dict[str, bool]:
    """Per column of a ``DataDriftPreset`` result, whether Evidently found drift."""
    out: dict[str, bool] = {}
    for metric in result.dict()["metrics"]:
        name = str(metric.get("metric_name", ""))
        if not name.startswith("ValueDrift(column="):
            continue
        column = name.split("column=")[1].split(",")[0].rstrip(")")
        threshold = float(metric["config"].get("threshold") or 0.1)
        value = float(metric["value"])
        method = str(metric["config"].get("method") or "")
        p_value = "p_value" in method or "K-S" in method
        out[column] = value < threshold if p_value else value >= threshold
    return out


def run_setup(features: list[str], setup: dict[str, str], size: int) -> dict[str, Any]:
    """One report per chunk of the window against the whole fit frame."""
    fit = pd.read_parquet(setup["fit"], columns=features)
    window = pd.read_parquet(setup["window"], columns=features)
    bounds = [*range(0, len(window), size), len(window)]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < size / 2:
        del bounds[-2]  # a short last chunk joins the one before it, as regrow's Chunking does
    drift = []
    t = time.perf_counter()
    for lo, hi in itertools.pairwise(bounds):
        result = Report([DataDriftPreset()]).run(
            current_data=window.iloc[lo:hi], reference_data=fit
        )
        got = flagged(result)
        drift.append({f: bool(got.get(f, False)) for f in features})
    return {"drift": drift, "seconds": time.perf_counter() - t, "chunks": len(drift)}


def main(jobs_path: str, out_path: str) -> None:
    jobs = json.loads(Path(jobs_path).read_text())
    results: dict[str, dict[str, Any]] = {}
    for job in jobs["datasets"]:
        results[job["name"]] = {}
        for setup in job["setups"]:
            results[job["name"]][setup["name"]] = run_setup(
                job["features"], setup, jobs["chunk_size"]
            )
            print(f"evidently: {job['name']} {setup['name']} done", file=sys.stderr)
    Path(out_path).write_text(json.dumps({"results": results}))


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # deprecation chatter, not results
    main(sys.argv[1], sys.argv[2])
