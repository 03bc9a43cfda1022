"""Native thread pools (OpenMP, BLAS) on small data and while several tasks fit at once.

On a few thousand rows, gradient boosting's OpenMP threads cost more than they save, and on a
busy machine their spin-waiting makes a fit 10-50 times slower than one thread (measured on a
2-core machine: DLE's fit 0.1 s -> 7 s; the multivariate check's scikit-learn classifier
0.1 s -> 30 s while two other processes ran; a HistGradientBoosting member on 8,000 rows,
fitted by ``regrow train`` at load 2-3.5, 0.4-1.9 s with one thread, 1.5-25 s with two).
LightGBM takes its thread count per call (``n_jobs``/``num_threads``) instead, and regrow's
small LightGBM models pass 1.

Two rules, for regrow's own small models (:func:`small_data_threads`) and for every component
a task fits (:func:`fitting`, around the fit in :func:`regrow.run.tasks.run_task`):

- **Small data**: under :data:`ONE_THREAD_BELOW` rows, one OpenMP thread.
- **A share of the CPUs**: while ``k`` tasks fit at once in this process (runs in threads), a
  task's OpenMP threads, and the process's BLAS threads, are at most ``max(1, cpus // k)``.
  Worker processes of the local backend get the same share from
  :class:`~regrow.run.pool.WorkerPool`, which sets it in their environment.

A limit only ever lowers a pool's threads. An explicit setting is kept: with
``OMP_NUM_THREADS`` in the environment (the user's, or the share a worker process was given)
a task leaves OpenMP alone, and with any of :data:`THREAD_VARIABLES` set, BLAS. An estimator's
own thread count (LightGBM's ``n_jobs``, a random forest's joblib ``n_jobs``) is its own
business: a limit changes only the OpenMP default that ``n_jobs=None`` falls back on.

OpenMP's thread count is per calling thread, so a task limits its own, as it starts (a task
that started alone keeps its count when others join); BLAS's is the process's, so it is set
while several tasks fit and put back when one is left.

>>> with small_data_threads(1_000):
...     pass
>>> threads_for(1_000, fitting=1, cpus=8), threads_for(10**6, fitting=1, cpus=8)
(1, None)
>>> threads_for(10**6, fitting=3, cpus=8)
2
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ONE_THREAD_BELOW",
    "THREAD_VARIABLES",
    "cpus",
    "fitting",
    "small_data_threads",
    "threads_for",
]

#: Rows under which a boosted model is fitted and read with one OpenMP thread.
ONE_THREAD_BELOW = 50_000

#: Environment variables that set native thread counts; one set means someone chose.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_lock = threading.Lock()
_fitting = 0  # tasks fitting in this process now
_blas: Any = None  # the BLAS share in force while several tasks fit (it can put back)
_found_lock = threading.Lock()  # (taken under _lock: never the other way round)
_controller: Any = None  # the pools found (see _pools), and len(sys.modules) then
_controller_modules = -1


def small_data_threads(n_rows: int) -> Any:
    """A context with one OpenMP thread when ``n_rows`` is under :data:`ONE_THREAD_BELOW`,
    else one that changes nothing."""
    if n_rows < ONE_THREAD_BELOW:
        return _pools().limit(limits=1, user_api="openmp")
    return contextlib.nullcontext()


def _pools() -> Any:
    """threadpoolctl's controller of the process's native thread pools. Finding them walks
    the loaded shared libraries (about 2.5 ms, more with torch loaded), which a probe, a
    monitor's estimator and each task paid on every call: it is found once, and again after
    modules were imported since (a library loaded with them may bring its own pool)."""
    global _controller, _controller_modules
    with _found_lock:
        if _controller is None or len(sys.modules) != _controller_modules:
            from threadpoolctl import ThreadpoolController  # no type info

            _controller = ThreadpoolController()
            _controller_modules = len(sys.modules)
        return _controller


def cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        with contextlib.suppress(OSError):
            return max(1, len(affinity(0)))
    return os.cpu_count() or 1


def threads_for(n_rows: int, *, fitting: int, cpus: int) -> int | None:
    """The most OpenMP threads for a task that fits on ``n_rows`` rows while ``fitting``
    tasks (itself included) fit on ``cpus`` CPUs; None: no limit."""
    if n_rows < ONE_THREAD_BELOW:
        return 1
    return max(1, cpus // fitting) if fitting > 1 else None


@contextlib.contextmanager
def fitting(n_rows: int) -> Iterator[int | None]:
    """A task's fit on ``n_rows`` rows: counted among those fitting in this process, its
    OpenMP threads limited (see the module docstring); yields the limit (None: none)."""
    global _fitting
    with _lock:
        _fitting += 1
        alongside = _fitting
        _share_blas()
    try:
        limit = None
        if "OMP_NUM_THREADS" not in os.environ:
            limit = threads_for(n_rows, fitting=alongside, cpus=cpus())
        with _lower("openmp", limit):
            yield limit
    finally:
        with _lock:
            _fitting -= 1
            _share_blas()


def _lower(user_api: str, limit: int | None) -> Any:
    """A context that lowers ``user_api``'s pools to ``limit`` threads (never raises one)."""
    if limit is None:
        return contextlib.nullcontext()
    pools = _pools().select(user_api=user_api)
    if all(p.num_threads <= limit for p in pools.lib_controllers):
        return contextlib.nullcontext()
    return pools.limit(limits=limit)


def _share_blas() -> None:
    """Under ``_lock``: BLAS at ``cpus // k`` while ``k > 1`` tasks fit, else as it was."""
    global _blas
    if _blas is not None:
        _blas.restore_original_limits()
        _blas = None
    if _fitting > 1 and not any(v in os.environ for v in THREAD_VARIABLES):
        limiter = _lower("blas", max(1, cpus() // _fitting))
        if not isinstance(limiter, contextlib.nullcontext):
            _blas = limiter
