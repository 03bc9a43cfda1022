"""Reliability figures (issue #11): kill -9 mid-train, racing trains, a damaged store.

    python benchmarks/reliability.py [--trials 30] [--damages 50] [--races 3]
        [--modes local,workers,ray] [--parts kill,race,damage] [--seed 0] [--quick]

1. **kill -9.** ``regrow train`` of a 12-component system (``_reliability_system.py``: 4
   scalers, 7 members, 1 ensemble) is killed with SIGKILL at a random moment between its
   start and the length of a full run (measured once per mode after a warm-up run; on a
   busy machine it varies, so the table says how many kills came before the run was
   recorded, mid-run, and after its end), ``--trials`` times in all, spread over the
   modes: in-process (``--workers 1``), two worker processes (``--workers 2``), and a
   two-node Ray cluster on loopback (``--backend ray``; skipped, and said so, without Ray).
   Each trial has a seed of its own (``$REGROW_BENCH_SEED``), so everything trains anew;
   runs hold 2-second leases (``REGROW_LEASE_SECONDS=2``). Only the command's main process
   is killed. A trial counts as resumed only if all of these hold:

   - *orphans*: no process carrying the trial's tag (``$REGROW_BENCH_TRIAL``, inherited by
     everything the command starts) is alive 5 s after the kill, nor, on Ray, any worker
     still running a task (leftovers are then killed, so trials do not pollute each other);
   - *no run left running*: once the lease has lapsed no run's ``state()`` is ``running``
     (the killed one reads ``abandoned``), before anything else touches the workspace;
   - *resume*: the same ``regrow train`` re-run succeeds, and every component version the
     killed run recorded is reused by it, not trained again;
   - *doctor*: ``regrow doctor --repair --grace 0s`` then ``regrow doctor --grace 0s`` exits
     0 (``--grace 0s``: files the killed run left in the store count as problems).
2. **Racing trains.** Four ``regrow train`` commands of the 12-component system started
   together on one SQLite workspace (same system, snapshot and seed; default 30 s leases):
   fits = the sum of the four runs' ``summary["trained"]``. ``fits_for_12`` is the worst of
   ``--races`` races (goal <= 14; 42-48 before fit leases).
3. **A damaged store.** The demo system trained (v1) and updated (v2, ``geo`` refitted) on
   small windows; ``--damages`` times, one artifact of either version (a component version's
   or a snapshot's) is damaged: a byte flipped, a byte cut out, or the file deleted. Found =
   ``regrow doctor --grace 0s`` exits 1 and names the artifact's key. Repair: a snapshot's
   rows stored again (doctor cannot rebuild a snapshot: its rows are not in the catalog); a
   flipped component artifact by ``regrow doctor --repair`` (a same-size alteration is found
   only by hashing, so re-running the training would not notice it); a cut or deleted one
   alternately by ``regrow doctor --repair`` and by re-running the training that made it.
   Repaired = ``regrow doctor --grace 0s`` exits 0 afterwards and both versions'
   ``predict_proba`` on a fixed frame equal (``np.array_equal``) what they gave before.

``regrow doctor`` runs in this process (``regrow.cli.main``: the command's code, without a
new interpreter per call); ``regrow train`` runs as a command. Progress goes to stderr; the
table, then one JSON line of the figures, to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # thread pools pinned, here and in every command
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reliability_system import TAG, RayCluster, build, cmdline, kill_all, kill_group, tagged

from regrow import Workspace
from regrow.demo import SLICES, build_system, make_window

SYSTEM = f"{Path(__file__).resolve().parent / '_reliability_system.py'}:build"
COMPONENTS = list(build().components)
LEASE = 2
ORPHAN_WAIT = 5.0
RUN_LIMIT = 600.0
REGROW = [sys.executable, "-c", "from regrow.cli import main; main()"]
_STARTED: list[subprocess.Popen[bytes]] = []  # every command this benchmark started


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tag_of(n: int | str) -> str:
    return f"{os.getpid()}.{n}"


def start(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``args`` in a session of its own, output to ``log`` (never a pipe: orphans may hold it)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    _STARTED.append(process)
    return process


def finish(process: subprocess.Popen[bytes], env: dict[str, str]) -> int:
    """Wait for ``process`` (killed past RUN_LIMIT), then end whatever it left running."""
    try:
        code = process.wait(timeout=RUN_LIMIT)
    except subprocess.TimeoutExpired:
        kill_group(process)
        code = -9
    if left := tagged(TAG, env[TAG]):
        kill_all(left)
        say(f"  note: {len(left)} processes outlived a finished run: {list(map(cmdline, left))}")
    return code


def cleanup() -> None:
    """End everything this benchmark started: each command's group, then every tagged process."""
    for process in _STARTED:
        if process.poll() is None:
            kill_group(process)
    kill_all(tagged(TAG, tag_of(""), prefix=True))


