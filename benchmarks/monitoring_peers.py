"""Monitoring without labels: regrow against NannyML and Evidently on NannyML's own datasets.

    python benchmarks/monitoring_peers.py [--quick] [--nannyml-python PATH]
        [--evidently-python PATH] [--data DIR]

Issue #16's figures. **Data**: NannyML's three bundled synthetic datasets (they ship inside the
package; nothing is downloaded): ``binary`` (work from home, 50,000 reference and 50,000
analysis rows), ``multiclass`` (credit card, 60,000 + 60,000) and ``car_price`` (regression,
60,000 + 60,000). The NannyML interpreter (``--nannyml-python``, default ``$NANNYML_PYTHON``)
writes them to Parquet, the analysis rows joined with their targets; every tool then reads
those same rows (``--data DIR`` reuses an earlier export). Peers run in their own interpreters
(``--evidently-python``, default ``$EVIDENTLY_PYTHON``); a peer not given, or one that fails,
is skipped (its figures null). Both peers need pandas < 3 in their interpreter (NannyML
0.13.1's DLE cannot reshape pandas 3 string arrays; Evidently 0.7 does not import with it), and
NannyML 0.13.1 imports ``statsmodels`` without declaring it.

**Setups**, each scored in chunks of 5,000 rows (all three tools see the same chunks):

- ``holdout``: fitted on the first half of the reference, run on its second half;
- ``analysis``: fitted on the whole reference, run on the analysis set.

**Undrifted and drifted chunks.** Each analysis set has one change point, after which several
features shift at once: row 25,000 of ``binary``, row 30,000 of ``multiclass`` and
``car_price`` (the benchmark measures it: every chunk before it is within 0.04 of the reference
on every feature by the effect of :mod:`_peers_scoring`, every chunk from it is at least 0.05
off on some feature, and it fails if that stops holding). Undrifted chunks are the holdout
chunks (the reference is one stationary sample: its halves differ by at most 0.02 per
feature) and the analysis chunks before the change point; the others are drifted.

**Drift ground truth**, per chunk x feature: *drifted* when the chunk is at or after the change
point and the feature's effect on the whole post-change data against the whole reference is
at least 0.05 (a shift of 5 % of a standard deviation, or 5 % of rows changing category);
*undrifted* in every undrifted chunk, and after the change point when that effect is below
0.02; *marginal* in between (only ``multiclass``'s ``is_customer``, 0.039), left out of recall
and false alarms and reported apart. Recall counts flagged drifted cells; false alarms count
flagged undrifted cells. Each tool runs with its defaults: regrow's ``DriftMonitor``,
NannyML's ``UnivariateDriftCalculator`` (Jensen-Shannon, its default thresholds), Evidently's
``DataDriftPreset`` per chunk against the whole fit frame.

**Estimates.** CBPE (classification: all nine metrics, the confusion matrix as shares of rows,
``business_value`` as the mean value per row with the cost matrices below) and DLE (regression,
six metrics). The error of a tool on a metric is the mean over every chunk of both setups of
``|estimate - realised|``, realised computed here NannyML's way (:mod:`_peers_scoring`; the
largest gap to NannyML's own realised values is printed as a check). Coverage is the share
of undrifted chunks whose realised value lies in the tool's band: regrow's is 95 % (±1.96
sampling errors), NannyML's ±3 sampling errors. ``binary``'s model predicts positive from a
score of 0.48 (read from its reference rows; regrow's CBPE is given that threshold).

Finally ``monitor_50k_s``: regrow's whole external monitor (drift, multivariate drift and
estimates, per chunk) on the 50,000-row ``binary`` analysis window without labels.
``--quick`` scores two chunks per side of each change point and two holdout chunks. Threads
are pinned as in ``benchmarks/drift.py``; a table, then one JSON line of the figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402  (thread pinning must precede the numpy import)
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _peers_regrow as regrow_side  # noqa: E402
import _peers_scoring as scoring  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _peers_report import report  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZE = 5_000
MULTICLASS = ["prepaid_card", "highstreet_card", "upmarket_card"]
JOBS: list[dict[str, Any]] = [
    {
        "name": "binary",
        "task": "classification",
        "features": [
            "distance_from_office",
            "salary_range",
            "gas_price_per_litre",
            "public_transportation_cost",
            "wfh_prev_workday",
            "workday",
            "tenure",
        ],
        "prediction": "y_pred",
        "scores": "y_pred_proba",
        "target": "work_home_actual",
        "cost_matrix": [[0.0, -2.0], [-10.0, 5.0]],  # [[TN, FP], [FN, TP]]
        "change_point": 25_000,
    },
    {
        "name": "multiclass",
        "task": "classification",
        "features": [
            "acq_channel",
            "app_behavioral_score",
            "requested_credit_limit",
            "app_channel",
            "credit_bureau_score",
            "stated_income",
            "is_customer",
        ],
        "prediction": "y_pred",
        "scores": {c: f"y_pred_proba_{c}" for c in MULTICLASS},
        "target": "y_true",
        "cost_matrix": [[5.0, -2.0, -4.0], [-1.0, 3.0, -2.0], [-3.0, -1.0, 8.0]],
        "change_point": 30_000,
    },
    {
        "name": "car_price",
        "task": "regression",
        "features": [
            "car_age",
            "km_driven",
            "price_new",
            "accident_count",
            "door_count",
            "fuel",
            "transmission",
        ],
        "prediction": "y_pred",
        "scores": None,
        "target": "y_true",
        "cost_matrix": None,
        "change_point": 30_000,
    },
]


def _peer(python: str, script: str, *args: str) -> None:
    """Run a peer's script in its interpreter; its chatter goes to stderr, not the table."""
    subprocess.run([python, str(HERE / script), *args], check=True, stdout=sys.stderr)


