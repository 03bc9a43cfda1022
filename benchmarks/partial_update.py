"""Partial update vs full retrain: does the planner recover the accuracy for a fraction of the CPU?

Scenario: a regression target that is the sum of the effects of three feature groups, one
LightGBM member per group plus a stacked ensemble. 20k old rows train v1. Then a few thousand
new rows arrive in which ONE group's effect changes sign and shape (which one rotates with the
seed); a held-out test set comes from the new regime. In one run, threads pinned to 1 and CPU
time measured with ``time.process_time``:

- **stale**: v1 as is;
- **regrow**: ``Workspace.plan`` on the labelled window (monitor + diagnostics), then
  ``Workspace.run_plan`` -- whatever the planner chooses, all of its CPU counted;
- **wrong member**: refit a member whose group did not change (and the stack), on the window;
- **full retrain**: every component retrained on the same data regrow had (old + new rows).

Plus two control windows: new rows from the OLD regime (the plan must be empty), and new rows
in which every group changed (the plan must escalate to a full retrain).

Each seed also prints where regrow's time went: the plan's and the run's ``timings`` (wall
seconds per step, from :mod:`regrow.progress`), and the CPU the members' own LightGBM fits and
predictions took inside the plan and the run (``member_cpu``: the members' predictions on the
window, the refit, the copy the stack learns from and its predictions). That part is what
any partial update that keeps the model's meaning pays; ``member_share`` is it over the full
retrain's CPU, the floor under ``cost_ratio``.

The planner's modules are imported (and the shipped policy parsed) before the first seed, as
the trainings before each timed step warm the training path: a process pays that once.

Run: ``python benchmarks/partial_update.py [--seeds 3] [--old 20000] [--new 4000]``. Ends with
one JSON line (medians over the seeds; ``plan_cpu_s`` and ``run_cpu_s`` split regrow's CPU).
"""

from __future__ import annotations

import argparse
import gc
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
from lightgbm import LGBMRegressor
from threadpoolctl import threadpool_limits

from regrow import Ensemble, Member, System, Workspace

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1", "b2"], "gamma": ["c1", "c2", "c3"]}


def effects(df: pd.DataFrame, changed: set[str]) -> np.ndarray:
    """The target's mean: one effect per group; groups in ``changed`` flip sign and shape."""
    a = (
        -1.5 * np.tanh(2 * df.a1) + 0.8 * np.cos(2 * df.a2)
        if "alpha" in changed
        else 1.5 * np.sin(2 * df.a1) + 0.5 * df.a2**2
    )
    b = (
        -1.2 * np.abs(df.b1) + 0.9 * np.sin(3 * df.b2)
        if "beta" in changed
        else 1.2 * df.b1 * (df.b1 > 0) - 0.7 * df.b2
    )
    c = (
        -0.8 * df.c1 * df.c2 - 1.0 * np.cos(2 * df.c3)
        if "gamma" in changed
        else 0.8 * df.c1 * df.c2 + 0.6 * np.sign(df.c3)
    )
    return np.asarray(a + b + c)