def doctor(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``regrow doctor --json ARGS`` in this process: (exit code, report)."""
    from regrow.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["doctor", "--home", str(home), "--json", *args])
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
    try:
        return code, json.loads(out.getvalue())
    except json.JSONDecodeError:
        return code, {"problems": [], "output": out.getvalue()[-2000:]}


def tail(path: Path, n: int = 1500) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-n:]
    return ""


def run_ids(home: Path) -> set[str]:
    with Workspace.open(home) as ws:
        return {r.id for r in ws.catalog.list_runs("twelve", limit=100_000)}


# -- 1. kill -9 -------------------------------------------------------------------------------


@dataclass
class Mode:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cluster: RayCluster | None = None

    def command(self, home: Path) -> list[str]:
        return [*REGROW, "train", SYSTEM, "--snapshot", "bench", "--home", str(home), *self.args]

    def environ(self, seed: int, tag: str, iterations: int) -> dict[str, str]:
        return {
            **os.environ,
            **self.env,
            "REGROW_LEASE_SECONDS": str(LEASE),
            "REGROW_BENCH_SEED": str(seed),
            "REGROW_BENCH_ITER": str(iterations),
            TAG: tag,
        }


@dataclass
class Trial:
    mode: str
    delay: float
    finished_first: bool = False  # the run ended before its kill time
    killed_run: bool = False  # the killed command had recorded its run
    recorded: int = 0  # component versions the killed run had recorded
    orphans: list[str] = field(default_factory=list)  # command lines left after 5 s
    gone_after: float = 0.0  # seconds until nothing tagged was left
    running: int = 0  # runs reading "running" once the lease had lapsed
    resumed: bool = False
    resume_trained: int = 0
    reused_ok: bool = False
    doctor_found: Counter[str] = field(default_factory=Counter)
    doctor_ok: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        clean = not self.orphans and not self.running and self.doctor_ok
        return clean and self.resumed and self.reused_ok


def kill_trial(mode: Mode, home: Path, n: int, delay: float, iterations: int) -> Trial:
    trial, tag, logs = Trial(mode.name, delay), tag_of(n), home.parent / "logs"
    before = run_ids(home)
    env = mode.environ(n, tag, iterations)
    process = start(mode.command(home), env, logs / f"{n}-killed.log")
    started = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=delay)
        trial.finished_first = True
        if process.returncode != 0:
            trial.notes.append(f"it failed before its kill: {tail(logs / f'{n}-killed.log')}")
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)  # the main process only
    killed_at = time.monotonic()
    trial.delay = killed_at - started
    process.wait()
    watch_orphans(trial, mode, tag, killed_at)
    kill_group(process)
    time.sleep(max(0.0, killed_at + LEASE + 1.0 - time.monotonic()))  # the lease lapses
    recorded = check_runs(trial, home, before)
    before = run_ids(home)
    code = finish(start(mode.command(home), {**env, TAG: f"{tag}r"}, logs / f"{n}-resume.log"), env)
    check_resume(trial, home, before, recorded, code, logs / f"{n}-resume.log")
    check_doctor(trial, home)
    return trial


def watch_orphans(trial: Trial, mode: Mode, tag: str, killed_at: float) -> None:
    """Poll for the trial's processes (and, on Ray, busy workers) for 5 s; kill what is left."""
    while True:
        left = tagged(TAG, tag) + (mode.cluster.busy_workers() if mode.cluster else [])
        if not left or time.monotonic() - killed_at >= ORPHAN_WAIT:
            break
        time.sleep(0.1)
    trial.gone_after = time.monotonic() - killed_at
    trial.orphans = [cmdline(p) for p in left]
    kill_all(left)


def check_runs(trial: Trial, home: Path, before: set[str]) -> set[str]:
    """Count runs still ``running``; return the components the killed run recorded."""
    with Workspace.open(home) as ws:
        runs = ws.catalog.list_runs("twelve", limit=100_000)
        trial.running = sum(r.state() == "running" for r in runs)
        killed = [r for r in runs if r.id not in before]
        if not killed:
            return set()
        trial.killed_run = True
        recorded = {
            name
            for name in COMPONENTS
            if any(v.run_id == killed[0].id for v in ws.catalog.component_history("twelve", name))
        }
    trial.recorded = len(recorded)
    return recorded


def check_resume(
    trial: Trial, home: Path, before: set[str], recorded: set[str], code: int, log: Path
) -> None:
    with Workspace.open(home) as ws:
        runs = [r for r in ws.catalog.list_runs("twelve", limit=100_000) if r.id not in before]
    if code != 0 or len(runs) != 1 or runs[0].status != "succeeded":
        trial.notes.append(f"the resume exited {code}: {tail(log)}")
        return
    trial.resumed = True
    trained, reused = set(runs[0].summary["trained"]), set(runs[0].summary["reused"])
    trial.resume_trained = len(trained)
    trial.reused_ok = recorded <= reused and not recorded & trained
    if not trial.reused_ok:
        trial.notes.append(f"recorded by the killed run, trained again: {recorded & trained}")


def check_doctor(trial: Trial, home: Path) -> None:
    _, repaired = doctor(home, "--repair", "--grace", "0s")
    trial.doctor_found = Counter(p["kind"] for p in repaired.get("problems", []))
    code, report = doctor(home, "--grace", "0s")
    trial.doctor_ok = code == 0
    if code != 0:
        trial.notes.append(f"doctor after --repair exited {code}: {report.get('remaining')}")


class Unavailable(Exception):
    """A mode that cannot run here (no Ray, or its cluster did not start)."""


@contextlib.contextmanager
def mode_named(name: str) -> Iterator[Mode]:
    if name == "local":
        yield Mode(name, ["--workers", "1"])
    elif name == "workers":
        yield Mode(name, ["--workers", "2"])
    elif name == "ray":
        cluster = RayCluster()
        try:
            cluster.start()
        except Exception as exc:
            cluster.stop()
            raise Unavailable(f"the Ray cluster did not start: {exc}") from exc
        try:
            yield Mode(
                name, ["--backend", "ray", "--address", cluster.address], cluster.env, cluster
            )
        finally:
            cluster.stop()
    else:
        raise ValueError(f"unknown mode {name!r}")


def ray_missing() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (pip install 'regrow[ray]')"
    if not (Path(sys.executable).parent / "ray").exists():
        return f"the ray command is missing beside {sys.executable}"
    return None


def bench_kill(
    modes: list[str], trials: int, rows: int, iterations: int, rng: np.random.Generator
) -> dict[str, Any]:
    per_mode = {m: trials // len(modes) + (i < trials % len(modes)) for i, m in enumerate(modes)}
    out: dict[str, Any] = {"trials": [], "full_s": {}, "skipped": {}}
    for name in [m for m in modes if per_mode[m]]:
        try:
            bench_mode(name, per_mode[name], rows, iterations, rng, out)
        except Unavailable as exc:
            out["skipped"][name] = str(exc)
            say(f"kill: mode {name} skipped: {exc}")
    return out


def bench_mode(
    name: str, trials: int, rows: int, iterations: int, rng: np.random.Generator, out: Any
) -> None:
    if name == "ray" and (why := ray_missing()):
        raise Unavailable(why)
    with tempfile.TemporaryDirectory(prefix=f"regrow-bench-{name}-") as tmp:
        home = Path(tmp) / "ws"
        (Path(tmp) / "logs").mkdir()
        with Workspace.init(home) as ws:
            ws.snapshot(make_window(rows, start="2026-01-01", days=90, seed=0), name="bench")
        with mode_named(name) as mode:
            for seed in (10_000, 10_001):  # a warm-up (caches, bytecode), then the measure
                env = mode.environ(seed, tag_of(f"full{seed}"), iterations)
                t0 = time.monotonic()
                log = Path(tmp) / "logs" / f"full{seed}.log"
                if code := finish(start(mode.command(home), env, log), env):
                    raise RuntimeError(f"a full run ({name}) exited {code}: {tail(log)}")
            full = out["full_s"][name] = time.monotonic() - t0
            say(f"kill: mode {name}: a full run takes {full:.1f} s")
            for _ in range(trials):
                n = len(out["trials"]) + 1
                trial = kill_trial(mode, home, n, float(rng.uniform(0, full)), iterations)
                out["trials"].append(trial)
                say(
                    f"  trial {n:>2} {name:<7} kill at {trial.delay:4.1f}s: recorded "
                    f"{trial.recorded:>2}, orphans {len(trial.orphans)}, running "
                    f"{trial.running}, resume trained {trial.resume_trained:>2}, doctor "
                    f"found {dict(trial.doctor_found) or '-'}: "
                    f"{'ok' if trial.ok else 'FAILED'} {' '.join(trial.notes)}"
                )
                if trial.orphans:
                    say(f"    left after {ORPHAN_WAIT:.0f}s: {trial.orphans}")


# -- 2. racing trains -------------------------------------------------------------------------


def bench_race(races: int, rows: int, iterations: int) -> dict[str, Any]:
    out: dict[str, Any] = {"fits": [], "per_run": [], "ok": True, "overlapped": 0}
    with tempfile.TemporaryDirectory(prefix="regrow-bench-race-") as tmp:
        home = Path(tmp) / "ws"
        with Workspace.init(home) as ws:
            ws.snapshot(make_window(rows, start="2026-01-01", days=90, seed=0), name="bench")
        mode = Mode("race", [])
        for r in range(races):
            before = run_ids(home)
            envs = [mode.environ(20_000 + r, tag_of(f"race{r}.{i}"), iterations) for i in range(4)]
            for env in envs:
                del env["REGROW_LEASE_SECONDS"]  # live runs racing: the default lease
            logs = [Path(tmp) / f"race{r}-{i}.log" for i in range(4)]
            started = [start(mode.command(home), e, x) for e, x in zip(envs, logs, strict=True)]
            codes = [finish(p, e) for p, e in zip(started, envs, strict=True)]
            with Workspace.open(home) as ws:
                runs = [x for x in ws.catalog.list_runs("twelve") if x.id not in before]
            trained = [len(x.summary.get("trained", [])) for x in runs]
            ends = [x.finished_at for x in runs if x.finished_at is not None]
            out["overlapped"] += len(ends) == 4 and max(x.started_at for x in runs) < min(ends)
            if any(codes) or len(runs) != 4 or len({x.version_id for x in runs}) != 1:
                out["ok"] = False
                say(f"race {r}: {[tail(x, 400) for x, c in zip(logs, codes, strict=True) if c]}")
            out["fits"].append(sum(trained))
            out["per_run"].append(sorted(trained, reverse=True))
            say(f"race {r}: fits {sum(trained)} ({trained}), exits {codes}")
    return out


# -- 3. a damaged store -----------------------------------------------------------------------

KINDS = ("flip", "cut", "delete")


@dataclass
class Damage:
    target: str  # "component" or "snapshot"
    kind: str
    label: str
    found: bool = False
    problem: str = "-"
    method: str = "-"
    repaired: bool = False
    note: str = ""


def damage_file(path: Path, kind: str, rng: np.random.Generator) -> None:
    if kind == "delete":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    at = int(rng.integers(len(data)))
    if kind == "flip":
        data[at] ^= int(rng.integers(1, 256))
    else:
        del data[at]
    path.write_bytes(bytes(data))


@dataclass
class Demo:
    """The demo system's v1 and v2, what re-creates them, and their predictions."""

    home: Path
    root: Path  # the artifact store's folder
    refs: list[str]
    snapshots: dict[str, tuple[Any, dict[str, Any]]]  # id -> (rows, ws.snapshot arguments)
    frame: Any
    expected: dict[str, np.ndarray] = field(default_factory=dict)

    def predictions(self) -> dict[str, np.ndarray]:
        with Workspace.open(self.home) as ws:
            return {ref: ws.load(ref).predict_proba(self.frame) for ref in self.refs}

    def targets(self) -> dict[str, tuple[str, str, str]]:
        """Artifact key -> ("component" or "snapshot", a label, the version or snapshot id)."""
        out: dict[str, tuple[str, str, str]] = {}
        with Workspace.open(self.home) as ws:
            for ref in self.refs:
                manifest = ws.catalog.get_system_version(ref).manifest
                for cv in ws.catalog.get_component_versions(manifest.values()).values():
                    if cv.artifact is not None:
                        out.setdefault(cv.artifact, ("component", f"{ref} {cv.component}", cv.id))
            for sid in self.snapshots:
                snap = ws.catalog.get_snapshot(sid)
                out.setdefault(snap.artifact, ("snapshot", f"snapshot {snap.name}", sid))
        return out

    def retrain(self, version_id: str) -> None:
        """Re-run the training that made component version ``version_id``."""
        a, b = self.snapshots
        with Workspace.open(self.home) as ws:
            if version_id in ws.catalog.get_system_version(self.refs[0]).manifest.values():
                ws.train(build_system(), a)
            else:
                ws.update(self.refs[0], b, components=["geo"])


def train_demo(home: Path) -> Demo:
    history = make_window(4000, start="2026-01-01", days=181, seed=0)
    recent = make_window(1500, start="2026-07-01", days=40, seed=1, expanded=True)
    with Workspace.init(home) as ws:
        args_a: dict[str, Any] = {"name": "customers", "time_column": "ts", "slices": SLICES}
        a = ws.snapshot(history, **args_a)
        v1 = ws.train(build_system(), a)
        args_b: dict[str, Any] = {"name": "customers-recent", "time_column": "ts", "slices": SLICES}
        b = ws.snapshot(recent, parents=[a.id], **args_b)
        v2 = ws.update(v1.version.ref, b, components=["geo"])
        root = Path(ws.store.url)
    demo = Demo(
        home,
        root,
        [v1.version.ref, v2.version.ref],
        {a.id: (history, args_a), b.id: (recent, {**args_b, "parents": [a.id]})},
        make_window(500, start="2026-09-01", days=30, seed=2, expanded=True),
    )
    demo.expected = demo.predictions()
    return demo


def damage_once(demo: Demo, rng: np.random.Generator, retrain_turn: int) -> Damage:
    targets = demo.targets()
    key = sorted(targets)[int(rng.integers(len(targets)))]
    target, label, ident = targets[key]
    d = Damage(target, KINDS[int(rng.choice(3, p=[0.5, 0.25, 0.25]))], label)
    damage_file(demo.root / key[:2] / key, d.kind, rng)
    code, report = doctor(demo.home, "--grace", "0s")
    named = {p["kind"] for p in report.get("problems", []) if p.get("key") == key}
    d.found, d.problem = code == 1 and bool(named), ",".join(sorted(named)) or "-"
    try:
        if target == "snapshot":
            d.method = "rows stored again"
            rows, args = demo.snapshots[ident]
            with Workspace.open(demo.home) as ws:
                ws.snapshot(rows, **args)
        elif d.kind == "flip" or retrain_turn % 2 == 0:
            d.method = "doctor --repair"
            _, report = doctor(demo.home, "--repair", "--grace", "0s")
            d.note = "; ".join(r["detail"] for r in report.get("repairs", []) if not r["ok"])
        else:
            d.method = "training re-run"
            demo.retrain(ident)
        code, report = doctor(demo.home, "--grace", "0s")
        now = demo.predictions()
        equal = all(np.array_equal(now[r], demo.expected[r]) for r in demo.refs)
        d.repaired = code == 0 and equal
        d.note += f" doctor afterwards: {report.get('remaining')}" if code else ""
        d.note += "" if equal else " predictions differ"
    except Exception as exc:  # reported; the workspace is mended for the next damage
        d.note += f" {type(exc).__name__}: {exc}"
        doctor(demo.home, "--repair", "--grace", "0s")
    return d


def bench_damage(damages: int, rng: np.random.Generator) -> dict[str, Any]:
    out: list[Damage] = []
    with tempfile.TemporaryDirectory(prefix="regrow-bench-damage-") as tmp:
        demo = train_demo(Path(tmp) / "ws")
        turn = 0  # alternates the repair of cut and deleted component artifacts
        for _ in range(damages):
            d = damage_once(demo, rng, turn)
            turn += d.target == "component" and d.kind != "flip"
            out.append(d)
            say(
                f"damage {len(out):>2}: {d.kind:<6} {d.label:<28} found {d.found} "
                f"({d.problem}), {d.method}: repaired {d.repaired} {d.note.strip()}"
            )
    return {"damages": out}


# -- the report -------------------------------------------------------------------------------


def kill_rows(kill: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for mode, full in kill["full_s"].items():
        ts: list[Trial] = [t for t in kill["trials"] if t.mode == mode]
        found = sum((t.doctor_found for t in ts), Counter())
        rows += [
            (f"kill -9, {mode}: a full run / trials", f"{full:.1f} s / {len(ts)}"),
            ("  resumed (all checks held)", f"{sum(t.ok for t in ts)}/{len(ts)}"),
            (
                "  kills before the run was recorded / mid-run / after its end",
                f"{sum(not t.killed_run and not t.finished_first for t in ts)} / "
                f"{sum(t.killed_run and not t.finished_first for t in ts)} / "
                f"{sum(t.finished_first for t in ts)}",
            ),
            (
                "  components the killed run had recorded: median, max",
                f"{statistics.median([t.recorded for t in ts] or [0]):.0f}, "
                f"{max([t.recorded for t in ts] or [0])}",
            ),
            ("  processes left 5 s after the kill", str(sum(len(t.orphans) for t in ts))),
            ("  longest wait until none was left", f"{max(t.gone_after for t in ts):.1f} s"),
            ("  runs 'running' once the lease lapsed", str(sum(t.running for t in ts))),
            (
                "  resumes that trained a recorded component",
                str(sum(t.resumed and not t.reused_ok for t in ts)),
            ),
            ("  doctor --repair found", ", ".join(f"{k} {v}" for k, v in found.items()) or "-"),
            ("  doctor clean after --repair", f"{sum(t.doctor_ok for t in ts)}/{len(ts)}"),
        ]
    return rows + [(f"kill -9, {mode}", f"skipped: {why}") for mode, why in kill["skipped"].items()]


def damage_rows(damage: dict[str, Any]) -> list[tuple[str, str]]:
    ds: list[Damage] = damage["damages"]
    rows = []
    for target in ("component", "snapshot"):
        mine = [d for d in ds if d.target == target]
        kinds = Counter(d.kind for d in mine)
        rows.append(
            (
                f"damaged {target} artifacts ({', '.join(f'{k} {kinds[k]}' for k in KINDS)})",
                f"found {sum(d.found for d in mine)}/{len(mine)}, "
                f"repaired {sum(d.repaired for d in mine)}/{len(mine)}",
            )
        )
    for method, count in Counter(d.method for d in ds).items():
        mine = [d for d in ds if d.method == method]
        rows.append((f"  repaired by {method}", f"{sum(d.repaired for d in mine)}/{count}"))
    return rows


def report(results: dict[str, Any]) -> None:
    kill, race, damage = results["kill"], results["race"], results["damage"]
    rows = kill_rows(kill) if kill else []
    if race:
        rows += [
            ("4 racing trains: fits per race (goal <= 14)", ", ".join(map(str, race["fits"]))),
            ("  fits per run", "; ".join(str(p) for p in race["per_run"])),
            ("  all succeeded with one version", str(race["ok"])),
            ("  races where the 4 runs overlapped", f"{race['overlapped']}/{len(race['fits'])}"),
        ]
    rows += damage_rows(damage) if damage else []
    rows += [(f"time: {part}", f"{s:.0f} s") for part, s in results["seconds"].items()]
    rows.append(("load average (1 min): start, end; CPUs", results["load"]))
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    sys.stdout.flush()

    trials: list[Trial] = kill["trials"] if kill else []
    ds: list[Damage] = damage["damages"] if damage else []
    figures: dict[str, Any] = {
        "kill_resumed": f"{sum(t.ok for t in trials)}/{len(trials)}" if kill else None,
        "orphans": sum(len(t.orphans) for t in trials) if kill else None,
        "fits_for_12": max(race["fits"]) if race else None,
        "damage_found": f"{sum(d.found for d in ds)}/{len(ds)}" if damage else None,
        "damage_repaired": f"{sum(d.repaired for d in ds)}/{len(ds)}" if damage else None,
    }
    for mode in kill["full_s"] if kill else ():
        mine = [t for t in trials if t.mode == mode]
        figures[f"kill_resumed_{mode}"] = f"{sum(t.ok for t in mine)}/{len(mine)}"
        figures[f"orphans_{mode}"] = sum(len(t.orphans) for t in mine)
        figures[f"full_run_s_{mode}"] = round(kill["full_s"][mode], 1)
    if kill:
        figures["runs_left_running"] = sum(t.running for t in trials)
    if race:
        figures["fits_per_race"] = race["fits"]
    figures["seconds"] = {k: round(v) for k, v in results["seconds"].items()}
    print(json.dumps(figures))


def stop(signum: int, frame: object) -> None:
    """SIGTERM: leave through the ``finally`` that ends every process this benchmark started."""
    sys.exit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="kill -9 trials, over all modes")
    parser.add_argument("--damages", type=int, default=50)
    parser.add_argument("--races", type=int, default=3, help="races of 4 trains")
    parser.add_argument("--modes", default="local,workers,ray")
    parser.add_argument("--parts", default="kill,race,damage")
    parser.add_argument("--rows", type=int, default=30_000, help="rows of the 12-component data")
    parser.add_argument("--iterations", type=int, default=600, help="boosted trees' iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 trials, 6 damages, 1 race")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.damages, args.races = 3, 6, 1
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if unknown := [m for m in modes if m not in ("local", "workers", "ray")]:
        parser.error(f"unknown modes {unknown}: choose among local, workers, ray")
    if unknown := sorted(parts - {"kill", "race", "damage"}):
        parser.error(f"unknown parts {unknown}: choose among kill, race, damage")
    rng = np.random.default_rng(args.seed)

    signal.signal(signal.SIGTERM, stop)
    results: dict[str, Any] = {"kill": None, "race": None, "damage": None, "seconds": {}}
    load = os.getloadavg()[0]
    started = time.monotonic()
    try:
        benches: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("kill", lambda: bench_kill(modes, args.trials, args.rows, args.iterations, rng)),
            ("race", lambda: bench_race(args.races, args.rows, args.iterations)),
            ("damage", lambda: bench_damage(args.damages, rng)),
        ]
        for part, bench in benches:
            if part in parts:
                t0 = time.monotonic()
                results[part] = bench()
                results["seconds"][part] = time.monotonic() - t0
    finally:
        cleanup()
    results["seconds"]["total"] = time.monotonic() - started
    results["load"] = f"{load:.1f}, {os.getloadavg()[0]:.1f}; {os.cpu_count()}"
    report(results)


if __name__ == "__main__":
    main()
