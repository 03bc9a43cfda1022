"""What planning costs on a large window, next to what a full retrain costs.

Scenario: a binary classifier of three members reading the same ten features, combined by
a mean of their probabilities -- LogisticRegression, HistGradientBoosting (100 rounds) and a
RandomForest of 200 trees -- trained on ``--rows`` rows (500k). A labelled window of
``--window`` rows (50k) arrives in which one feature's distribution shifted and the effect
of another feature changed (which ones rotates with the seed), so the monitor finds drift,
attribution runs, and the probes have something to find. In one run, threads pinned to 1 and
CPU time measured with ``time.process_time``:

- **full**: training every component on the ``--rows`` rows (the version the plans start
  from: the cost of a full retrain on that data);
- **plan**: ``Workspace.plan`` on the window (monitor, attribution, probes, costs), one
  window per seed, the median taken;
- **monitor**: ``Workspace.monitor`` on a window of ``--monitor-rows`` rows (6k) of the same
  kind, the median over seeds.

Run: ``python benchmarks/planning.py [--rows 500000] [--window 50000] [--seeds 3]``. Prints a
table, the time breakdown of each plan, and ends with one JSON line
(``plan_cpu_s``, ``full_cpu_s``, ``overhead_ratio``, ``monitor_cpu_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from regrow import Ensemble, Member, System, Workspace

FEATURES = [f"x{i}" for i in range(10)]


def make(
    rows: int, seed: int, *, shifted: str | None = None, changed: str | None = None
) -> pd.DataFrame:
    """Rows of the scenario; ``shifted`` moves a feature's mean, ``changed`` flips its effect."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    if shifted is not None:
        df[shifted] = df[shifted] + 0.6
    effect = dict.fromkeys(FEATURES, 0.0)
    effect.update(x0=1.0, x1=-0.8, x2=0.6, x5=0.5, x6=-0.4)
    if changed is not None:
        effect[changed] = -1.5 * (effect[changed] or 0.8)
    logit = sum(effect[f] * df[f] for f in FEATURES) + 0.5 * df.x3 * df.x4 + np.sin(2 * df.x7)
    df["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def build_system() -> System:
    forest = RandomForestClassifier(
        n_estimators=200, min_samples_leaf=50, max_samples=0.2, n_jobs=1, random_state=0
    )
    return System(
        "credit",
        target="y",
        task="classification",
        components=[
            Member("lr", LogisticRegression(max_iter=500), inputs=FEATURES),
            Member("hgb", HistGradientBoostingClassifier(max_iter=100), inputs=FEATURES),
            Member("rf", forest, inputs=FEATURES),
            Ensemble("mean", weights={"lr": 1.0, "hgb": 1.0, "rf": 1.0}),
        ],
    )


def cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--window", type=int, default=50_000)
    parser.add_argument("--monitor-rows", type=int, default=6_000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    plans: list[dict[str, Any]] = []
    monitors: list[float] = []
    with (
        threadpool_limits(1),
        tempfile.TemporaryDirectory() as home,
        Workspace.init(home) as ws,
    ):
        reference = ws.snapshot(make(args.rows, 1), name="history")
        v1, full_cpu = cpu(lambda: ws.train(build_system(), reference))
        ref = v1.version.ref
        print(f"full training on {args.rows:,} rows: {full_cpu:.1f} CPU s", flush=True)
        for seed in range(args.seeds):
            shifted, changed = FEATURES[seed % 3], FEATURES[5 + seed % 3]
            window = ws.snapshot(
                make(args.window, 100 + seed, shifted=shifted, changed=changed),
                name=f"window-{seed}",
            )
            plan, plan_cpu = cpu(lambda window=window: ws.plan(ref, window))  # type: ignore[misc]
            timings = dict(getattr(plan, "timings", None) or {})
            small = ws.snapshot(
                make(args.monitor_rows, 200 + seed, shifted=shifted, changed=changed),
                name=f"small-{seed}",
            )
            _, monitor_cpu = cpu(lambda small=small: ws.monitor(ref, small))  # type: ignore[misc]
            monitors.append(monitor_cpu)
            row = {
                "seed": seed,
                "shifted": shifted,
                "changed": changed,
                "actions": [a.describe() for a in plan.actions],
                "estimated_cpu": float(plan.cost.get("estimated_cpu_seconds") or 0.0),
                "diagnostics_cpu": float(plan.cost.get("diagnostics_cpu_seconds") or 0.0),
                "plan_cpu": plan_cpu,
                "timings": timings,
                "sample": next((r for r in plan.rationale if "probes on" in r), ""),
            }
            plans.append(row)
            print(
                f"seed {seed}: shifted {shifted}, changed {changed}: plan {plan_cpu:.2f} CPU s "
                f"(diagnostics {row['diagnostics_cpu']:.2f}), monitor on "
                f"{args.monitor_rows:,} rows {monitor_cpu:.2f} CPU s\n"
                f"  actions {row['actions']} (estimated {row['estimated_cpu']:.1f} CPU s)\n"
                + (
                    "  time: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()) + "\n"
                    if timings
                    else ""
                )
                + (f"  {row['sample']}\n" if row["sample"] else ""),
                end="",
                flush=True,
            )
    plan_cpu = statistics.median(p["plan_cpu"] for p in plans)
    print(
        "\n| seed | window | plan CPU s | monitor CPU s (6k rows) | actions |\n"
        "| --- | --- | --- | --- | --- |"
    )
    for p, m in zip(plans, monitors, strict=True):
        print(f"| {p['seed']} | {args.window:,} | {p['plan_cpu']:.2f} | {m:.2f} | "
              f"{', '.join(p['actions']) or '(none)'} |")  # fmt: skip
    print(
        f"\nfull training on {args.rows:,} rows: {full_cpu:.1f} CPU s; median plan "
        f"{plan_cpu:.2f} CPU s = {plan_cpu / full_cpu:.1%} of it",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "plan_cpu_s": round(plan_cpu, 3),
                "full_cpu_s": round(full_cpu, 3),
                "overhead_ratio": round(plan_cpu / full_cpu, 4),
                "monitor_cpu_s": round(statistics.median(monitors), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
