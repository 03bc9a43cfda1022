"""Executor backends: where a run's tasks execute.

The contract (:class:`ExecutorBackend`) is small. ``submit(tasks, depends=...)`` hands a task
graph to the backend and returns a :class:`Submission`: its ``progress()``, ``cancel()`` and
``results()`` (each task's outcome once, as it finishes, failures included). ``run(tasks)`` is
the one-call form the runner uses wave by wave: a generator over ``results()`` that cancels
whatever is still outstanding when it is closed early. ``close()`` cancels every submission
and releases the workers.

Implementations: :class:`LocalBackend` (in-process, or a pool of worker processes) here, and
:class:`regrow.run.ray_backend.RayBackend` (a Ray cluster). :func:`make_backend` builds either
by name, as the CLI's ``--backend`` and the ``[run]`` section of ``config.toml`` do.

Tasks carry only small things (see :class:`~regrow.run.tasks.TaskSpec`): data and fitted
upstream components move through the artifact store, so every backend runs the same task.

>>> backend = make_backend("local")
>>> backend.name, backend.max_workers
('local', 1)
>>> make_backend("dask")
Traceback (most recent call last):
...
regrow.errors.ConfigError: unknown executor backend 'dask'; use one of 'local', 'ray'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, Protocol

from regrow.errors import ConfigError, MissingDependency, RunError
from regrow.run.pool import WorkerPool, WorkerReply, outcome_of
from regrow.run.tasks import TaskResult, TaskSpec, run_task

__all__ = [
    "BACKENDS",
    "ExecutorBackend",
    "LocalBackend",
    "Progress",
    "Submission",
    "TaskOutcome",
    "cancelled_error",
    "check_workers",
    "make_backend",
    "task_order",
]

TaskOutcome = tuple[TaskSpec, TaskResult | BaseException]


def check_workers(workers: object, hint: str = "use 1 to run in-process") -> int:
    """``workers`` if it is an integer >= 1 (not a bool), else a :class:`ConfigError`.

    >>> check_workers(2)
    2
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1 (got {workers!r})", hint=hint)
    return workers


BACKENDS = ("local", "ray")
"""The names :func:`make_backend` accepts."""


@dataclass(frozen=True)
class Progress:
    """How far a submission got: every task is pending, running, or finished one way.

    >>> p = Progress(total=4, succeeded=1, failed=1, cancelled=0, running=1)
    >>> p.pending, p.finished, p.done
    (1, 2, False)
    """

    total: int
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0

    @property
    def finished(self) -> int:
        """Tasks with an outcome: succeeded, failed or cancelled."""
        return self.succeeded + self.failed + self.cancelled

    @property
    def pending(self) -> int:
        """Tasks not started yet (waiting for a worker or for the tasks they depend on)."""
        return self.total - self.finished - self.running

    @property
    def done(self) -> bool:
        """Whether every task has an outcome."""
        return self.finished == self.total


class Submission(Protocol):
    """A task graph handed to a backend: watch it, cancel it, collect its outcomes."""

    tasks: tuple[TaskSpec, ...]

    def progress(self) -> Progress:
        """The counts of pending, running and finished tasks now."""
        ...

    def results(self) -> Iterator[TaskOutcome]:
        """Each task's outcome once, as it finishes; a task's failure is yielded, not raised.

        After :meth:`cancel`, every task without an outcome is yielded with a
        :class:`~regrow.errors.RunError` saying it was cancelled.
        """
        ...

    def cancel(self) -> None:
        """Stop every task that has not finished (tasks already finished keep their outcome)."""
        ...


class ExecutorBackend(Protocol):
    """Runs task graphs: ``submit`` (progress, cancel, results), ``run`` a wave, ``close``."""

    name: str

    def submit(
        self, tasks: Sequence[TaskSpec], *, depends: Mapping[str, Sequence[str]] | None = None
    ) -> Submission:
        """Start ``tasks``; ``depends`` maps a task's name to the names it must wait for.

        A dependency whose name is a key of the dependent's ``upstream`` mapping has that
        entry replaced by the dependency's artifact key when it finishes (the value given in
        the spec is a placeholder); other dependencies only order the tasks. A task whose
        dependency failed or was cancelled is not run: it is yielded with a RunError.
        """
        ...

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[TaskOutcome]:
        """Run independent tasks; yield each outcome as it finishes; never raise for a task.

        Closing the generator early cancels the tasks still outstanding.
        """
        ...

    def close(self) -> None:
        """Cancel what is outstanding and release the workers."""
        ...