def make(rows: int, seed: int, changed: set[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = [c for g in GROUPS.values() for c in g]
    df = pd.DataFrame(rng.normal(size=(rows, len(cols))), columns=cols)
    df["y"] = effects(df, changed) + 0.3 * rng.normal(size=rows)
    return df


MEMBER_TREES = 300


def build_system() -> System:
    def gbdt() -> LGBMRegressor:
        return LGBMRegressor(n_estimators=MEMBER_TREES, learning_rate=0.05, num_leaves=31, n_jobs=1,
                             verbose=-1)  # fmt: skip

    return System(
        "effects",
        target="y",
        task="regression",
        components=[
            *(Member(g, gbdt(), inputs=cols) for g, cols in GROUPS.items()),
            Ensemble("stack", weights=dict.fromkeys(GROUPS, 1.0), method="stack"),
        ],
    )


class MemberClock:
    """CPU seconds spent in ``LGBMRegressor.fit`` and ``.predict`` of the members (and their
    copies the stack learns from: estimators with the members' ``MEMBER_TREES`` trees) while
    ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = 0.0
        fit, predict = LGBMRegressor.fit, LGBMRegressor.predict

        def timed(method: Callable[..., Any]) -> Callable[..., Any]:
            def run(est: Any, *args: Any, **kwargs: Any) -> Any:
                if not self.on or est.n_estimators != MEMBER_TREES:
                    return method(est, *args, **kwargs)
                t0 = time.process_time()
                try:
                    return method(est, *args, **kwargs)
                finally:
                    self.seconds += time.process_time() - t0

            return run

        LGBMRegressor.fit = timed(fit)  # type: ignore[method-assign]
        LGBMRegressor.predict = timed(predict)  # type: ignore[method-assign]


CLOCK = MemberClock()


def cpu(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the CPU seconds it took, from a collected heap: a full collection of what
    the benchmark left behind (its frames, the trainings before) must not land in one
    side's timing by chance. It costs ~0.13 s here, half of a plan."""
    gc.collect()
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def mse(ws: Workspace, ref: str, test: pd.DataFrame) -> float:
    return float(np.mean((ws.load(ref).predict(test) - test["y"].to_numpy()) ** 2))


def warm_up() -> None:
    """Pay what a process pays once before its first plan: importing the planner's and the
    runner's modules and parsing the shipped policy (about 0.4 CPU s here). The trainings
    before the timed steps warm the training path the same way, so with one seed (``--seeds
    1``) the plan is not charged for the interpreter's imports."""
    import importlib

    from regrow.plan.policy import Policy

    for module in ("regrow.planning", "regrow.plan_runs"):
        importlib.import_module(module)
    Policy.default()


def one_seed(seed: int, old_rows: int, new_rows: int) -> dict[str, Any]:
    names = list(GROUPS)
    changed = names[seed % 3]
    wrong = names[(seed + 1) % 3]
    old = make(old_rows, 1000 + seed, set())
    new = make(new_rows, 2000 + seed, {changed})
    test = make(4000, 3000 + seed, {changed})
    system = build_system()
    out: dict[str, Any] = {"seed": seed, "changed": changed}
    with tempfile.TemporaryDirectory() as home, Workspace.init(home) as ws:
        ref = ws.snapshot(old, name="old")
        v1 = ws.train(system, ref)
        window = ws.snapshot(new, name="new")
        out["stale"] = mse(ws, v1.version.ref, test)

        CLOCK.on, CLOCK.seconds = True, 0.0
        plan, plan_cpu = cpu(lambda: ws.plan(v1.version.ref, window))
        ran, run_cpu = cpu(lambda: ws.run_plan(plan, approve=True))
        CLOCK.on = False
        out["member_cpu"] = CLOCK.seconds
        out["plan"] = [a.describe() for a in plan.actions]
        out["regrow"] = mse(ws, ran.result.version.ref, test)
        out["regrow_cpu"] = plan_cpu + run_cpu
        out["plan_cpu"], out["run_cpu"] = plan_cpu, run_cpu
        out["estimated_cpu"] = ran.estimated_cpu_seconds
        out["actual_fit_cpu"] = ran.actual_cpu_seconds
        out["timings"] = {
            **{f"plan {k}": v for k, v in getattr(plan, "timings", {}).items()},
            **{f"run {k}": v for k, v in getattr(ran, "timings", {}).items()},
        }
        refit = {a.component for a in plan.actions if a.kind in ("refit", "continue", "leaf-refit")}
        out["right_member"] = refit == {changed}

        wrong_run = ws.update(v1.version.ref, window, components=[wrong, "stack"], system=system)
        out["wrong"] = mse(ws, wrong_run.version.ref, test)

        both = ws.snapshot(pd.concat([old, new], ignore_index=True), name="old-new")
        full, full_cpu = cpu(lambda: ws.train(system, both, seed=1))
        out["full"] = mse(ws, full.version.ref, test)
        out["full_cpu"] = full_cpu

        quiet = ws.snapshot(make(new_rows, 4000 + seed, set()), name="quiet")
        quiet_plan = ws.plan(v1.version.ref, quiet)
        out["no_drift_actions"] = [a.describe() for a in quiet_plan.actions]
        broad = ws.snapshot(make(new_rows, 5000 + seed, set(names)), name="broad")
        broad_plan = ws.plan(v1.version.ref, broad)
        out["broad_actions"] = [a.describe() for a in broad_plan.actions]
        out["broad_escalated"] = broad_plan.escalated
        out["broad_why"] = broad_plan.actions[0].reason if broad_plan.actions else ""
    out["recovery"] = (out["stale"] - out["regrow"]) / (out["stale"] - out["full"])
    out["cost_ratio"] = out["regrow_cpu"] / out["full_cpu"]
    out["member_share"] = out["member_cpu"] / out["full_cpu"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--old", type=int, default=20_000)
    parser.add_argument("--new", type=int, default=4_000)
    args = parser.parse_args()
    warm_up()
    results = []
    with threadpool_limits(1):
        for seed in range(args.seeds):
            r = one_seed(seed, args.old, args.new)
            results.append(r)
            print(
                f"seed {seed}: changed={r['changed']:<6} plan={r['plan']}\n"
                f"  MSE stale {r['stale']:.4f}  regrow {r['regrow']:.4f}  wrong {r['wrong']:.4f}"
                f"  full {r['full']:.4f}  recovery {r['recovery']:.3f}\n"
                f"  CPU regrow {r['regrow_cpu']:.2f}s (plan {r['plan_cpu']:.2f} + run "
                f"{r['run_cpu']:.2f}; fits estimated {r['estimated_cpu']:.2f}, measured "
                f"{r['actual_fit_cpu']:.2f})  full {r['full_cpu']:.2f}s  ratio "
                f"{r['cost_ratio']:.3f}\n"
                f"  members' own fits and predictions in plan + run: {r['member_cpu']:.2f} CPU s "
                f"({r['member_share']:.3f} of the full retrain)\n"
                f"  time: {', '.join(f'{k} {v:.2f}' for k, v in r['timings'].items())}\n"
                f"  no-drift plan {r['no_drift_actions']}  broad plan {r['broad_actions']} "
                f"({r['broad_why'][:90]})",
                flush=True,
            )
    summary = {
        "recovery_ratio": round(statistics.median(r["recovery"] for r in results), 3),
        "cost_ratio": round(statistics.median(r["cost_ratio"] for r in results), 3),
        "plan_cpu_s": round(statistics.median(r["plan_cpu"] for r in results), 3),
        "run_cpu_s": round(statistics.median(r["run_cpu"] for r in results), 3),
        "full_cpu_s": round(statistics.median(r["full_cpu"] for r in results), 3),
        "member_cpu_s": round(statistics.median(r["member_cpu"] for r in results), 3),
        "member_share": round(statistics.median(r["member_share"] for r in results), 3),
        "right_member": f"{sum(r['right_member'] for r in results)}/{len(results)}",
        "no_drift_empty": all(not r["no_drift_actions"] for r in results),
        "broad_escalates": all(r["broad_escalated"] for r in results),
    }
    print(
        "min recovery", round(min(r["recovery"] for r in results), 3),
        "max cost ratio", round(max(r["cost_ratio"] for r in results), 3),
        file=sys.stderr,
    )  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