def load(data: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.read_parquet(data / f"{name}_reference.parquet"),
        pd.read_parquet(data / f"{name}_analysis.parquet"),
    )


def check_change_point(job: dict[str, Any], ref: pd.DataFrame, ana: pd.DataFrame) -> None:
    """Fail unless the data still show the change point the docstring states."""
    cp = job["change_point"]
    for lo in range(0, len(ana), SIZE):
        chunk = ana.iloc[lo : lo + SIZE]
        worst = max(scoring.effect(ref[f], chunk[f]) for f in job["features"])
        if (lo < cp and worst >= 0.04) or (lo >= cp and worst < scoring.DRIFTED_FROM):
            raise SystemExit(
                f"{job['name']}: analysis rows {lo}-{lo + len(chunk) - 1} have a largest "
                f"feature effect of {worst:.3f}, against a change point at row {cp}"
            )


def setups(
    job: dict[str, Any], ref: pd.DataFrame, ana: pd.DataFrame, quick: bool
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, int | None]]:
    """``{setup: (fit, window, analysis row of the window's first row or None)}``."""
    half = len(ref) // 2 // SIZE * SIZE
    cp = job["change_point"]
    first = cp - 2 * SIZE if quick else 0
    holdout = ref.iloc[half : half + 2 * SIZE] if quick else ref.iloc[half:]
    analysis = ana.iloc[first : cp + 2 * SIZE] if quick else ana
    return {"holdout": (ref.iloc[:half], holdout, None), "analysis": (ref, analysis, first)}


def truth(job: dict[str, Any], ref: pd.DataFrame, ana: pd.DataFrame) -> dict[str, str]:
    """Each feature's state after the change point: drifted, marginal or undrifted."""
    post = ana.iloc[job["change_point"] :]
    out = {}
    for f in job["features"]:
        e = scoring.effect(ref[f], post[f])
        out[f] = (
            "drifted"
            if e >= scoring.DRIFTED_FROM
            else "undrifted"
            if e < scoring.UNDRIFTED_BELOW
            else "marginal"
        )
    return out


