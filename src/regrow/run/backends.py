"""Executor backends: where a run's tasks execute.

A backend takes a wave of independent tasks and yields each one's outcome as it finishes.
The local backend runs them in this process or in a pool of worker processes; the Ray backend
(scale-out issue) implements the same contract.

>>> backend = LocalBackend(max_workers=1)
>>> backend.name
'local'
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from regrow.errors import ConfigError, RunError
from regrow.run.tasks import TaskResult, TaskSpec, run_task

__all__ = ["ExecutorBackend", "LocalBackend", "TaskOutcome"]

TaskOutcome = tuple[TaskSpec, TaskResult | BaseException]


class ExecutorBackend(Protocol):
    """Runs independent tasks and yields ``(task, result or exception)`` as each finishes."""

    name: str

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[TaskOutcome]:
        """Run every task; never raise for a task's own failure, yield it instead."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def _limit_threads(threads: int) -> None:
    """Pool initializer: each worker uses its share of the CPUs, not all of them.

    Without it, every worker's OpenMP/BLAS pool (LightGBM, XGBoost, numpy) starts one
    thread per CPU, and two workers on two cores ran boosted-tree fits 10-75x slower.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


class LocalBackend:
    """Tasks in this process (the default), or in up to ``max_workers`` worker processes.

    With ``max_workers=1`` (the default) everything runs in-process: no start-up cost, and
    nothing asks the calling script for an ``if __name__ == "__main__":`` guard. With more
    workers, a wave of independent tasks runs in a process pool started with ``forkserver``
    (OpenMP libraries never inherit a forked lock), each worker limited to its share of the
    CPUs. Scripts that use workers must guard their entry point, as for any process pool.
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers if max_workers is not None else 1
        if not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise ConfigError(
                f"workers must be >= 1 (got {max_workers})", hint="use 1 to run in-process"
            )
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            threads = max(1, (os.cpu_count() or 1) // self.max_workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_workers,
                mp_context=ctx,
                initializer=_limit_threads,
                initargs=(threads,),
            )
        return self._pool

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[TaskOutcome]:
        if len(tasks) <= 1 or self.max_workers == 1:
            for task in tasks:
                try:
                    yield task, run_task(task)
                except Exception as exc:
                    yield task, exc
            return
        pool = self._get_pool()
        futures: dict[Future[TaskResult], TaskSpec] = {
            pool.submit(run_task, task): task for task in tasks
        }
        for future in as_completed(futures):
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                self.close()
                error = RunError(
                    f"the worker processes died while running {futures[future].name!r}",
                    hint="a script that trains with workers > 1 must guard its entry point "
                    "with `if __name__ == '__main__':` (or use workers=1)",
                )
            yield futures[future], (error if error is not None else future.result())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
