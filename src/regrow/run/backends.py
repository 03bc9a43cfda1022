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
from typing import Protocol

from regrow.errors import ConfigError
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


class LocalBackend:
    """Tasks in this process, or in up to ``max_workers`` worker processes.

    A single task, or ``max_workers=1``, runs in-process (no start-up cost). Workers start
    with ``forkserver`` so OpenMP libraries (LightGBM, XGBoost) never inherit a forked lock.
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers if max_workers is not None else (os.cpu_count() or 1)
        if self.max_workers < 1:
            raise ConfigError(
                f"workers must be >= 1 (got {max_workers})", hint="use 1 to run in-process"
            )
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=ctx)
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
            yield futures[future], (error if error is not None else future.result())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
