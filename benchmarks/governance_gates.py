"""Gates at scale: every gate on 100,000 evaluation rows x 5 slices, 1,000 paired resamples.

    python benchmarks/governance_gates.py [--rows 100000] [--slices 5] [--resamples 1000]
                                          [--repeats 5]

Scenario (issue #13, goal <= 2 s): a churn-like binary classifier (a scaler, two logistic
regression members, a mean ensemble) as the candidate and a weaker baseline (one feature
fewer), trained in memory on 20,000 rows; evaluation rows with ``slices`` slices and a
sensitive column; 20,000 held-out rows of the reference period; artifacts in an in-memory
store; profiles computed beforehand (a workspace stores them with each snapshot).

Timed: :func:`regrow.evaluate.evaluation.judge` with all ten built-in gates on a fresh
context whose scores are given (the ``predict`` step of an evaluation comes before it and is
timed apart, as ``predict_s``): drawing the resamples, the metric table for the whole data and
every slice with intervals, then improvement, slice_regression, stability (which scores the
held-out rows), fairness, data_quality, calibration, latency (which times predictions),
size, coverage and signature. BLAS and OpenMP are pinned to one thread; regrow's resample
chunks run on both cores. The median of ``repeats`` runs; a table, then one JSON line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402  (thread pinning must precede the numpy import)
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from regrow import Ensemble, Member, System, Transform  # noqa: E402
from regrow.catalog.store import open_store  # noqa: E402
from regrow.components.fitted import FittedComponent, fit_component  # noqa: E402
from regrow.evaluate.evaluation import judge  # noqa: E402
from regrow.evaluate.gates import GateContext, HeldOut, build, scores_of  # noqa: E402
from regrow.evaluate.metrics import METRICS  # noqa: E402
from regrow.model import FittedSystem  # noqa: E402
from regrow.monitor.profile import Profile  # noqa: E402

#: Every built-in gate, with thresholds a sound candidate meets.
CHECKS: dict[str, dict[str, Any]] = {
    "improvement": {"min": 0.0},
    "slice_regression": {"max": 0.02},
    "stability": {"margin": 0.01},
    "fairness": {"sensitive": "group", "max_difference": 0.3, "max_increase": 0.05},
    "data_quality": {},
    "calibration": {"max_ece": 0.05},
    "latency": {"max_seconds": 0.5, "runs": 3, "rows": 2000},
    "size": {"max_bytes": 10_000_000},
    "coverage": {},
    "signature": {"allow": ["inputs"]},
}


def rows(n: int, seed: int, slices: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    logit = 1.0 * x[:, 0] + 0.7 * x[:, 1] - 0.5 * x[:, 2] + 0.3 * x[:, 3] + 0.2 * (group == "b")
    return pd.DataFrame({
        "f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "f3": x[:, 3], "group": group,
        "segment": rng.integers(0, slices, n).astype(str),
        "y": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
    })  # fmt: skip


def system(name: str, inputs: list[str]) -> System:
    return System(name, target="y", components=[
        Transform("scaled", StandardScaler(), inputs=inputs),
        Member("lr", LogisticRegression(), inputs=["scaled"]),
        Member("lr_strong", LogisticRegression(C=0.05), inputs=["scaled"]),
        Ensemble("mean", weights={"lr": 1, "lr_strong": 1}),
    ])  # fmt: skip


def fit(spec: System, frame: pd.DataFrame, ref: str, store: Any) -> FittedSystem:
    from regrow import _pickling

    fitted: dict[str, FittedComponent] = {}
    for name in spec.order():
        upstream = {n: c for n, c in fitted.items() if n in spec.upstream(name)}
        fitted[name] = fit_component(spec[name], frame, target="y", upstream=upstream, seed=0)
    keys = {n: store.put(_pickling.dumps(c)) for n, c in fitted.items()}
    return FittedSystem(spec.spec(), fitted, ref=ref, artifacts=keys)


def setup(n_rows: int, n_slices: int) -> dict[str, Any]:
    store = open_store("memory://benchmark-governance-gates")
    train = rows(20_000, 0, n_slices)
    candidate = fit(system("churn", ["f0", "f1", "f2", "f3"]), train, "churn:v2", store)
    baseline = fit(system("churn", ["f0", "f1", "f2"]), train, "churn:v1", store)
    evaluation = rows(n_rows, 1, n_slices)
    started = time.perf_counter()
    scores = (scores_of(candidate, evaluation), scores_of(baseline, evaluation))
    predict_s = time.perf_counter() - started
    trained = Profile.of(train)
    return {
        "store": store, "candidate": candidate, "baseline": baseline, "evaluation": evaluation,
        "scores": scores, "predict_s": predict_s, "held_out": rows(20_000, 2, n_slices),
        "trained": trained, "evaluation_profile": Profile.of(evaluation),
        "slices": {f"segment {k}": f"segment == '{k}'" for k in range(n_slices)},
    }  # fmt: skip


def context(s: dict[str, Any], n_boot: int) -> GateContext:
    columns = s["trained"].columns
    held = HeldOut(s["held_out"], "20,000 held-out rows of the reference period")
    return GateContext(
        candidate=s["candidate"], baseline=s["baseline"], frame=s["evaluation"],
        metric=METRICS["roc_auc"], candidate_scores=s["scores"][0],
        baseline_scores=s["scores"][1], slices=s["slices"], n_boot=n_boot, seed=0,
        candidate_reference={c: columns[c] for c in ("f0", "f1", "f2", "f3")},
        baseline_reference={c: columns[c] for c in ("f0", "f1", "f2")},
        training={"train": s["trained"]}, evaluation_profile=s["evaluation_profile"],
        reference_rows=lambda name: held, store=s["store"],
    )  # fmt: skip


def measure_gates(
    rows: int = 100_000, slices: int = 5, n_boot: int = 1000, repeats: int = 5
) -> float:
    """Median seconds of every built-in gate on ``rows`` rows x ``slices`` slices."""
    return _measure(setup(rows, slices), n_boot, repeats)[0]


def _measure(s: dict[str, Any], n_boot: int, repeats: int) -> tuple[float, Any, float]:
    """Median wall seconds, the last result, median CPU seconds (all threads)."""
    gates = build(CHECKS)
    times, cpu, result = [], [], None
    for _ in range(repeats):
        ctx = context(s, n_boot)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = judge(ctx, gates)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return statistics.median(times), result, statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--slices", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    s = setup(args.rows, args.slices)
    seconds, result, cpu = _measure(s, args.resamples, args.repeats)
    print(f"{args.rows:,} rows x {args.slices} slices, {args.resamples:,} resamples, "
          f"{len(CHECKS)} gates: {seconds:.3f} s (median of {args.repeats}; {cpu:.3f} CPU s on "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); predicting both "
          f"versions beforehand: {s['predict_s']:.3f} s")  # fmt: skip
    print(f"{'gate':18s} {'status':13s} why")
    for g in result.gates:
        print(f"{g.name:18s} {g.status:13s} {g.why[:110]}")
    print(f"verdict: {result.verdict}")
    figures = {"gates_s": round(seconds, 3), "gates_cpu_s": round(cpu, 3),
               "predict_s": round(s["predict_s"], 3),
               "rows": args.rows, "slices": args.slices, "resamples": args.resamples}  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
