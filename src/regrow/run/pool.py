"""The local backend's worker processes: they die with their parent and keep its pipes free.

:class:`WorkerPool` is a ``ProcessPoolExecutor`` on ``forkserver`` (OpenMP libraries never
inherit a forked lock) with these safeguards. Without them, killing the parent (``kill -9``,
the OOM killer) left the workers, the fork server and multiprocessing's resource tracker
running for minutes, and they held the parent's stdout and stderr open: a caller reading the
dead command's output waited for an end that never came.

- **A guard process** (:class:`~regrow.run.guard.Guard`, started with the pool) learns the
  fork server's pid and each worker's as they start. When the parent dies it SIGKILLs them
  all at once, whatever they are doing, and any child of the fork server that was not named
  yet. The resource tracker then sees the end of its own pipe, removes the semaphores the
  dead processes left, and exits. Nothing polls.
- **A lifeline in each worker**, in case the guard is gone too (``kill -9`` of the whole
  process group): the parent keeps the only write end of a pipe, and a watchdog thread in
  each worker blocks on the read end (and, on Linux, on a pidfd of the parent) and ends the
  worker when it closes. It starts with the worker's initializer, only after the worker has
  imported the parent's ``__main__`` (seconds for the ``regrow`` command, whose workers
  measured 1.6-4.8 s from fork to initializer on 2 busy cores: Python 3.11's fork server does
  not preload ``__main__``), which is why the guard comes first.
- **Free pipes.** A worker's stdin, stdout and stderr are ``/dev/null``, except while it runs
  a task: then stdout and stderr go to a temporary file. What a task printed comes back with
  its outcome (see :func:`outcome_of`): a finished task's output is written to the parent's
  stderr, and a failed task's error carries the last lines of its output.
- **Ctrl-C reaches the parent only.** Workers ignore SIGINT (the terminal sends it to the
  whole process group); the parent cancels the run and stops the workers itself.

``prctl(PR_SET_PDEATHSIG)`` is not used: a pool worker's parent is the fork server, not the
process that owns the pool, and the "parent" it watches is the *thread* that forked, so set
on the fork server it would kill the pool when the thread that first used it ended.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.forkserver
import os
import select
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.connection import Connection
from typing import IO

from regrow.errors import RunError
from regrow.run.guard import Guard
from regrow.run.tasks import TaskResult, TaskSpec, run_task

__all__ = ["OUTPUT_LIMIT", "WorkerPool", "outcome_of"]

OUTPUT_LIMIT = 64 * 1024
"""The most bytes of a task's output that come back to the parent (the last ones)."""

_ERROR_LINES = 30  # lines of a failed task's output quoted in its error
_NOTE = "output of the task (stdout and stderr):\n"
_PARENT_GONE = 70  # a worker's exit status when its parent died (nobody reads it)
_STOP_SECONDS = 5.0  # how long a terminated worker may take to exit before it is killed

WorkerReply = tuple[TaskResult, str]
"""What a worker sends back for a finished task: its result and what it printed."""


