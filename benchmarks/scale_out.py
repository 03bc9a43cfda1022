"""Scale-out figures (issue #3): Ray overhead, distributed profiles, concurrent runs on PostgreSQL.

    python benchmarks/scale_out.py [--rows 10000000] [--repeats 3]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]

1. The same plan (16 independent members + an ensemble, scikit-learn members on a small
   table) on the local backend (in-process) and on Ray with 1 and 2 worker processes (a
   private local instance; start-up and a warm-up run excluded), and (Ray wall time with 1
   worker - local wall time) / tasks. Because Ray pipelines (the driver records one result
   while a worker fits the next) that difference can be negative, so the overhead per task
   reported (goal <= 50 ms) is the conservative one: the round trip of a near-empty task run
   alone (submit, run, result back) on Ray minus the same on the local backend.
2. The profile of a ``--rows`` x 20-column window (18 numeric, 2 categorical columns) in 8
   partitions on Ray (2 CPUs), merged, against the single-process profile: every exact part
   equal, every sketch within its stated rank error, and the drift decisions of a
   DriftMonitor on a window with 6 drifted columns the same for every column.
3. Two runs started at once, in two processes, training the same fingerprints against a
   PostgreSQL catalog: both succeed; duplicate component versions (rows per fingerprint
   above one) and duplicate system versions (same manifest and spec) are counted.

Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.catalog.db import create_engine_for
from regrow.catalog.store import open_store
from regrow.monitor.distributed import compare_profiles, profile_partitions
from regrow.monitor.drift_monitor import DriftMonitor
from regrow.monitor.profile import Profile
from regrow.run.backends import ExecutorBackend, LocalBackend
from regrow.run.ray_backend import RayBackend
from regrow.run.tasks import TaskSpec
from regrow.testing import create_postgres_schema, drop_postgres_schema

MEMBERS = 16
PG_URL = os.environ.get("REGROW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def plan_system() -> System:
    """16 independent members (2 columns each) combined by an ensemble: 17 tasks."""
    members = [
        Member(f"m{i:02d}", LogisticRegression(max_iter=200), inputs=[f"x{i}", f"x{(i + 1) % 16}"])
        for i in range(MEMBERS)
    ]
    weights = {m.name: 1.0 for m in members}
    return System("wide", target="y", components=[*members, Ensemble("ensemble", weights=weights)])


def plan_data(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, MEMBERS))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(MEMBERS)])
    frame["y"] = (x[:, :4].sum(axis=1) + rng.normal(size=rows) > 0).astype(int)
    return frame


def time_plan(backend: ExecutorBackend, repeats: int) -> tuple[float, int]:
    """Median wall time of training the plan with fresh fingerprints (a new seed each time)."""
    with tempfile.TemporaryDirectory() as home, Workspace.init(home) as ws:
        snap = ws.snapshot(plan_data(), name="wide")
        system = plan_system()
        ws.train(system, snap, seed=10_000, backend=backend)  # warm-up: workers, imports
        times = []
        for seed in range(repeats):
            started = time.perf_counter()
            result = ws.train(system, snap, seed=seed, backend=backend)
            times.append(time.perf_counter() - started)
            assert len(result.trained) == MEMBERS + 1
    return statistics.median(times), MEMBERS + 1


def round_trip(backend: ExecutorBackend, n: int = 40) -> float:
    """Median seconds of one near-empty task run alone (submit, run, result back)."""
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(folder)
        times = []
        for i in range(n + 5):
            component = Ensemble(f"e{i}", weights={"a": 1.0})
            task = TaskSpec(component.name, component, "y", i, store.url, None, ())
            started = time.perf_counter()
            ((_, outcome),) = list(backend.run([task]))
            times.append(time.perf_counter() - started)
            assert not isinstance(outcome, BaseException), outcome
    return statistics.median(times[5:])  # the first ones start workers


def bench_plan(repeats: int) -> dict[str, float]:
    import ray

    local, tasks = time_plan(LocalBackend(), repeats)
    out = {"local": local, "trip_local": round_trip(LocalBackend())}
    for workers in (1, 2):
        backend = RayBackend(
            workers=workers,
            init_options={"object_store_memory": 100 * 1024**2, "log_to_driver": False},
        )
        started = time.perf_counter()
        backend.connect()
        out[f"ray_start_{workers}"] = time.perf_counter() - started
        try:
            out[f"ray_{workers}"], _ = time_plan(backend, repeats)
            if workers == 1:
                out["trip_ray"] = round_trip(backend)
        finally:
            backend.close()
        assert not ray.is_initialized()
    out["tasks"] = tasks
    out["plan_overhead_ms"] = (out["ray_1"] - local) / tasks * 1000
    out["overhead_ms"] = (out["trip_ray"] - out["trip_local"]) * 1000
    return out


def write_window(path: Path, rows: int, partitions: int) -> None:
    """A ``rows`` x 20 window written in row groups (so partitions read only their own rows)."""
    chunk = max(1, rows // (partitions * 4))
    writer = None
    rng = np.random.default_rng(1)
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        frame = window_frame(rng, n)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table)
        done += n
    assert writer is not None
    writer.close()


def window_frame(rng: np.random.Generator, n: int, drift: bool = False) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for i in range(18):
        shift = 0.25 if drift and i % 3 == 0 else 0.0  # 6 drifted numeric columns
        kind = i % 3
        if kind == 0:
            cols[f"n{i}"] = rng.normal(shift, 1.0, n)
        elif kind == 1:
            cols[f"n{i}"] = rng.lognormal(shift, 0.5, n)
        else:
            cols[f"n{i}"] = rng.poisson(5.0, n).astype(np.int64)
    cols["c0"] = rng.choice(np.array(["a", "b", "c", "d"]), n, p=[0.4, 0.3, 0.2, 0.1])
    cols["c1"] = rng.choice(np.array([f"v{j}" for j in range(50)]), n)
    return pd.DataFrame(cols)


def bench_profile(rows: int, partitions: int) -> dict[str, Any]:
    import ray

    with tempfile.TemporaryDirectory(prefix="regrow-bench-") as folder:
        path = Path(folder) / "window.parquet"
        started = time.perf_counter()
        write_window(path, rows, partitions)
        written = time.perf_counter() - started

        started = time.perf_counter()
        single = Profile.of(pq.read_table(path))
        single_s = time.perf_counter() - started

        ray.init(
            address="local",
            num_cpus=2,
            object_store_memory=200 * 1024**2,
            include_dashboard=False,
            log_to_driver=False,
        )
        try:
            profile_partitions(path, partitions=2, executor="ray", columns=["n0"])  # warm-up
            started = time.perf_counter()
            merged = profile_partitions(path, partitions=partitions, executor="ray")
            ray_s = time.perf_counter() - started
        finally:
            ray.shutdown()

    comparison = compare_profiles(merged, single)
    drifted = window_frame(np.random.default_rng(2), 200_000, drift=True)
    a = DriftMonitor(single).check(drifted)
    b = DriftMonitor(merged).check(drifted)
    decisions_a = {(f.column, f.slice, f.test): f.drifted for f in a.features}
    decisions_b = {(f.column, f.slice, f.test): f.drifted for f in b.features}
    worst = max(comparison.rank_gaps.values())
    return {
        "rows": rows,
        "write_s": written,
        "single_s": single_s,
        "ray_s": ray_s,
        "exact_parts_equal": not comparison.mismatches,
        "sketches_within_error": comparison.agree,
        "max_rank_gap": worst,
        "rank_bound": max(comparison.rank_bounds.values()),
        "decisions_agree": decisions_a == decisions_b,
        "drifted": sorted(a.drifted_columns),
        "columns": len(decisions_a),
    }


def _train_once(home: str, start_at: float) -> tuple[str, list[str], list[str]]:
    from regrow.demo import build_system

    with Workspace.open(home) as ws:
        snap = ws.catalog.get_snapshot("window")
        time.sleep(max(0.0, start_at - time.time()))  # both runs start together
        result = ws.train(build_system(), snap, backend=LocalBackend())
        return result.version.ref, result.trained, result.reused


def bench_concurrent(postgres: str) -> dict[str, Any]:
    from regrow.demo import make_window

    schema, url = create_postgres_schema(postgres)
    try:
        with tempfile.TemporaryDirectory() as home:
            with Workspace.init(home, catalog_url=url) as ws:
                ws.snapshot(make_window(3000, start="2026-01-01", days=30, seed=0), name="window")
            start_at = time.time() + 3.0
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(2) as pool:
                outcomes = pool.starmap(_train_once, [(home, start_at), (home, start_at)])
            engine = create_engine_for(url)
            try:
                with engine.connect() as conn:
                    dup_components = conn.execute(
                        sa.text(
                            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n "
                            "FROM component_versions GROUP BY system, component, fingerprint) s"
                        )
                    ).scalar_one()
                    dup_systems = conn.execute(
                        sa.text(
                            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n "
                            "FROM system_versions GROUP BY system, manifest::text, spec::text) s"
                        )
                    ).scalar_one()
                    components = conn.execute(
                        sa.text("SELECT count(*) FROM component_versions")
                    ).scalar_one()
                    runs = conn.execute(sa.text("SELECT status FROM runs")).scalars().all()
            finally:
                engine.dispose()
    finally:
        drop_postgres_schema(postgres, schema)
    return {
        "runs": sorted(runs),
        "versions": sorted(ref for ref, _, _ in outcomes),
        "trained": [len(t) for _, t, _ in outcomes],
        "component_versions": int(components),
        "duplicate_component_versions": int(dup_components),
        "duplicate_system_versions": int(dup_systems),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=PG_URL)
    args = parser.parse_args()

    plan = bench_plan(args.repeats)
    profile = bench_profile(args.rows, args.partitions)
    concurrent = bench_concurrent(args.postgres)

    rows = [
        ("plan: 16 members + ensemble, local in-process", f"{plan['local']:.2f} s"),
        ("plan on Ray, 1 worker process", f"{plan['ray_1']:.2f} s"),
        ("plan on Ray, 2 worker processes", f"{plan['ray_2']:.2f} s"),
        (
            "Ray start (1 / 2 workers, excluded above)",
            f"{plan['ray_start_1']:.1f} s / {plan['ray_start_2']:.1f} s",
        ),
        ("plan: (Ray 1 worker - local) / 17 tasks", f"{plan['plan_overhead_ms']:+.1f} ms"),
        (
            "one task alone, local / Ray round trip",
            f"{plan['trip_local'] * 1000:.1f} ms / {plan['trip_ray'] * 1000:.1f} ms",
        ),
        ("Ray overhead per task vs local (goal <= 50 ms)", f"{plan['overhead_ms']:.1f} ms"),
        (f"profile {profile['rows']:,} x 20, one process", f"{profile['single_s']:.1f} s"),
        (
            f"profile in {args.partitions} partitions on Ray (2 CPUs), merged",
            f"{profile['ray_s']:.1f} s",
        ),
        (
            "exact parts equal / sketches within stated error",
            f"{profile['exact_parts_equal']} / {profile['sketches_within_error']}",
        ),
        (
            "largest rank gap (allowed)",
            f"{profile['max_rank_gap']:.5f} ({profile['rank_bound']:.5f})",
        ),
        (
            f"drift decisions agree on all {profile['columns']} columns",
            f"{profile['decisions_agree']} (drifted: {', '.join(profile['drifted'])})",
        ),
        ("2 concurrent runs on PostgreSQL: statuses", ", ".join(concurrent["runs"])),
        (
            "  versions returned / components trained",
            f"{', '.join(concurrent['versions'])} / {concurrent['trained']}",
        ),
        (
            "  component versions (duplicates)",
            f"{concurrent['component_versions']} ({concurrent['duplicate_component_versions']})",
        ),
        (
            "  duplicate system versions (same manifest)",
            str(concurrent["duplicate_system_versions"]),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    sys.stdout.flush()
    print(
        json.dumps(
            {
                "ray_task_overhead_ms": round(plan["overhead_ms"], 1),
                "partitions_agree": bool(
                    profile["decisions_agree"] and profile["sketches_within_error"]
                ),
                "duplicate_versions": concurrent["duplicate_component_versions"]
                + concurrent["duplicate_system_versions"],
            }
        )
    )


if __name__ == "__main__":
    main()
