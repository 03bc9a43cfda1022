"""Orchestration overheads of the foundation: status, cached re-runs, alias moves, lineage.

    python benchmarks/orchestration.py [--repeats 7]

Figures (issue #2), each the median of several repeats on a SQLite workspace in a temp dir:

- status over a 1,000-component system (fingerprints recomputed from the user's System,
  every stored version read back and compared part by part): goal <= 200 ms;
- re-running a 100-component system with everything cached: goal <= 1 s;
- an alias move with its audit event: goal <= 5 ms;
- the lineage query of a version 10 parents deep, in a catalog holding 100,000 component
  versions: goal <= 20 ms; and, held to the same goal, the full lineage report that
  `regrow lineage` prints (run, environment, snapshots, and the origin of each of the
  version's 100 components);
- the `regrow` command as a user starts it (issue #12; wall time of a new process, median of
  5): `regrow --help`, goal <= 0.3 s (``cli_help_s``), and `regrow status --json` on the
  demo's workspace, goal <= 1.0 s (``cli_status_s``); with their CPU time, which depends
  far less on how busy the machine is (``cli_help_cpu_s``, ``cli_status_cpu_s``). regrow's
  modules are compiled to bytecode first, as ``pip install`` does for an installed package: an
  editable install under ``PYTHONDONTWRITEBYTECODE=1`` (set on the team's machines) caches
  none, and each command would compile the ~85 modules it imports again (0.1-0.2 s).

Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.dummy import DummyClassifier
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.catalog.models import Component, ComponentVersion
from regrow.demo import run_demo


def wide_system(n_components: int, n_columns: int = 20) -> System:
    name = f"wide{n_components}"
    """A system of transforms and cheap members with an ensemble: ``n_components`` in all."""
    n_transforms = n_components // 10
    n_members = n_components - n_transforms - 1
    comps: list[Transform | Member | Ensemble] = [
        Transform(f"t{i}", StandardScaler(), inputs=[f"x{i % n_columns}"])
        for i in range(n_transforms)
    ]
    comps += [
        Member(
            f"m{i}",
            DummyClassifier(strategy="prior"),
            inputs=[f"t{i % n_transforms}", f"x{(i + 1) % n_columns}"],
        )
        for i in range(n_members)
    ]
    comps.append(Ensemble("ensemble", weights={f"m{i}": 1.0 for i in range(n_members)}))
    return System(name, target="y", components=comps)


def frame(rows: int = 200, n_columns: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {f"x{i}": rng.normal(size=rows) for i in range(n_columns)}
    data["y"] = rng.integers(0, 2, rows)
    return pd.DataFrame(data)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_status(ws: Workspace, repeats: int) -> float:
    system = wide_system(1000)
    snap = ws.snapshot(frame(), name="wide1000")
    version = ws.train(system, snap, workers=1).version
    rows = ws.status(version.ref, system=system)
    assert len(rows) == 1000
    assert all(r.fresh for r in rows)
    return median_ms(lambda: ws.status(version.ref, system=system), repeats)


def bench_cached_rerun(ws: Workspace, repeats: int) -> float:
    system = wide_system(100)
    snap = ws.snapshot(frame(rows=150), name="wide100")
    first = ws.train(system, snap, workers=1)
    assert len(first.trained) == 100

    def rerun() -> None:
        result = ws.train(system, snap, workers=1)
        assert result.trained == []
        assert len(result.reused) == 100

    return median_ms(rerun, repeats) / 1000


def bench_alias_move(ws: Workspace, repeats: int) -> float:
    a = ws.catalog.list_system_versions("wide100")[0]
    b = ws.catalog.add_system_version(
        system="wide100", manifest=a.manifest, spec=a.spec, parent_id=a.id, run_id=a.run_id,
        snapshot_id=a.snapshot_id, note="a second holder: a move to the holder is refused",
    )  # fmt: skip
    ws.promote(a.ref, "bench")
    times = []
    for i in range(max(50, repeats * 20)):
        t0 = time.perf_counter()
        target = b if i % 2 == 0 else a
        ws.catalog.move_alias("wide100", "bench", target.id, reason=f"move {i}")
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_lineage(ws: Workspace, repeats: int, filler: int = 100_000) -> tuple[float, float]:
    """A chain of 11 versions; filler component versions make the table 100,000 rows."""
    cat = ws.catalog
    base = cat.list_system_versions("wide100")[0]
    manifest = dict(base.manifest)
    parent = base
    for i in range(10):
        parent = cat.add_system_version(
            system="wide100",
            manifest=manifest,
            spec=parent.spec,
            parent_id=parent.id,
            run_id=parent.run_id,
            snapshot_id=parent.snapshot_id,
            note=f"chain {i}",
        )
    now = datetime.now(UTC)
    with cat._engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(ComponentVersion)
        existing = conn.execute(count).scalar_one()
    rows = [
        {
            "id": f"filler{i:058d}",
            "system": f"filler{i % 100}",
            "component": f"c{i % 1000}",
            "kind": "member",
            "fingerprint": f"{i:064d}",
            "parts": {},
            "artifact": None,
            "run_id": None,
            "snapshot_id": None,
            "seed": 0,
            "train_seconds": 0.0,
            "created_at": now,
            "info": {},
        }
        for i in range(filler - int(existing))
    ]
    owners = {(r["system"], r["component"]) for r in rows}
    with cat._engine.begin() as conn:
        conn.execute(
            sa.insert(Component),
            [{"system": s, "name": c, "kind": "member", "created_at": now} for s, c in owners],
        )
        conn.execute(sa.insert(ComponentVersion), rows)
    with cat._engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(ComponentVersion)).scalar_one()
    assert total >= filler, total
    report = ws.lineage(parent.ref, depth=10)
    assert len(report["parents"]) == 10
    assert len(cat.lineage(parent.id, depth=10)) == 11
    query_ms = median_ms(lambda: cat.lineage(parent.id, depth=10), repeats * 3)
    report_ms = median_ms(lambda: ws.lineage(parent.ref, depth=10), repeats * 3)
    return query_ms, report_ms


def regrow_command() -> list[str]:
    """The `regrow` console script beside this Python, else ``python -m regrow.cli``."""
    script = Path(sys.executable).with_name("regrow")
    if script.is_file():
        return [str(script)]
    found = shutil.which("regrow")
    return [found] if found else [sys.executable, "-m", "regrow.cli"]


def compile_regrow() -> int:
    """Compile regrow's modules to bytecode where it is missing or stale (``compileall``
    writes it whatever ``PYTHONDONTWRITEBYTECODE`` says); the number of modules compiled."""
    import compileall
    import importlib.util

    import regrow

    def stale(source: Path) -> bool:
        cached = Path(importlib.util.cache_from_source(str(source)))
        return not cached.is_file() or cached.stat().st_mtime < source.stat().st_mtime

    package = Path(regrow.__file__).parent
    count = sum(stale(path) for path in package.rglob("*.py"))
    compileall.compile_dir(package, quiet=1)
    return count


def median_command_s(args: list[str], repeats: int) -> tuple[float, float]:
    """Median wall time and CPU time (user + system) of running ``args`` as a new process.

    The CPU time hardly depends on how busy the machine is; the wall time is the goal.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def bench_cli(folder: Path, repeats: int = 5) -> dict[str, tuple[float, float]]:
    """`regrow --help`, and `regrow status --json` on the demo's workspace, in new processes:
    median (wall, CPU) seconds of each."""
    home = folder / "demo"
    with Workspace.init(home) as ws:
        run_demo(ws, workers=1)
    command = regrow_command()
    compiled = compile_regrow()
    if compiled:
        print(f"(compiled {compiled} of regrow's modules to bytecode first)")
    return {
        "help": median_command_s([*command, "--help"], repeats),
        "status": median_command_s([*command, "status", "--json", "--home", str(home)], repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Workspace.init(Path(tmp) / "ws") as ws:
        t0 = time.perf_counter()
        status_ms = bench_status(ws, args.repeats)
        rerun_s = bench_cached_rerun(ws, args.repeats)
        alias_ms = bench_alias_move(ws, args.repeats)
        lineage_ms, report_ms = bench_lineage(ws, args.repeats)
        cli = bench_cli(Path(tmp))
        (help_s, help_cpu), (status_s, status_cpu) = cli["help"], cli["status"]
        total = time.perf_counter() - t0
    rows = [
        ("status, 1,000 components", f"{status_ms:.1f} ms", "<= 200 ms", status_ms <= 200),
        ("cached re-run, 100 components", f"{rerun_s:.3f} s", "<= 1 s", rerun_s <= 1),
        ("alias move + audit (SQLite)", f"{alias_ms:.2f} ms", "<= 5 ms", alias_ms <= 5),
        ("lineage query depth 10, 100k cvs", f"{lineage_ms:.1f} ms", "<= 20 ms", lineage_ms <= 20),
        ("lineage report (100 components)", f"{report_ms:.1f} ms", "<= 20 ms", report_ms <= 20),
        ("regrow --help (new process)", f"{help_s:.3f} s", "<= 0.3 s", help_s <= 0.3),
        ("regrow status --json (demo)", f"{status_s:.3f} s", "<= 1.0 s", status_s <= 1.0),
        ("  their CPU time (help, status)", f"{help_cpu:.2f}, {status_cpu:.2f} s", "", True),
    ]
    print(f"{'figure':<34} {'median':>12} {'goal':>10}  met")
    for name, value, goal, ok in rows:
        met = ("yes" if ok else "NO") if goal else "-"
        print(f"{name:<34} {value:>12} {goal:>10}  {met}")
    print(f"(python {sys.version.split()[0]}, {args.repeats} repeats, {total:.1f}s in all)")
    print(
        json.dumps(
            {
                "status_1000_ms": round(status_ms, 2),
                "cached_rerun_100_s": round(rerun_s, 4),
                "alias_move_ms": round(alias_ms, 3),
                "lineage_ms": round(lineage_ms, 2),
                "lineage_report_ms": round(report_ms, 2),
                "cli_help_s": round(help_s, 3),
                "cli_status_s": round(status_s, 3),
                "cli_help_cpu_s": round(help_cpu, 3),
                "cli_status_cpu_s": round(status_cpu, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
