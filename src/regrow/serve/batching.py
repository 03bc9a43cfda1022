"""Adaptive micro-batching: concurrent requests for one version share one ``predict`` call.

A model's ``predict`` has a fixed cost per call (building a frame, checking it, scikit-learn's
input validation) that dwarfs the cost per row for small requests. A :class:`Batcher` takes
the requests that arrive while a ``predict`` runs and scores them together in the next one,
so that under load one call serves many requests, and at low load a request is scored at
once: there is no fixed wait, the batch is whatever queued meanwhile (up to ``max_rows``).

The calls run on the event loop itself when a batch is small (on one core a thread hop only
adds cost; the requests that arrive meanwhile wait in the socket buffers), and in a worker
thread when it holds more than ``inline_rows`` rows, so that a large request does not stall
the health checks and the other models. A handler announces a request with
:meth:`Batcher.arriving` as soon as it knows the version, before reading the body: before a
call, the batcher lets the event loop run (a few turns at most) while announced requests are
still on their way to the queue, so that those that arrived during the previous call join
this one instead of waiting for the next. Each version served
has its own batcher: requests already queued on a version finish on it when a hot swap
replaces it.

If a batched call fails, each request in it is scored alone, so that one bad request fails
alone; a :class:`ValueError` or :class:`TypeError` from the model (an unknown category, say)
is the request's fault and becomes a :class:`~regrow.serve.errors.BadRequest` (400).

>>> import asyncio, numpy as np
>>> calls = []
>>> def double(columns, tags):
...     calls.append(tags)
...     return {"y": columns["x"] * 2}
>>> batcher = Batcher(double, max_rows=100)
>>> async def three_at_once():
...     return await asyncio.gather(
...         *(batcher.submit({"x": np.array([i])}, 1, tag=f"r{i}") for i in range(3)))
>>> [r["y"].tolist() for r in asyncio.run(three_at_once())], calls
([[0], [2], [4]], [['r0', 'r1', 'r2']])
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from regrow.errors import DataError, RegrowError
from regrow.serve.errors import BadRequest

__all__ = ["Batcher", "Columns", "PredictFn", "concat_columns", "predicting"]

#: Input column name -> values, one entry per row.
Columns = Mapping[str, np.ndarray]
#: Scores rows: input columns and the tags of the requests they came from (in order) in,
#: output name -> array (rows first) out.
PredictFn = Callable[[Columns, list[Any]], dict[str, np.ndarray]]
#: How many event loop turns a call waits, at most, for announced requests to be queued.
_MAX_TURNS = 8
#: How the model's own complaint about a request's rows starts (:func:`predicting`).
_CANNOT = "the model cannot predict on these inputs: "
#: Told of each call: its number of requests and rows, and how long it took (seconds).
BatchHook = Callable[[int, int, float], None]


@dataclass
class _Job:
    columns: Columns
    rows: int
    tag: Any
    future: asyncio.Future[dict[str, np.ndarray]]


class Batcher:
    """Scores requests for one version, batching those that arrive while a call runs."""

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_rows: int = 10_000,
        inline_rows: int = 512,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self.inline_rows = inline_rows
        self.on_batch = on_batch
        self._pending: deque[_Job] = deque()
        self._arriving = 0
        self._running = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Requests queued and not yet taken into a call."""
        return len(self._pending)

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Announce a request that will be enqueued within the block (its body being read and
        decoded; :meth:`enqueue` it inside, await its outputs outside): the next call waits
        for it, a few event loop turns at most."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    def enqueue(
        self, columns: Columns, rows: int, tag: Any = None
    ) -> asyncio.Future[dict[str, np.ndarray]]:
        """Queue ``rows`` rows of ``columns`` for the next call; the future of their outputs.
        ``tag`` (a request's id, say) is passed to ``predict`` with the columns."""
        loop = asyncio.get_running_loop()
        job = _Job(columns, rows, tag, loop.create_future())
        self._pending.append(job)
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return job.future

    async def submit(self, columns: Columns, rows: int, tag: Any = None) -> dict[str, np.ndarray]:
        """The outputs for ``rows`` rows of ``columns`` (:meth:`enqueue`, then wait)."""
        return await self.enqueue(columns, rows, tag)

    async def _drain(self) -> None:
        try:
            while self._pending:
                turns = 0
                while self._arriving and turns < _MAX_TURNS:
                    await asyncio.sleep(0)  # let announced requests reach the queue
                    turns += 1
                jobs = self._take()
                rows = sum(j.rows for j in jobs)
                start = perf_counter()
                if rows > self.inline_rows:
                    await asyncio.to_thread(self._run, jobs)
                else:
                    self._run(jobs)
                if self.on_batch is not None:
                    self.on_batch(len(jobs), rows, perf_counter() - start)
                # Let the requests that arrived during the call reach the queue.
                await asyncio.sleep(0)
        finally:
            self._running = False
            for job in self._pending:  # only if this task was cancelled (the loop is closing)
                if not job.future.done():
                    job.future.cancel()

    def _take(self) -> list[_Job]:
        jobs = [self._pending.popleft()]
        total = jobs[0].rows
        while self._pending and total + self._pending[0].rows <= self.max_rows:
            job = self._pending.popleft()
            jobs.append(job)
            total += job.rows
        return jobs

    def _run(self, jobs: list[_Job]) -> None:
        live = [j for j in jobs if not j.future.cancelled()]
        if not live:
            return
        try:
            outputs = self._call(concat_columns([j.columns for j in live]), [j.tag for j in live])
        except Exception as exc:
            if len(live) == 1:
                _fail(live[0].future, exc)
                return
            for job in live:  # one bad request fails alone
                try:
                    _done(job.future, self._call(job.columns, [job.tag]))
                except Exception as alone:
                    _fail(job.future, alone)
            return
        start = 0
        for job in live:
            end = start + job.rows
            _done(job.future, {k: v[start:end] for k, v in outputs.items()})
            start = end

    def _call(self, columns: Columns, tags: list[Any]) -> dict[str, np.ndarray]:
        try:
            with predicting():
                return self.predict(columns, tags)
        except BadRequest as exc:
            raise _naming_nulls(exc, columns) from exc


