"""Fixtures of ``benchmarks/reliability.py``: the 12-component system, process tags, a Ray cluster.

- :func:`build` is the system the benchmark trains, kills and races, loaded by the command
  line as ``benchmarks/_reliability_system.py:build``: four scalers, seven members (three
  logistic regressions, four boosted-tree classifiers) and their ensemble, on the columns of
  :func:`regrow.demo.make_window`. Its seed is ``$REGROW_BENCH_SEED`` (default 0), so each
  trial has fingerprints of its own and trains everything anew; ``$REGROW_BENCH_ITER`` sets
  the boosted trees' iterations (default 200), which sizes a run.
- :func:`tagged` finds every process whose environment carries ``$REGROW_BENCH_TRIAL`` with a
  given value (a command and all it started, wherever they were reparented);
  :func:`kill_all` ends processes by id.
- :class:`RayCluster` is a head and a second node, one CPU each, on loopback, in a temporary
  folder of their own and on free ports, with an auth token of their own (the approach of
  ``tests/test_ray_cluster.py``). Every one of its processes carries ``$REGROW_BENCH_CLUSTER``,
  so :meth:`RayCluster.stop` leaves none behind.

Only the standard library, scikit-learn and regrow are imported here: the command line
imports this file for every run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform

NUMERIC = ["tenure_months", "monthly_fee", "sessions_per_week", "support_calls"]
SCALED = [f"t_{c}" for c in NUMERIC]
GEO = ["distance_km", "network_quality"]
TAG = "REGROW_BENCH_TRIAL"


def _trees() -> HistGradientBoostingClassifier:
    iterations = int(os.environ.get("REGROW_BENCH_ITER", "200"))
    return HistGradientBoostingClassifier(
        max_iter=iterations, learning_rate=0.05, max_leaf_nodes=15, early_stopping=False
    )


def build() -> System:
    """Twelve components: 4 transforms, 7 members, 1 ensemble; seed from the environment."""
    transforms = [Transform(f"t_{c}", StandardScaler(), inputs=[c]) for c in NUMERIC]
    members = [
        Member("m0", LogisticRegression(max_iter=500), inputs=SCALED[:2]),
        Member("m1", LogisticRegression(max_iter=500), inputs=SCALED[2:]),
        Member("m2", LogisticRegression(max_iter=500), inputs=GEO),
        Member("m3", _trees(), inputs=NUMERIC[:2]),
        Member("m4", _trees(), inputs=NUMERIC[2:]),
        Member("m5", _trees(), inputs=GEO),
        Member("m6", _trees(), inputs=[*SCALED, *GEO]),
    ]
    return System(
        "twelve",
        target="churned",
        seed=int(os.environ.get("REGROW_BENCH_SEED", "0")),
        components=[
            *transforms,
            *members,
            Ensemble("ensemble", weights={m.name: 1.0 for m in members}),
        ],
    )


# -- processes --------------------------------------------------------------------------------


def _environ_has(pid: str, needle: bytes, prefix: bool) -> bool:
    with contextlib.suppress(OSError):
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry == needle or (prefix and entry.startswith(needle)):
                return True
    return False


def tagged(name: str, value: str, *, prefix: bool = False) -> list[int]:
    """Live processes whose environment has ``name=value`` (``value`` a prefix if asked).

    Zombies have an empty environment and are not counted; nor is this process.
    """
    needle = f"{name}={value}".encode()
    return [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and int(p) != os.getpid() and _environ_has(p, needle, prefix)
    ]


def cmdline(pid: int) -> str:
    """The command line of ``pid``, spaces for NULs, at most 120 characters ('' if gone)."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    return ""


def kill_all(pids: list[int]) -> None:
    """SIGKILL each of ``pids`` (processes this benchmark started, found by their tags)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group that ``process`` leads (started with a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


# -- a two-node Ray cluster -------------------------------------------------------------------

_WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])
while sum(bool(n["Alive"]) for n in ray.nodes()) < 2:
    if time.monotonic() > deadline:
        sys.exit("the second Ray node did not join")
    time.sleep(0.5)
ray.shutdown()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayCluster:
    """A head and a second node on loopback, one CPU each (a context manager).

    ``env`` is what a driver needs to join it (the cluster's auth token). ``busy_workers()``
    lists its worker processes that are running a task.
    """

    def __init__(self, python: str = sys.executable, object_store: int = 100 * 1024**2) -> None:
        self.python = python
        self.object_store = object_store
        self.folder = tempfile.mkdtemp(prefix="rgbench", dir="/tmp")  # short: socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> RayCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _node_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.env,
            "RAY_USAGE_STATS_ENABLED": "0",
            "REGROW_BENCH_CLUSTER": self.folder,
        }

    def start(self, timeout: float = 120) -> None:
        cli = Path(self.python).parent / "ray"
        common = [
            "--block",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            "--num-gpus=0",
            f"--memory={1024**3}",
            f"--object-store-memory={self.object_store}",
            f"--temp-dir={self.folder}",
            "--disable-usage-stats",
        ]
        head = [
            "--head",
            f"--port={self.port}",
            "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}",
        ]
        for i, extra in enumerate([head, [f"--address={self.address}"]]):
            log = Path(self.folder) / f"node{i}.log"
            args = [
                str(cli),
                "start",
                *extra,
                *common,
                f"--dashboard-agent-listen-port={free_port()}",
            ]
            with open(log, "wb") as out:
                self._processes.append(
                    subprocess.Popen(
                        args,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=self._node_env(),
                        start_new_session=True,
                    )
                )
            if i == 0:
                self._wait_for_head(log, timeout)
        done = subprocess.run(
            [self.python, "-c", _WAIT_FOR_NODES, self.address, str(timeout)],
            env={**os.environ, **self.env},
            capture_output=True,
            timeout=timeout + 30,
        )
        if done.returncode != 0:
            node = (Path(self.folder) / "node1.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the Ray cluster did not come up: {done.stderr[-2000:]!r} {node}")

    def _wait_for_head(self, log: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._processes[0].poll() is not None:
                raise RuntimeError(f"the Ray head exited: {log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Ray head did not listen on {self.port}: {log.read_text()[-2000:]}")

    def pids(self) -> list[int]:
        """Every live process of the cluster (nodes, daemons, workers)."""
        return tagged("REGROW_BENCH_CLUSTER", self.folder)

    def busy_workers(self) -> list[int]:
        """Worker processes of the cluster that are running a task.

        Ray titles a worker ``ray::IDLE`` between tasks and ``ray::<task name>`` while it runs
        one (regrow names its tasks ``regrow:<component>``); a node's agents are titled
        ``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``.
        """
        busy = []
        for pid in self.pids():
            title = cmdline(pid).split(" ")[0]
            if title.startswith("ray::") and title != "ray::IDLE" and not title.endswith("Agent"):
                busy.append(pid)
        return busy

    def stop(self) -> None:
        """SIGTERM each node's process group, then SIGKILL whatever of the cluster is left."""
        for process in reversed(self._processes):  # the worker node first, then the head
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self._processes:
            kill_group(process)
        while time.monotonic() < deadline and self.pids():
            time.sleep(0.2)
        kill_all(self.pids())  # daemons that left the groups (raylet's workers, agents)
        time.sleep(0.5)
        left = self.pids()
        shutil.rmtree(self.folder, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray processes outlived the cluster: {left}")