class WorkerPool:
    """``max_workers`` forkserver processes that run tasks (see the module docstring).

    Each worker limits its OpenMP/BLAS threads to its share of the CPUs: without that, two
    workers on two cores ran boosted-tree fits 10-75x slower.
    """

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        ctx = multiprocessing.get_context("forkserver")
        threads = max(1, (os.cpu_count() or 1) // max_workers)
        # The parent's end is non-inheritable: only this process holds it.
        self._lifeline_r, self._lifeline_w = ctx.Pipe(duplex=False)
        self._executor = ProcessPoolExecutor(
            max_workers=max_workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(threads, self._lifeline_r, os.getpid()),
        )
        self._guard = Guard()
        # Start the fork server now, so that the guard knows it before it forks a worker.
        _start_forkserver()
        self._name_to_guard()

    def __repr__(self) -> str:
        return f"WorkerPool(max_workers={self.max_workers})"

    def submit(self, spec: TaskSpec) -> Future[WorkerReply]:
        """Run ``spec`` in a worker; the future's result is (TaskResult, output)."""
        future = self._executor.submit(_run_captured, spec)
        self._name_to_guard()  # submit() started any worker it needed
        return future

    def pids(self) -> set[int]:
        """The pids of the worker processes started so far."""
        return set(getattr(self._executor, "_processes", None) or {})

    def shutdown(self, *, wait: bool) -> None:
        """Stop taking tasks and cancel those not started; ``wait`` for the running ones,
        else leave them to end on their own."""
        self._executor.shutdown(wait=wait, cancel_futures=True)
        self._release()

    def terminate(self) -> None:
        """Stop the workers now, killing the tasks they are running."""
        terminate = getattr(self._executor, "terminate_workers", None)  # Python >= 3.14
        if terminate is not None:
            terminate()
        else:  # before 3.14 the pool has no public way to stop a running task
            self._stop_workers()
        self._release()

    def _stop_workers(self) -> None:
        """Stop the pool and kill its workers, leaving no thread of it behind.

        In this order, because of two races in Python 3.11's pool: its manager thread first
        drops the cancelled tasks (else, on seeing its workers die, it sets an error on a
        future the caller cancelled and prints a traceback); and it is joined before this
        returns (else it may close its wake-up pipe while the interpreter's exit hook writes
        to it: "Exception ignored ... Bad file descriptor" after a Ctrl-C).
        """
        executor = self._executor
        manager = getattr(executor, "_executor_manager_thread", None)
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + _STOP_SECONDS
        while (
            manager is not None
            and manager.is_alive()
            and getattr(executor, "_cancel_pending_futures", False)
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)  # until the manager has dropped the cancelled tasks
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(_STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join(_STOP_SECONDS)
        if manager is not None:
            manager.join(_STOP_SECONDS)

    def _name_to_guard(self) -> None:
        """Name the fork server (restarted if it died) and new workers to the guard."""
        server = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
        if isinstance(server, int):
            self._guard.watch(server, server=True)
        for pid in sorted(self.pids()):
            self._guard.watch(pid)

    def _release(self) -> None:
        """Dismiss the guard (the pool stopped its processes itself) and close the lifeline:
        a worker still alive ends itself."""
        self._guard.dismiss()
        self._lifeline_w.close()
        self._lifeline_r.close()


def outcome_of(future: Future[WorkerReply], name: str) -> TaskResult | BaseException:
    """The outcome of a finished worker task; what it printed goes to this process's stderr.

    A task that printed and then failed comes back as a RunError naming the component, with
    its error and the last lines of its output (the original error is the cause).
    """
    error = future.exception()
    if error is None:
        result, output = future.result()
        if output:
            sys.stderr.write(output if output.endswith("\n") else output + "\n")
            sys.stderr.flush()
        return result
    notes = getattr(error, "__notes__", None) or []
    output = next((n.removeprefix(_NOTE) for n in notes if n.startswith(_NOTE)), "")
    if not output:
        return error
    tail = "\n".join(output.rstrip("\n").splitlines()[-_ERROR_LINES:])
    wrapped = RunError(
        f"component {name!r} failed in a worker process: {type(error).__name__}: {error}\n"
        f"Last lines of its output:\n{tail}",
        hint="fix the cause and run again: finished components are reused",
    )
    wrapped.__cause__ = error
    return wrapped


# -- in the worker ---------------------------------------------------------------------------


def _start_forkserver() -> None:
    """Start the fork server with SIGINT ignored, so that the workers it forks ignore a
    terminal's Ctrl-C from birth: a process that starts with SIGINT ignored keeps it so, and
    the fork server gives its children the handlers it started with. (Set only in the
    initializer, a worker still importing when Ctrl-C came printed a KeyboardInterrupt
    traceback to the terminal.) The parent alone stops its workers, as :meth:`terminate`
    does."""
    if threading.current_thread() is not threading.main_thread():
        multiprocessing.forkserver.ensure_running()  # signal handlers are the main thread's
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(threads: int, lifeline: Connection, parent: int) -> None:
    """Pool initializer: free the parent's pipes, watch the parent, limit threads."""
    _release_stdio()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched = [lifeline.fileno()]
    pidfd_open = getattr(os, "pidfd_open", None)  # Linux >= 5.3
    if pidfd_open is not None:
        with contextlib.suppress(OSError):
            watched.append(pidfd_open(parent))  # readable once the parent has exited
    threading.Thread(target=_watch, args=(watched,), name="regrow-lifeline", daemon=True).start()
    _limit_threads(threads)


def _watch(fds: list[int]) -> None:
    """End this worker as soon as the lifeline reaches EOF or the parent's pidfd fires."""
    select.select(fds, [], [])  # nothing is ever written: any readiness means the parent died
    os._exit(_PARENT_GONE)


def _limit_threads(threads: int) -> None:
    """Each worker uses its share of the CPUs for OpenMP/BLAS (LightGBM, XGBoost, numpy), or
    fewer threads where the environment it inherited asks for fewer (a user's
    ``OMP_NUM_THREADS=1`` is kept: a limit only ever lowers a pool's threads)."""
    from threadpoolctl import threadpool_limits

    from regrow._threads import THREAD_VARIABLES

    chosen: dict[str, int] = {}
    for var in THREAD_VARIABLES:
        given = os.environ.get(var, "").strip()
        chosen[var] = min(threads, int(given)) if given.isdigit() and int(given) > 0 else threads
        os.environ[var] = str(chosen[var])
    blas = min(chosen["OPENBLAS_NUM_THREADS"], chosen["MKL_NUM_THREADS"])
    threadpool_limits(limits={"openmp": chosen["OMP_NUM_THREADS"], "blas": blas})


def _release_stdio() -> None:
    """Point fds 0, 1 and 2 at /dev/null: the parent's terminal or pipes are not held."""
    _flush_stdio()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _flush_stdio() -> None:
    """Flush Python's and the C library's buffered output, so it lands before fds move."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or replaced stream
            stream.flush()
    with contextlib.suppress(Exception):  # no C library to reach (not POSIX)
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _stdio_to(sink: IO[bytes]) -> Iterator[None]:
    """Send fds 1 and 2 (Python's prints and C libraries' alike) to ``sink`` for a while."""
    _flush_stdio()
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        _release_stdio()


def _tail(sink: IO[bytes]) -> str:
    size = sink.seek(0, os.SEEK_END)
    start = max(0, size - OUTPUT_LIMIT)
    sink.seek(start)
    text = sink.read().decode("utf-8", errors="replace")
    return f"[... {start} bytes cut ...]\n{text}" if start else text


def _run_captured(spec: TaskSpec) -> WorkerReply:
    """What a worker runs: the task, with what it prints captured and sent back."""
    with tempfile.TemporaryFile() as sink:
        try:
            with _stdio_to(sink):
                result = run_task(spec)
        except BaseException as exc:
            output = _tail(sink)
            if output:
                _add_note(exc, _NOTE + output)
            raise
        return result, _tail(sink)


def _add_note(exc: BaseException, note: str) -> None:
    with contextlib.suppress(Exception):  # an exception type that takes no attributes
        exc.add_note(note)
