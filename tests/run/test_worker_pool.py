"""The local backend's worker processes: what they print, the pipes they hold, how they end.

The end-to-end checks (kill -9 and Ctrl-C of the `regrow` command) are in test_orphans.py;
these look at one pool in this process.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regrow import Member
from regrow.catalog.store import ArtifactStore
from regrow.errors import RunError
from regrow.run.backends import LocalBackend
from regrow.run.tasks import TaskResult, TaskSpec

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").exists(), reason="reads the workers' file descriptors in /proc"
)


def task(store: ArtifactStore, frame: pd.DataFrame, name: str, estimator: object) -> TaskSpec:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return TaskSpec(
        name=name,
        component=Member(name, estimator, inputs=["a", "b"]),
        target="y",
        seed=7,
        store_url=store.url,
        snapshot_artifact=store.put(sink.getvalue()),
        columns=("a", "b", "y"),
    )


def chatty(store: ArtifactStore, frame: pd.DataFrame) -> list[TaskSpec]:
    """Two tasks that print while they fit: from C (liblinear) and from Python (the MLP)."""
    return [
        task(store, frame, "liblinear", LogisticRegression(solver="liblinear", verbose=1)),
        task(store, frame, "mlp", MLPClassifier(max_iter=3, verbose=True, random_state=0)),
    ]


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    pool = LocalBackend(max_workers=2)
    yield pool
    pool.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def test_what_worker_tasks_print_reaches_stderr_and_never_stdout(
    backend: LocalBackend,
    store: ArtifactStore,
    frame: pd.DataFrame,
    capfd: pytest.CaptureFixture[str],
) -> None:
    outcomes = {t.name: o for t, o in backend.run(chatty(store, frame))}
    assert all(isinstance(o, TaskResult) for o in outcomes.values()), outcomes
    out, err = capfd.readouterr()
    assert "[LibLinear]" in err  # printf in C
    assert "Iteration 1, loss" in err  # print() in Python
    assert out == ""  # a --json report on stdout stays parseable


def test_a_failed_worker_task_quotes_the_end_of_its_output(
    backend: LocalBackend,
    store: ArtifactStore,
    frame: pd.DataFrame,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The pipeline prints after its first step, then its second step refuses C=-1.
    verbose = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=-1.0))])
    verbose.set_params(verbose=True)
    tasks = [task(store, frame, "noisy", verbose), task(store, frame, "fine", LogisticRegression())]
    outcomes = {t.name: o for t, o in backend.run(tasks)}
    assert isinstance(outcomes["fine"], TaskResult)
    error = outcomes["noisy"]
    assert isinstance(error, RunError)
    message = str(error)
    assert message.startswith("component 'noisy' failed in a worker process: ")
    assert "'C' parameter" in message  # the cause itself
    assert "(step 1 of 2) Processing scale" in message  # what it printed
    assert "'C' parameter" in str(error.__cause__)
    assert capfd.readouterr().out == ""


def test_workers_hold_none_of_the_parents_stdio_and_ignore_ctrl_c(
    backend: LocalBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    assert all(isinstance(o, TaskResult) for _, o in backend.run(chatty(store, frame)))
    pool = backend._pool
    assert pool is not None
    workers = pool.pids()
    assert len(workers) == 2
    for pid in workers:
        held = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)}
        assert held == {0: os.devnull, 1: os.devnull, 2: os.devnull}, (pid, held)
        os.kill(pid, signal.SIGINT)  # Ctrl-C is for the parent, which stops the workers
    time.sleep(0.5)
    assert all(alive(pid) for pid in workers)
    assert all(isinstance(o, TaskResult) for _, o in backend.run(chatty(store, frame)))
    assert pool.pids() == workers  # the same workers ran the next tasks


def test_workers_end_themselves_when_their_lifeline_closes(
    backend: LocalBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    """The fallback when the guard is gone too: the parent's end of the lifeline closes
    (here by hand; the kernel does it when the parent dies) and the workers exit."""
    assert all(isinstance(o, TaskResult) for _, o in backend.run(chatty(store, frame)))
    pool = backend._pool
    assert pool is not None
    workers = pool.pids()
    pool._guard.dismiss()
    pool._lifeline_w.close()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def test_closing_the_backend_stops_the_guard_and_the_workers(
    store: ArtifactStore, frame: pd.DataFrame
) -> None:
    backend = LocalBackend(max_workers=2)
    assert all(isinstance(o, TaskResult) for _, o in backend.run(chatty(store, frame)))
    pool = backend._pool
    assert pool is not None
    workers, guard = pool.pids(), pool._guard.pid
    assert guard is not None
    assert alive(guard)
    backend.close()
    assert not alive(guard)
    assert not any(alive(pid) for pid in workers)


@pytest.mark.parametrize(
    ("given", "share", "kept"),
    [(None, 2, "2"), ("1", 2, "1"), ("8", 2, "2"), ("zero", 2, "2"), ("0", 4, "4")],
)
def test_a_worker_takes_its_share_of_threads_or_fewer_where_the_environment_asks(
    monkeypatch: pytest.MonkeyPatch, given: str | None, share: int, kept: str
) -> None:
    import threadpoolctl

    from regrow.run import pool

    seen: list[object] = []
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda limits: seen.append(limits))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    if given is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", given)  # the user's, inherited by the worker
    pool._limit_threads(share)
    assert os.environ["OMP_NUM_THREADS"] == kept
    assert os.environ["OPENBLAS_NUM_THREADS"] == str(share)
    assert seen == [{"openmp": int(kept), "blas": share}]