@contextmanager
def predicting() -> Iterator[None]:
    """Run a model: numpy's floating point warnings off, and a :class:`ValueError` or
    :class:`TypeError` it raises (an unknown category, a NaN it does not take) turned into a
    :class:`~regrow.serve.errors.BadRequest` naming it."""
    try:
        with np.errstate(all="ignore"):
            yield
    except RegrowError as exc:
        if isinstance(exc, DataError) and not isinstance(exc, BadRequest):
            raise BadRequest(str(exc)) from exc
        raise
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            f"{_CANNOT}{type(exc).__name__}: {exc}",
            hint="send values like those it was trained on (GET /v2/models/<model> lists "
            "the inputs)",
        ) from exc


def _naming_nulls(exc: BadRequest, columns: Columns) -> BadRequest:
    """``exc``, the model's complaint about a request's rows, with the inputs that are null
    and in which rows (counted from 0): "Input X contains NaN" names neither.

    >>> cols = {"age": np.array([30.0, np.nan]), "plan": np.array(["a", "b"], dtype=object)}
    >>> _naming_nulls(BadRequest(_CANNOT + "ValueError: Input X contains NaN."), cols).message
    "the model cannot predict on these inputs: ValueError: Input X contains NaN. (nulls: input 'age' in row 1)"
    """  # noqa: E501
    if not exc.message.startswith(_CANNOT):
        return exc
    found = [(name, rows) for name, values in columns.items() if len(rows := _nulls(values))]
    if not found:
        return exc
    said = "; ".join(
        f"input {name!r} in row{'s' if len(rows) > 1 else ''} "
        f"{', '.join(str(r) for r in rows[:3])}{', ...' if len(rows) > 3 else ''}"
        for name, rows in found
    )
    first = exc.message.splitlines()[0].rstrip()  # scikit-learn's advice runs on, with links
    return BadRequest(
        f"{first} (nulls: {said})",
        hint="send a value in those rows, or give the system a Default adapter for those "
        "inputs (docs/contracts.md); and values like those it was trained on "
        "(GET /v2/models/<model> lists the inputs)",
    )


def _nulls(values: np.ndarray) -> list[int]:
    """The rows of ``values`` that hold a null: NaN, NaT or None."""
    if values.dtype.kind in "fc":
        return np.flatnonzero(np.isnan(values)).tolist()
    if values.dtype.kind in "mM":
        return np.flatnonzero(np.isnat(values)).tolist()
    if values.dtype.kind == "O":
        return [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and v != v)]
    return []


def concat_columns(parts: list[Columns]) -> Columns:
    """The columns of several requests, one after the other (a single one as it is).

    >>> concat_columns([{"a": np.array([1])}, {"a": np.array([2, 3])}])["a"].tolist()
    [1, 2, 3]
    """
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _done(future: asyncio.Future[dict[str, np.ndarray]], value: dict[str, np.ndarray]) -> None:
    if future.done():
        return
    loop = future.get_loop()
    if _on_loop(loop):
        future.set_result(value)
    else:
        loop.call_soon_threadsafe(_set, future, value, None)


def _fail(future: asyncio.Future[dict[str, np.ndarray]], error: BaseException) -> None:
    if future.done():
        return
    loop = future.get_loop()
    if _on_loop(loop):
        future.set_exception(error)
    else:
        loop.call_soon_threadsafe(_set, future, None, error)


def _set(
    future: asyncio.Future[dict[str, np.ndarray]],
    value: dict[str, np.ndarray] | None,
    error: BaseException | None,
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert value is not None
        future.set_result(value)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