def chunk_facts(
    job: dict[str, Any], window: pd.DataFrame, first: int | None, states: dict[str, str]
) -> list[dict[str, Any]]:
    """Per chunk: its rows, whether it is drifted, its truth per feature, its realised metrics."""
    out = []
    for chunk in regrow_side.split(window, SIZE):
        rows = window.iloc[chunk.index]
        drifted = first is not None and first + int(chunk.index[0]) >= job["change_point"]
        s: np.ndarray
        y, pred = rows[job["target"]].to_numpy(), rows[job["prediction"]].to_numpy()
        if job["task"] == "regression":
            realised = scoring.realised_regression(y.astype(float), pred.astype(float))
        elif isinstance(job["scores"], str):
            s = rows[job["scores"]].to_numpy(float)
            realised = scoring.realised_classification(y, pred, s, [0, 1], job["cost_matrix"])
        else:
            s = rows[list(job["scores"].values())].to_numpy(float)
            realised = scoring.realised_classification(
                y, pred, s, list(job["scores"]), job["cost_matrix"]
            )
        out.append(
            {
                "bounds": [int(chunk.index[0]), int(chunk.index[-1])],
                "drifted": drifted,
                "truth": dict(states) if drifted else dict.fromkeys(states, "undrifted"),
                "realised": realised,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two chunks per side per dataset")
    parser.add_argument("--nannyml-python", default=os.environ.get("NANNYML_PYTHON"))
    parser.add_argument("--evidently-python", default=os.environ.get("EVIDENTLY_PYTHON"))
    parser.add_argument("--data", type=Path, default=None, help="an earlier export to reuse")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = args.data or tmp / "data"
        if not (data / "binary_reference.parquet").exists():
            if not args.nannyml_python:
                raise SystemExit(
                    "the datasets ship inside NannyML: give --nannyml-python (or $NANNYML_PYTHON)"
                    " or --data with an earlier export"
                )
            _peer(args.nannyml_python, "_peers_nannyml.py", "export", str(data))
        facts: dict[str, dict[str, list[dict[str, Any]]]] = {}
        ours: dict[str, dict[str, Any]] = {}
        peer_jobs = []
        for job in JOBS:
            ref, ana = load(data, job["name"])
            check_change_point(job, ref, ana)
            states = truth(job, ref, ana)
            facts[job["name"]], ours[job["name"]] = {}, {}
            paths = []
            for name, (fit, window, first) in setups(job, ref, ana, args.quick).items():
                fit_path, window_path = (
                    tmp / f"{job['name']}_{name}_fit.parquet",
                    tmp / (f"{job['name']}_{name}_window.parquet"),
                )
                fit.reset_index(drop=True).to_parquet(fit_path)
                window.reset_index(drop=True).to_parquet(window_path)
                paths.append({"name": name, "fit": str(fit_path), "window": str(window_path)})
                window = window.reset_index(drop=True)
                facts[job["name"]][name] = chunk_facts(job, window, first, states)
                ours[job["name"]][name] = regrow_side.run_setup(job, fit, window, SIZE)
                print(f"regrow: {job['name']} {name} done", file=sys.stderr)
            peer_jobs.append({**job, "setups": paths})
        (tmp / "jobs.json").write_text(json.dumps({"chunk_size": SIZE, "datasets": peer_jobs}))
        peers: dict[str, Any] = {}
        for peer, python, script in (
            ("nannyml", args.nannyml_python, "_peers_nannyml.py"),
            ("evidently", args.evidently_python, "_peers_evidently.py"),
        ):
            if python:
                out = tmp / f"{peer}.json"
                extra = ["run"] if peer == "nannyml" else []
                try:
                    _peer(python, script, *extra, str(tmp / "jobs.json"), str(out))
                except subprocess.CalledProcessError as exc:  # its figures stay null
                    print(f"{peer} failed (exit {exc.returncode}); skipped", file=sys.stderr)
                    continue
                peers[peer] = json.loads(out.read_text())["results"]
        ref, ana = load(data, "binary")
        monitor_s, monitor_note = regrow_side.monitor_50k(ref, ana, JOBS[0], SIZE)
    report(facts, ours, peers, monitor_s, monitor_note, args.quick, SIZE)


if __name__ == "__main__":
    main()