def task_order(
    tasks: Sequence[TaskSpec], depends: Mapping[str, Sequence[str]] | None
) -> list[TaskSpec]:
    """``tasks`` in an order where every task comes after those it depends on.

    Raises :class:`~regrow.errors.ConfigError` for duplicate task names, dependencies on
    tasks that are not submitted, and cycles.

    >>> from regrow.run.tasks import TaskSpec
    >>> def spec(name):
    ...     return TaskSpec(name, None, "y", 0, "/tmp/s", None, ())  # type: ignore[arg-type]
    >>> [t.name for t in task_order([spec("b"), spec("a")], {"b": ["a"]})]
    ['a', 'b']
    """
    by_name: dict[str, TaskSpec] = {}
    for task in tasks:
        if task.name in by_name:
            raise ConfigError(
                f"two submitted tasks are named {task.name!r}",
                hint="a submission fits each component once",
            )
        by_name[task.name] = task
    graph = {name: tuple(dict.fromkeys((depends or {}).get(name, ()))) for name in by_name}
    for name, deps in (depends or {}).items():
        if name not in by_name:
            raise ConfigError(
                f"depends names task {name!r}, which is not submitted",
                hint=f"the tasks are {sorted(by_name)}",
            )
        unknown = sorted(set(deps) - set(by_name))
        if unknown:
            raise ConfigError(
                f"task {name!r} depends on {unknown}, which are not submitted",
                hint="submit every task of the graph together, or drop the finished ones "
                "from depends and pass their artifact keys in the spec's upstream",
            )
    ordered: list[TaskSpec] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: placed

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise ConfigError(f"the task graph has a cycle: {cycle}", hint="remove one edge")
        state[name] = 1
        for dep in graph[name]:
            visit(dep, (*path, name))
        state[name] = 2
        ordered.append(by_name[name])

    for task in tasks:
        visit(task.name, ())
    return ordered


def cancelled_error(name: str) -> RunError:
    """The outcome of a task that was cancelled before it finished."""
    return RunError(
        f"component {name!r} was cancelled before it finished",
        hint="run again: finished components are reused",
    )


def upstream_failed_error(name: str, dependency: str) -> RunError:
    """The outcome of a task that did not run because a task it depends on did not finish."""
    return RunError(
        f"component {name!r} was not run: {dependency!r}, which it depends on, did not finish",
        hint=f"fix {dependency!r} and run again: finished components are reused",
    )


def fill_upstream(task: TaskSpec, results: Mapping[str, TaskResult]) -> TaskSpec:
    """``task`` with each ``upstream`` entry that names a finished task set to its artifact."""
    filled = {k: results[k].artifact if k in results else v for k, v in task.upstream.items()}
    return replace(task, upstream=filled) if filled != dict(task.upstream) else task


