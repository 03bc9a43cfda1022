"""No orphans: killing `regrow train --workers N` takes every process it started with it.

Each test starts the real `regrow` command in a session of its own, reads its stdout and
stderr the way ``subprocess.run(..., capture_output=True)`` would, and finds the processes it
started through /proc (their pids and start times, so a reused pid is never mistaken for
one of them). Whatever a test leaves, it kills: the command's process group, then every
process it saw (Ray's daemons leave the group).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regrow import Workspace
from regrow.demo import make_window

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes in /proc"),
]

GRACE = 5.0  # seconds after the kill: no process left, and the pipes at their end

SYSTEM = """
from sklearn.neural_network import MLPClassifier
from regrow import Ensemble, Member, System

INPUTS = ["tenure_months", "monthly_fee", "distance_km", "network_quality"]


def member(i, iterations):
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=iterations, tol=0,
                        n_iter_no_change=10**6, random_state=i)
    return Member(f"m{i}", mlp, inputs=INPUTS)


def build(members=11, iterations=3000):
    return System("churn", target="churned", components=[
        *(member(i, iterations) for i in range(members)),
        Ensemble("ensemble", weights={f"m{i}": 1 for i in range(members)}),
    ])


def small():
    return build(members=3, iterations=5)
"""


def stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent pid, process group, start time) of ``pid``; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def processes() -> dict[int, tuple[str, int, int, int]]:
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        info = stat(int(entry.name))
        if info is not None:
            found[int(entry.name)] = info
    return found


@dataclass
class Command:
    """A `regrow` command running in its own session, its output read to the end."""

    process: subprocess.Popen[bytes]
    seen: dict[int, int] = field(default_factory=dict)  # pid -> start time, descendants
    output: dict[str, bytes] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)  # stream -> when it reached EOF

    @property
    def pid(self) -> int:
        return self.process.pid

    def look(self) -> dict[int, str]:
        """Record the command's descendants now; return them with their command lines."""
        table = processes()
        family = {self.pid}
        grew = True
        while grew:
            grew = False
            for pid, (_, parent, _, _) in table.items():
                if parent in family and pid not in family:
                    family.add(pid)
                    grew = True
        family.discard(self.pid)
        for pid in family:
            self.seen.setdefault(pid, table[pid][3])
        return {pid: cmdline(pid) for pid in family}

    def alive(self) -> dict[int, str]:
        """Processes of the command still running (seen as its descendants, or in its
        process group), zombies aside."""
        left = {}
        for pid, (state, _, group, started) in processes().items():
            ours = self.seen.get(pid) == started or group == self.pid
            if ours and pid != self.pid and state not in "ZX":
                left[pid] = f"{state} {cmdline(pid)[:120]}"
        return left

    def wait_for(self, what: str, test: object, timeout: float) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            family = self.look()
            if test(family):  # type: ignore[operator]
                return family
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        pytest.fail(
            f"{what} did not happen within {timeout} s (exit status {self.process.returncode}); "
            f"stderr: {self.output.get('stderr', b'')[-3000:].decode(errors='replace')}"
        )

    def cleanup(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid, started in self.seen.items():
            info = stat(pid)
            if info is not None and info[3] == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def regrow(*args: str, cwd: Path) -> Iterator[Command]:
    """Run `regrow ARGS` with its stdout and stderr on pipes read by threads."""
    script = Path(sys.executable).with_name("regrow")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "regrow.cli"]
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [*command, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, to find and to clean up
        env=env,
    )
    run = Command(process)

    def read(name: str, stream: object) -> None:
        run.output[name] = stream.read()  # type: ignore[attr-defined]
        run.ended[name] = time.monotonic()

    readers = [
        threading.Thread(target=read, args=(name, stream), daemon=True)
        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    try:
        yield run
    finally:
        run.cleanup()
        for reader in readers:
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def gone_within(run: Command, since: float, grace: float = GRACE) -> dict[int, str]:
    """Wait until the command's processes are gone and its pipes ended; what is left."""
    while time.monotonic() - since < grace:
        if not run.alive() and len(run.ended) == 2:
            break
        time.sleep(0.05)
    return run.alive()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workspace with a snapshot, and models.py whose members fit for a long while.

    One per test: a killed run keeps its fit leases until they expire, and would hold up
    the next run of the same components.
    """
    (tmp_path / "models.py").write_text(SYSTEM)
    with Workspace.init(tmp_path / "ws") as ws:
        ws.snapshot(make_window(1500, start="2026-01-01", days=60, seed=0), name="old")
    return tmp_path


def train(*extra: str) -> tuple[str, ...]:
    return ("train", "models.py:build", "--snapshot", "old", "--home", "ws", "--json", *extra)


def pool_workers(family: dict[int, str], run: Command) -> list[int]:
    """The pool's workers: processes forked by the fork server the command started."""
    servers = {p for p, line in family.items() if "multiprocessing.forkserver" in line}
    table = processes()
    return [p for p in family if p in table and table[p][1] in servers]


def test_kill_9_of_train_with_workers_leaves_no_process_and_ends_its_pipes(
    project: Path,
) -> None:
    delay = random.uniform(0.0, 3.0)  # a random point of the run, once its workers exist
    with regrow(*train("--workers", "2"), cwd=project) as run:
        family = run.wait_for(
            "two pool workers", lambda f: len(pool_workers(f, run)) == 2, timeout=60
        )
        time.sleep(delay)
        family = run.look()
        assert run.process.poll() is None, "the run finished before it could be killed"
        killed = time.monotonic()
        os.kill(run.pid, signal.SIGKILL)
        run.process.wait()
        left = gone_within(run, killed)
        took = {name: round(at - killed, 2) for name, at in run.ended.items()}
        names = {pid: line[:70] for pid, line in family.items()}
        context = f"killed {delay:.2f} s after the workers started; processes: {names}"
        assert left == {}, f"still running {GRACE} s after kill -9: {left}; {context}"
        assert set(took) == {"stdout", "stderr"}, f"a pipe never ended: {took}; {context}"
        assert max(took.values()) < GRACE, context


def test_ctrl_c_stops_train_with_workers_and_everything_it_started(project: Path) -> None:
    with regrow(*train("--workers", "2"), cwd=project) as run:
        run.wait_for("two pool workers", lambda f: len(pool_workers(f, run)) == 2, timeout=60)
        time.sleep(0.5)
        interrupted = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        status = run.process.wait(timeout=30)
        left = gone_within(run, interrupted)
        assert status == 130, run.output.get("stderr")
        assert left == {}, f"still running {GRACE} s after Ctrl-C: {left}"
        assert len(run.ended) == 2
        assert b"Traceback" not in run.output["stderr"], run.output["stderr"][-3000:]


def test_a_finished_train_with_workers_leaves_no_process(project: Path) -> None:
    with regrow("train", "models.py:small", "--snapshot", "old", "--home", "ws", "--json",
                "--workers", "2", cwd=project) as run:  # fmt: skip
        status = run.process.wait(timeout=120)
        done = time.monotonic()
        left = gone_within(run, done)
        assert status == 0, run.output.get("stderr")
        assert left == {}
        assert max(run.ended.values()) - done < GRACE
        assert b'"trained": ["m0", "m1", "m2", "ensemble"]' in run.output["stdout"]
        # What the workers printed (scikit-learn's warnings) reached stderr, not --json's stdout.
        assert b"ConvergenceWarning" in run.output["stderr"]
        assert b"Warning" not in run.output["stdout"]


# -- Ray ---------------------------------------------------------------------------------------


def require_ray() -> Path:
    """The `ray` command, or skip (fail in CI) when Ray is missing."""
    cli = Path(sys.executable).with_name("ray")
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Ray is not installed ({exc}); CI must run the Ray tests")
        pytest.skip("Ray is not installed: pip install 'regrow[ray]'")
    if not cli.exists():
        pytest.fail(f"the ray command is missing at {cli}")
    return cli


def ray_tasks(family: dict[int, str]) -> list[int]:
    return [pid for pid, line in family.items() if line.startswith("ray::regrow:")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_of_a_ray_driver_stops_its_tasks_and_its_private_ray(project: Path) -> None:
    require_ray()
    delay = random.uniform(0.0, 2.0)
    with regrow(*train("--backend", "ray", "--workers", "2"), cwd=project) as run:
        run.wait_for("two Ray tasks", lambda f: len(ray_tasks(f)) == 2, timeout=90)
        time.sleep(delay)
        family = run.look()
        assert run.process.poll() is None, "the run finished before it could be killed"
        killed = time.monotonic()
        os.kill(run.pid, signal.SIGKILL)
        run.process.wait()
        left = gone_within(run, killed)
        took = {name: round(at - killed, 2) for name, at in run.ended.items()}
        names = {pid: line[:70] for pid, line in family.items()}
        context = f"killed {delay:.2f} s after two tasks started; processes: {names}"
        # Without the guard, Ray's agents outlived the driver by 60 s, its task workers by 2 s.
        assert left == {}, f"still running {GRACE} s after kill -9: {left}; {context}"
        assert set(took) == {"stdout", "stderr"}, f"a pipe never ended: {took}; {context}"
        assert max(took.values()) < GRACE, context


@dataclass
class Head:
    process: subprocess.Popen[bytes]
    address: str
    env: dict[str, str]
    log: Path

    def died(self) -> bool:
        """Whether the head ended on its own (a test's ``wait_for`` kills it with SIGKILL)."""
        return self.process.poll() is not None and self.process.returncode != -signal.SIGKILL


@pytest.fixture
def ray_heads(tmp_path: Path) -> Iterator[Callable[[], Head]]:
    """Starts one-node Ray clusters (:func:`_ray_head`), each stopped at the test's end."""
    with contextlib.ExitStack() as stack:
        made = itertools.count()
        yield lambda: stack.enter_context(_ray_head(tmp_path / f"head{next(made)}"))


@contextlib.contextmanager
def _ray_head(tmp_path: Path) -> Iterator[Head]:
    """A one-node Ray cluster (two CPUs) of its own: own folder, ports and auth token."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cli = require_ray()
    folder = tempfile.mkdtemp(prefix="rgorph", dir="/tmp")  # short: Ray's socket paths
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
    }
    args = [
        str(cli), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
        "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={folder}",
        "--disable-usage-stats", f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", f"--object-store-memory={100 * 1024**2}",
    ]  # fmt: skip
    log = tmp_path / "head.log"
    with open(log, "wb") as out:
        head = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Head(head, f"127.0.0.1:{port}", env, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=5)
        for pid in processes():  # every process of this cluster: its folder is in its args
            if folder in cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_kill_9_of_a_driver_on_a_ray_cluster_stops_its_tasks(
    project: Path, ray_heads: Callable[[], Head], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's own behaviour, which regrow relies on: the job of a dead driver ends, and the
    raylets kill its workers (tasks are never detached).

    A head that dies on its own before the tasks start (exit status 1 once in CI, while the
    other worker ran tests of its own) is the machine's, not what this test checks: the run
    is tried once more on a fresh cluster, and a second such death fails with its log."""
    for attempt in (1, 2):
        ray_head = ray_heads()
        try:
            _dead_drivers_tasks_stop(project, ray_head, monkeypatch)
            return
        except pytest.fail.Exception:
            if not ray_head.died():
                raise
            if attempt == 2:
                pytest.fail(f"the Ray head died twice; its log: {ray_head.log.read_text()[-3000:]}")


def _dead_drivers_tasks_stop(
    project: Path, ray_head: Head, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.setenv(key, ray_head.env[key])  # the command started below inherits them
    cluster = Command(ray_head.process)  # the head's processes: the cluster's workers
    with regrow(*train("--backend", "ray", "--address", ray_head.address), cwd=project) as run:
        family = cluster.wait_for("two Ray tasks", lambda f: len(ray_tasks(f)) == 2, timeout=90)
        tasks = {pid: cluster.seen[pid] for pid in ray_tasks(family)}
        time.sleep(random.uniform(0.0, 1.0))
        killed = time.monotonic()
        os.kill(run.pid, signal.SIGKILL)
        run.process.wait()
        while time.monotonic() - killed < GRACE:
            running = [p for p, t in tasks.items() if (s := stat(p)) and s[3] == t and s[0] != "Z"]
            if not running and len(run.ended) == 2:
                break
            time.sleep(0.05)
        assert running == [], f"the dead driver's tasks still run after {GRACE} s: {running}"
        assert len(run.ended) == 2
        assert max(run.ended.values()) - killed < GRACE
