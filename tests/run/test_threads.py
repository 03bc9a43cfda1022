"""A task's native thread pools: one OpenMP thread on small data, a share of the CPUs while
several tasks fit at once, and an explicit setting left alone (see regrow._threads).

Every test starts its tasks with 8 OpenMP and BLAS threads, more than any limit it expects,
so a limit shows on any machine. The components record the pools their fit saw.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

from regrow import Member, _threads
from regrow.catalog.store import ArtifactStore, open_store
from regrow.run.backends import LocalBackend
from regrow.run.tasks import TaskResult, TaskSpec, load_fitted, run_task

START = 8  # threads every pool has when a task starts


def pools() -> dict[str, int]:
    """The fewest threads of each kind of pool, as this thread sees them."""
    seen: dict[str, int] = {}
    for lib in threadpool_info():
        api = lib["user_api"]
        seen[api] = min(seen.get(api, lib["num_threads"]), lib["num_threads"])
    return seen


# A fit on as many columns as a key of ``sys.modules[GATES].gates`` says it started, then
# waits to be released. (Looked up by name: cloudpickle copies what a function refers to.)
GATES = "regrow-test-thread-gates"


class Recording(LogisticRegression):  # type: ignore[misc]
    """Records the pools its fit saw in ``pools_`` (and waits for its gate, if it has one)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Recording:
        gate = getattr(sys.modules.get(GATES), "gates", {}).get(str(X.shape[1]))
        if gate is not None:
            started, release = gate
            started.set()
            assert release.wait(60), "the other task never finished"
        self.pools_ = pools()
        super().fit(X, y, sample_weight)
        return self


@pytest.fixture(autouse=True)
def _start_wide(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No thread variable set; BLAS at START threads (put back after the test)."""
    for var in _threads.THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    with threadpool_limits(START):
        yield


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return open_store(tmp_path / "store")


def task(store: ArtifactStore, rows: int, features: int = 2, name: str = "m") -> TaskSpec:
    """A task fitting a Recording member on ``rows`` rows of ``features`` columns."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(rows, features)), columns=[f"x{i}" for i in range(8)][:features]
    )
    frame["y"] = (frame["x0"] > 0).astype(int)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    inputs = [c for c in frame.columns if c != "y"]
    return TaskSpec(
        name=name,
        component=Member(name, Recording(), inputs),
        target="y",
        seed=0,
        store_url=store.url,
        snapshot_artifact=store.put(sink.getvalue()),
        columns=(*inputs, "y"),
    )


def seen(store: ArtifactStore, result: TaskResult) -> dict[str, int]:
    estimator = load_fitted(store.get(result.artifact)).estimator
    return dict(estimator.pools_)


def run_here(spec: TaskSpec) -> TaskResult:
    """``spec`` run in this thread, its OpenMP pool starting at START threads."""
    with threadpool_limits(START, user_api="openmp"):  # OpenMP's count is per thread
        return run_task(spec)


def test_a_task_alone_on_small_data_fits_with_one_openmp_thread(store: ArtifactStore) -> None:
    assert seen(store, run_here(task(store, 500))) == {"openmp": 1, "blas": START}


def test_a_task_alone_on_large_data_keeps_the_threads_it_had(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_threads, "ONE_THREAD_BELOW", 100)
    assert seen(store, run_here(task(store, 500))) == {"openmp": START, "blas": START}


def test_an_explicit_omp_num_threads_is_left_alone(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", str(START))
    assert seen(store, run_here(task(store, 500))) == {"openmp": START, "blas": START}


def test_a_task_fitting_alongside_another_in_this_process_gets_its_share_of_the_cpus(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs in threads of one process: the second task starts while the first fits, so
    its OpenMP pool and the process's BLAS pool get 4 CPUs // 2 tasks; BLAS is put back
    when one task is left."""
    monkeypatch.setattr(_threads, "ONE_THREAD_BELOW", 100)  # large data: no one-thread rule
    monkeypatch.setattr(_threads, "cpus", lambda: 4)
    first, second = task(store, 500, features=3, name="first"), task(store, 500, name="second")
    started, release = threading.Event(), threading.Event()
    monkeypatch.setitem(sys.modules, GATES, SimpleNamespace(gates={"3": (started, release)}))
    results: dict[str, TaskResult] = {}
    thread = threading.Thread(target=lambda: results.setdefault("first", run_here(first)))
    thread.start()
    try:
        assert started.wait(60), "the first task never started fitting"
        results["second"] = run_here(second)  # while the first fits
    finally:
        release.set()
        thread.join(60)
    assert seen(store, results["second"]) == {"openmp": 2, "blas": 2}
    # the first started alone: its OpenMP count was set then; BLAS is the process's
    assert seen(store, results["first"]) == {"openmp": START, "blas": START}
    assert pools()["blas"] == START


def test_tasks_in_worker_processes_fit_with_their_share_of_the_cpus(
    store: ArtifactStore,
) -> None:
    backend = LocalBackend(max_workers=2)
    try:
        outcomes = [o for _, o in backend.run([task(store, 500, name=n) for n in "ab"])]
    finally:
        backend.close()
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert isinstance(outcome, TaskResult)
        assert seen(store, outcome)["openmp"] <= max(1, _threads.cpus() // 2)


def test_the_pools_are_found_once_and_again_after_new_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Finding the pools walks the loaded libraries (about 2.5 ms): a plan's probes and each
    # task paid it on every call.
    with threadpool_limits(limits=START, user_api="openmp"):
        found = _threads._pools()
        assert _threads._pools() is found
        with _threads.small_data_threads(100):
            assert pools()["openmp"] == 1
        assert pools()["openmp"] == START
        monkeypatch.setitem(sys.modules, "regrow-test-newly-imported", SimpleNamespace())
        assert _threads._pools() is not found  # a library imported since may bring a pool