class _LocalSubmission:
    """A task graph on a :class:`LocalBackend`; ``results()`` drives it."""

    def __init__(
        self,
        tasks: Sequence[TaskSpec],
        depends: Mapping[str, Sequence[str]] | None,
        pool: Callable[[], WorkerPool] | None,
        on_broken: Callable[[], None],
        on_kill: Callable[[], None],
    ) -> None:
        self.tasks = tuple(task_order(tasks, depends))
        self._deps = {t.name: tuple((depends or {}).get(t.name, ())) for t in self.tasks}
        self._pool = pool
        self._on_broken = on_broken
        self._on_kill = on_kill
        self._lock = threading.Lock()
        self._outcomes: dict[str, TaskResult | BaseException] = {}
        self._running: dict[Future[WorkerReply], TaskSpec] = {}
        self._in_process: str | None = None
        self._cancelled = False
        self._cancelled_names: set[str] = set()
        self._broken: RunError | None = None
        self._started = False

    def progress(self) -> Progress:
        with self._lock:
            ok = sum(isinstance(o, TaskResult) for o in self._outcomes.values())
            cancelled = len(self._cancelled_names)
            running = len(self._running) + (self._in_process is not None)
            failed = len(self._outcomes) - ok - cancelled
            return Progress(len(self.tasks), ok, failed, cancelled, running)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            stuck = [f for f in self._running if not f.cancel() and not f.done()]
        if stuck:  # running in a worker process: stop the workers
            self._on_kill()

    def _blocked_by(self, task: TaskSpec) -> str | None:
        for dep in self._deps[task.name]:
            outcome = self._outcomes.get(dep)
            if outcome is not None and not isinstance(outcome, TaskResult):
                return dep
        return None

    def _ready(self, task: TaskSpec) -> bool:
        return all(isinstance(self._outcomes.get(d), TaskResult) for d in self._deps[task.name])

    def _finish(self, task: TaskSpec, outcome: TaskResult | BaseException) -> TaskOutcome:
        with self._lock:
            self._outcomes[task.name] = outcome
        return task, outcome

    def _cancel_one(self, task: TaskSpec) -> TaskOutcome:
        with self._lock:
            self._cancelled_names.add(task.name)
        return self._finish(task, cancelled_error(task.name))

    def _waiting(self) -> list[TaskSpec]:
        busy = {t.name for t in self._running.values()}
        return [t for t in self.tasks if t.name not in self._outcomes and t.name not in busy]

    def _results(self) -> dict[str, TaskResult]:
        return {n: o for n, o in self._outcomes.items() if isinstance(o, TaskResult)}

    def results(self) -> Iterator[TaskOutcome]:
        if self._started:
            raise RunError("results() of a submission can be iterated once")
        self._started = True
        if self._pool is None:
            yield from self._run_in_process()
        else:
            yield from self._run_in_pool(self._pool)

    def _run_in_process(self) -> Iterator[TaskOutcome]:
        for task in self.tasks:  # dependency order
            if self._cancelled:
                yield self._cancel_one(task)
                continue
            blocker = self._blocked_by(task)
            if blocker is not None:
                yield self._finish(task, upstream_failed_error(task.name, blocker))
                continue
            self._in_process = task.name
            try:
                outcome: TaskResult | BaseException = run_task(fill_upstream(task, self._results()))
            except Exception as exc:
                outcome = exc
            finally:
                self._in_process = None
            yield self._finish(task, outcome)

    def _run_in_pool(self, get_pool: Callable[[], WorkerPool]) -> Iterator[TaskOutcome]:
        pool = get_pool()
        while len(self._outcomes) < len(self.tasks):
            if self._cancelled:
                yield from self._drain_cancelled()
                return
            for task in self._waiting():
                if self._broken is not None:
                    yield self._finish(task, self._broken)
                elif (blocker := self._blocked_by(task)) is not None:
                    yield self._finish(task, upstream_failed_error(task.name, blocker))
                elif self._ready(task):
                    future = pool.submit(fill_upstream(task, self._results()))
                    with self._lock:
                        self._running[future] = task
            if not self._running:
                continue
            finished, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            if self._cancelled:
                continue
            for future in finished:
                with self._lock:
                    task = self._running.pop(future)
                if future.cancelled():
                    yield self._cancel_one(task)
                    continue
                if isinstance(future.exception(), BrokenProcessPool):
                    self._on_broken()
                    self._broken = RunError(
                        f"the worker processes died while running {task.name!r}",
                        hint="a script that trains with workers > 1 must guard its entry point "
                        "with `if __name__ == '__main__':` (or use workers=1)",
                    )
                    yield self._finish(task, self._broken)
                    continue
                yield self._finish(task, outcome_of(future, task.name))

    def _drain_cancelled(self) -> Iterator[TaskOutcome]:
        """After cancel(): tasks that finished keep their result, every other is cancelled."""
        with self._lock:
            running = dict(self._running)
            self._running.clear()
        for future, task in running.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                yield self._finish(task, outcome_of(future, task.name))
            else:
                yield self._cancel_one(task)
        for task in self.tasks:
            if task.name not in self._outcomes:
                yield self._cancel_one(task)


