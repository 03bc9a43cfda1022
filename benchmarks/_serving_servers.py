"""The servers that ``benchmarks/serving.py`` measures, each a process pinned to one core.

:class:`Server` starts a command under ``taskset -c CORE`` with one BLAS/OpenMP thread, waits
until a readiness URL answers 200, and stops it (SIGTERM, then SIGKILL) on exit, so no run
leaves a server behind. The commands:

- :func:`regrow_cmd`: ``regrow serve`` on a workspace;
- :func:`reference_cmd`: the trivial endpoint and the bare FastAPI endpoint
  (``_serving_ref.py``);
- :func:`mlserver_cmd`: MLServer 1.7.1 from its own virtual environment (``--mlserver-python``),
  serving a folder written by :func:`write_mlserver_models` in one of :data:`MLSERVER_CONFIGS`.

:func:`setup_mlserver` creates that environment (the pins of issue #14: MLServer 1.7.1 starts
only with ``uvloop==0.21.0``; scikit-learn and numpy at the versions of the running
interpreter, so the same joblib file loads in both).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import numpy as np

HERE = Path(__file__).resolve().parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

# name -> (server settings, model settings); gzip, debug logging and metrics off in every
# one (MLServer's defaults turn them on: each costs time per request, and none is measured).
MLSERVER_CONFIGS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "workers=0": ({"parallel_workers": 0}, {}),
    "workers=1": ({"parallel_workers": 1}, {}),
    "workers=0 batch=32/2ms": (
        {"parallel_workers": 0},
        {"max_batch_size": 32, "max_batch_time": 0.002},
    ),
    "workers=0 batch=32/5ms": (
        {"parallel_workers": 0},
        {"max_batch_size": 32, "max_batch_time": 0.005},
    ),
    "workers=1 batch=32/2ms": (
        {"parallel_workers": 1},
        {"max_batch_size": 32, "max_batch_time": 0.002},
    ),
    "workers=0 batch=8/1ms": (
        {"parallel_workers": 0},
        {"max_batch_size": 8, "max_batch_time": 0.001},
    ),
}


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(dict.fromkeys(THREAD_VARS, "1"))
    env.update(extra or {})
    return env


class Server:
    """A server process on one core; a context manager that waits for readiness and stops it."""

    def __init__(
        self, name: str, cmd: list[str], port: int, *, ready: str, core: int = 0,
        cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 90.0,
    ) -> None:  # fmt: skip
        self.name, self.cmd, self.port, self.ready = name, cmd, port, ready
        self.core, self.cwd, self.env, self.timeout = core, cwd, env, timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"serving-bench-{name}-{port}.log"

    def __enter__(self) -> Server:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(self.core), *self.cmd], stdout=out,
                stderr=subprocess.STDOUT, cwd=self.cwd, env=pinned_env(self.env),
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.timeout
        url = f"http://127.0.0.1:{self.port}{self.ready}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {self.timeout} s: {self.tail()}")

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group: MLServer's workers too
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (MLServer's workers, say)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes ``pids`` have used so far."""
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _CLOCK_TICKS


class CpuMeter:
    """Samples a server's CPU time every ``every`` seconds in a thread, so that the CPU it got
    in any time window (``perf_counter_ns`` bounds) can be read afterwards: the share of its
    core the server had, which tells how much other work on the machine took from it."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pids = process_tree(pid)
        self.every = every
        self.samples: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.perf_counter_ns(), cpu_seconds(self.pids)))
            if self._stop.wait(self.every):
                self.samples.append((time.perf_counter_ns(), cpu_seconds(self.pids)))
                return

    def share(self, start_ns: int, end_ns: int) -> float:
        """CPU seconds per second between the two times."""
        if len(self.samples) < 2 or end_ns <= start_ns:
            return float("nan")
        t = [float(a) for a, _ in self.samples]
        c = [b for _, b in self.samples]
        used = float(np.interp(end_ns, t, c) - np.interp(start_ns, t, c))
        return used / ((end_ns - start_ns) / 1e9)


def regrow_cmd(home: Path, port: int) -> list[str]:
    exe = shutil.which("regrow") or str(Path(sys.executable).with_name("regrow"))
    return [exe, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)]


def reference_cmd(kind: str, port: int, model_path: Path | None = None) -> list[str]:
    cmd = [sys.executable, str(HERE / "_serving_ref.py"), kind, str(port)]
    return cmd + ([str(model_path)] if model_path else [])


def write_mlserver_models(folder: Path, estimator_path: Path, config: str, port: int) -> Path:
    """A MLServer folder (settings.json, models/bench/model-settings.json) for ``config``."""
    server, model = MLSERVER_CONFIGS[config]
    root = folder / config.replace(" ", "_").replace("/", "-").replace("=", "")
    (root / "models" / "bench").mkdir(parents=True, exist_ok=True)
    shutil.copy(estimator_path, root / "models" / "bench" / "model.joblib")
    settings = {
        "debug": False, "gzip_enabled": False, "metrics_endpoint": None,
        "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
        "host": "127.0.0.1", **server,
    }  # fmt: skip
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "bench", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}, **model,
    }  # fmt: skip
    (root / "models" / "bench" / "model-settings.json").write_text(json.dumps(model_settings))
    return root


def mlserver_cmd(python: str, root: Path) -> list[str]:
    return [python, "-m", "mlserver.cli.main", "start", str(root)]


def setup_mlserver(folder: Path) -> Path:
    """Create MLServer 1.7.1's virtual environment in ``folder``; its interpreter's path."""
    import numpy
    import sklearn

    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    pins = [
        "mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0",
        f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}",
    ]  # fmt: skip
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    return python