def _run_submission(submission: Submission) -> Iterator[TaskOutcome]:
    """Yield a submission's outcomes; cancel what is left when the consumer stops early."""
    try:
        yield from submission.results()
    finally:
        submission.cancel()


class LocalBackend:
    """Tasks in this process (the default), or in up to ``max_workers`` worker processes.

    With ``max_workers=1`` (the default) everything runs in-process: no start-up cost, and
    nothing asks the calling script for an ``if __name__ == "__main__":`` guard. With more
    workers, tasks run in a :class:`~regrow.run.pool.WorkerPool` (``forkserver`` processes,
    each limited to its share of the CPUs). The workers die with this process, even when it is
    killed, and never hold its stdin, stdout or stderr: what a task prints is written to this
    process's stderr when it finishes, and a failed task's error quotes its last lines.
    Scripts that use workers must guard their entry point, as for any process pool.

    Cancelling stops every task not yet started; tasks already running in worker processes
    are stopped by terminating those processes (a new pool starts on the next submission).
    In-process, the task running when ``cancel()`` is called finishes first.
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = check_workers(max_workers if max_workers is not None else 1)
        self._pool: WorkerPool | None = None
        self._submissions: list[_LocalSubmission] = []

    def __repr__(self) -> str:
        return f"LocalBackend(max_workers={self.max_workers})"

    def _get_pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self.max_workers)
        return self._pool

    def submit(
        self, tasks: Sequence[TaskSpec], *, depends: Mapping[str, Sequence[str]] | None = None
    ) -> Submission:
        """Start a task graph (see :meth:`ExecutorBackend.submit`); ``results()`` drives it."""
        in_process = self.max_workers == 1 or len(tasks) <= 1
        submission = _LocalSubmission(
            tasks, depends, None if in_process else self._get_pool, self._broken, self._terminate
        )
        self._submissions = [s for s in self._submissions if not s.progress().done]
        self._submissions.append(submission)
        return submission

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[TaskOutcome]:
        """Run independent tasks, yielding outcomes as they finish (see the Protocol)."""
        return _run_submission(self.submit(tasks))

    def _broken(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _terminate(self) -> None:
        """Stop the worker processes now (cancelling tasks they are running); a new pool
        starts on the next submission."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    def close(self) -> None:
        """Cancel outstanding submissions and shut the worker pool down."""
        for submission in self._submissions:
            submission.cancel()
        self._submissions.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def make_backend(
    name: str = "local",
    *,
    address: str | None = None,
    workers: int | None = None,
    **options: Any,
) -> ExecutorBackend:
    """The executor backend called ``name``: ``"local"`` or ``"ray"``.

    ``workers``: for ``local``, the number of worker processes (1: in-process); for ``ray``
    without an ``address``, the CPUs of the private Ray instance it starts. ``address``
    (``ray`` only): a running cluster's ``host:port``, ``ray://host:port`` or ``"auto"``.
    ``options`` go to :class:`~regrow.run.ray_backend.RayBackend` (``num_cpus``, ``memory``,
    ``max_retries``, ...). Unknown names, options that do not apply, and a missing Ray raise
    :class:`~regrow.errors.ConfigError`.
    """
    if not isinstance(name, str) or name.strip().lower() not in BACKENDS:
        raise ConfigError(
            f"unknown executor backend {name!r}",
            hint=f"use one of {', '.join(map(repr, BACKENDS))}",
        )
    kind = name.strip().lower()
    if kind == "local":
        extra = sorted(options) + (["address"] if address is not None else [])
        if extra:
            raise ConfigError(
                f"option(s) {extra} do not apply to the local backend",
                hint="they are options of --backend ray; the local backend takes workers",
            )
        return LocalBackend(workers)
    try:
        from regrow.run.ray_backend import RayBackend, require_ray

        require_ray()
    except MissingDependency as exc:
        raise ConfigError(
            "executor backend 'ray' needs Ray, which is not installed",
            hint="pip install 'regrow[ray]', or use --backend local",
        ) from exc
    return RayBackend(address, workers=workers, **options)
