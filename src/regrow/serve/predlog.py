"""The prediction log: what a server predicted, written off the request path to Parquet.

The app calls :meth:`PredictionLog.record` once per micro-batch it predicted: the request id
and the row's number in its request for each row, the input frame, the outputs, when and by
which lane and system version. That only appends the batch to a queue (a lock and a list
append: O(1) whatever the rows). A daemon thread flushes the queue every ``flush_seconds``,
or as soon as ``flush_rows`` rows wait: it groups the rows by system and hour (UTC) of their
time, writes one Parquet file per group to the artifact store and indexes it in the catalog
(``catalog.predictions``, see :mod:`regrow.catalog.predictions`).

Each file has these columns, one row per served row:

==================  =============================================================================
``request_id``      the request's id (the key feedback labels arrive by), string
``row``             the row's number in its request, from 0, int64
``served_at``       when it was predicted, ``timestamp[us, tz=UTC]``
``lane``            the lane that served it (``"main"`` without a rollout), string
``system_version``  the version that predicted it (``churn:v2``), string
``rollout``         the id of the rollout that routed it (``""``: none), string; a rollout's
                    evidence is the rows it routed (files written before it have no column)
``input``           a struct of the input columns, as given (their names as the request named them)
``output``          a struct: ``prediction`` (the predicted label or value) and, for a classifier,
                    one ``proba__<class>`` per class (``proba__0``, ``proba__yes``); any other
                    output ``k`` as ``k`` (2-D: ``k__0``, ``k__1``, ...)
==================  =============================================================================

Inputs and outputs are kept in their own struct columns, so no input name can clash with the
log's own columns or with the outputs (``SELECT input.age, output.prediction`` in DuckDB).

Memory is bounded: when ``max_pending_rows`` rows wait (the store or the catalog is down, or
slower than the traffic), further batches are dropped and counted in :meth:`stats`, never
blocking a request. A file that fails to write stays queued and is retried at the next flush;
its rows count as pending until then. :meth:`close` flushes what is left (a server calls it on
shutdown: rows still queued when the process dies are lost).

>>> import tempfile, pandas as pd
>>> from regrow import Workspace
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> log = PredictionLog(ws.catalog, ws.store, flush_seconds=60)
>>> log.record(system="churn", version="churn:v1", lane="main", request_ids=["r1", "r1"],
...            rows=[0, 1], inputs=pd.DataFrame({"age": [30, 41]}),
...            outputs={"predict": [0, 1], "probabilities": [[0.9, 0.1], [0.2, 0.8]]},
...            classes=[0, 1])
True
>>> log.flush()
2
>>> log.close()
>>> {k: log.stats()[k] for k in ("rows_logged", "files_written", "pending_rows")}
{'rows_logged': 2, 'files_written': 1, 'pending_rows': 0}
>>> ws.close()
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regrow.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.store import ArtifactStore

__all__ = ["META_COLUMNS", "PredictionLog", "output_columns"]

#: The log's own columns, before the ``input`` and ``output`` structs.
META_COLUMNS = ("request_id", "row", "served_at", "lane", "system_version", "rollout")
_TIME = pa.timestamp("us", tz="UTC")
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Batch:
    system: str
    version: str
    lane: str
    request_ids: Sequence[str]
    rows: Sequence[int]
    inputs: Any
    outputs: Mapping[str, Any]
    at: datetime
    classes: Sequence[Any] | None
    n: int
    rollout: str = ""


@dataclass
class _Group:
    """The batches of one system and hour; once built, their Parquet bytes and what the
    index records (the batches are then let go)."""

    system: str
    hour: datetime
    batches: list[_Batch]
    rows: int
    data: bytes | None = field(default=None, repr=False)
    first_at: datetime | None = None
    last_at: datetime | None = None
    versions: dict[str, int] = field(default_factory=dict)


class PredictionLog:
    """Logs served predictions to Parquet in ``store``, indexed in ``catalog`` (see the
    module docs). Thread-safe; one per server process."""

    def __init__(
        self,
        catalog: Catalog,
        store: ArtifactStore,
        *,
        flush_rows: int = 5000,
        flush_seconds: float = 10.0,
        max_pending_rows: int = 200_000,
    ) -> None:
        if flush_rows < 1 or flush_seconds <= 0 or max_pending_rows < 1:
            raise ConfigError(
                f"PredictionLog needs flush_rows >= 1, flush_seconds > 0 and max_pending_rows "
                f">= 1 (got {flush_rows}, {flush_seconds}, {max_pending_rows})",
                hint="e.g. flush_rows=5000, flush_seconds=10, max_pending_rows=200000",
            )
        self.catalog = catalog
        self.store = store
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self._lock = threading.Lock()  # the queue and the counters
        self._flushing = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._queue: list[_Batch] = []
        self._queued = 0  # rows in the queue
        self._inflight = 0  # rows a flush is writing now
        self._retry: list[_Group] = []
        self._counts = Counter[str]()
        self._last_error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="regrow-predlog", daemon=True)
        self._thread.start()

    # -- the request path -------------------------------------------------------------------

    def record(
        self,
        *,
        system: str,
        version: str,
        lane: str,
        request_ids: Sequence[str],
        rows: Sequence[int],
        inputs: Any,
        outputs: Mapping[str, Any],
        at: datetime | None = None,
        classes: Sequence[Any] | None = None,
        rollout: str = "",
    ) -> bool:
        """Queue one predicted batch; False when it was dropped (the log is full or closed).

        ``request_ids`` and ``rows`` have one entry per row; ``inputs`` is a DataFrame (or
        an Arrow table, or a mapping of column to values) of those rows; ``outputs`` maps
        output names (``predict``, ``probabilities``) to arrays; ``classes`` names the
        probability columns. ``at`` defaults to now (a naive time is taken as UTC).
        ``rollout`` is the id of the rollout that routed the rows (``""``: none). Nothing
        is checked or copied here: the arrays must not change afterwards.
        """
        n = len(request_ids)
        batch = _Batch(
            system, version, lane, request_ids, rows, inputs, outputs,
            at if at is not None else datetime.now(UTC), classes, n, rollout,
        )  # fmt: skip
        with self._lock:
            if self._closed or self._pending() + n > self.max_pending_rows:
                before = self._counts["rows_dropped"]
                self._counts["rows_dropped"] += n
                if before // 10_000 != (before + n) // 10_000 or not before:
                    logger.warning(
                        "prediction log: %d rows dropped so far (%d rows wait to be written, "
                        "the limit is %d): the store or the catalog is slower than the traffic",
                        before + n, self._pending(), self.max_pending_rows,
                    )  # fmt: skip
                return False
            self._queue.append(batch)
            self._queued += n
            full = self._queued >= self.flush_rows
        if full:
            self._wake.set()
        return True

    # -- flushing ---------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every queued row now; return how many rows were written.

        Files that fail to write stay queued for the next flush, and a
        :class:`~regrow.errors.StoreError` says how many rows wait and why.
        """
        written = self._flush()
        with self._lock:
            waiting = sum(g.rows for g in self._retry)
        if waiting:
            raise StoreError(
                f"{waiting:,} logged rows could not be written yet: {self._last_error}",
                hint="they are kept and retried at the next flush; check the artifact store "
                "and the catalog",
            )
        return written

    def close(self) -> None:
        """Stop the writer thread and flush what is queued (retried once more if it fails)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join()
        self._flush()
        left = self.stats()["pending_rows"]
        if left:
            logger.error("prediction log closed with %d rows unwritten: %s", left, self._last_error)

    def stats(self) -> dict[str, Any]:
        """``rows_logged``, ``rows_dropped`` (queue full or closed), ``rows_unwritable``
        (inputs that cannot be stored as a table), ``files_written``, ``pending_rows``,
        ``write_errors`` and ``last_error``."""
        with self._lock:
            return {
                "rows_logged": self._counts["rows_logged"],
                "rows_dropped": self._counts["rows_dropped"],
                "rows_unwritable": self._counts["rows_unwritable"],
                "files_written": self._counts["files_written"],
                "pending_rows": self._pending(),
                "write_errors": self._counts["write_errors"],
                "last_error": self._last_error,
            }

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pending(self) -> int:  # under self._lock
        return self._queued + self._inflight + sum(g.rows for g in self._retry)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._closed:
                return  # close() flushes
            try:
                self._flush()
            except Exception:  # pragma: no cover - _flush catches what writing raises
                logger.exception("prediction log flush failed")

    def _flush(self) -> int:
        with self._flushing:
            with self._lock:
                batches, retry = self._queue, self._retry
                self._inflight = self._queued + sum(g.rows for g in retry)
                self._queue, self._queued, self._retry = [], 0, []
            written, failed = 0, []
            for group in [*retry, *_groups(batches)]:
                try:
                    written += self._write(group)
                except Exception as exc:  # the store or the catalog: retried next time
                    failed.append(group)
                    with self._lock:
                        self._counts["write_errors"] += 1
                        self._last_error = f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "prediction log: %d rows of %r could not be written, kept to retry: %s",
                        group.rows, group.system, self._last_error,
                    )  # fmt: skip
            with self._lock:
                self._retry = failed
                self._inflight = 0
            return written

    def _write(self, group: _Group) -> int:
        """Store and index one group's file; return its rows."""
        if group.data is None:
            self._build(group)
        data, first, last = group.data, group.first_at, group.last_at
        if not group.rows or data is None or first is None or last is None:
            return 0
        key = self.store.put(data)
        self.catalog.predictions.add_file(
            system=group.system, hour=group.hour, artifact=key, rows=group.rows,
            first_at=first, last_at=last, versions=group.versions,
        )  # fmt: skip
        with self._lock:
            self._counts["rows_logged"] += group.rows
            self._counts["files_written"] += 1
            self._inflight -= group.rows
        return group.rows

    def _build(self, group: _Group) -> None:
        """Build the group's Parquet bytes and index entry. Batches that cannot be stored
        are dropped, counted and logged: retrying would not help them."""
        try:
            group.data = _parquet(_table(group.batches))
        except Exception:  # one bad batch: keep the others
            good = []
            for b in group.batches:
                try:
                    _table([b])
                except Exception as exc:
                    with self._lock:
                        self._counts["rows_unwritable"] += b.n
                        self._inflight -= b.n
                        self._last_error = f"{type(exc).__name__}: {exc}"
                    logger.error(
                        "prediction log: %d rows of %s cannot be stored: %s",
                        b.n, b.version, self._last_error,
                    )  # fmt: skip
                else:
                    good.append(b)
            group.batches, group.rows = good, sum(b.n for b in good)
            group.data = _parquet(_table(good, permissive=True)) if good else b""
        ats = [_utc(b.at) for b in group.batches]
        group.first_at, group.last_at = (min(ats), max(ats)) if ats else (None, None)
        for b in group.batches:
            group.versions[b.version] = group.versions.get(b.version, 0) + b.n
        group.batches = []


def _groups(batches: list[_Batch]) -> list[_Group]:
    """The batches by system and hour of their time, in order of arrival."""
    found: dict[tuple[str, datetime], _Group] = {}
    for b in batches:
        hour = _utc(b.at).replace(minute=0, second=0, microsecond=0)
        group = found.get((b.system, hour))
        if group is None:
            found[(b.system, hour)] = _Group(b.system, hour, [b], b.n)
        else:
            group.batches.append(b)
            group.rows += b.n
    return list(found.values())


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def output_columns(name: str, values: Any, classes: Sequence[Any] | None) -> dict[str, Any]:
    """The log's column(s) for output ``name`` (see the module docs).

    >>> list(output_columns("probabilities", [[0.9, 0.1]], ["no", "yes"]))
    ['proba__no', 'proba__yes']
    >>> list(output_columns("predict", [1], None))
    ['prediction']
    """
    array = np.asarray(values)
    if array.ndim == 1:
        return {"prediction" if name == "predict" else name: array}
    array = array.reshape(len(array), -1)
    if name == "probabilities":
        labels = list(classes) if classes is not None and len(classes) == array.shape[1] else None
        names = [f"proba__{c}" for c in (labels or range(array.shape[1]))]
    else:
        names = [f"{name}__{j}" for j in range(array.shape[1])]
    return {n: array[:, j] for j, n in enumerate(names)}


def _part(values: Any) -> pa.Table:
    if isinstance(values, pa.Table):
        return values
    if isinstance(values, pd.DataFrame):
        return pa.Table.from_pandas(values, preserve_index=False)
    return pa.table(dict(values))


def _parts(batches: list[_Batch], permissive: bool) -> tuple[pa.Table, pa.Table]:
    """The batches' inputs and outputs, each as one table (``permissive``: one table per
    batch first, then the union of their columns, for batches that disagree)."""
    frames = [b.inputs for b in batches]
    outputs = [
        {k: v for name, values in b.outputs.items()
         for k, v in output_columns(name, values, b.classes).items()}
        for b in batches
    ]  # fmt: skip
    names = list(dict.fromkeys(chain.from_iterable(outputs)))
    keys = list(frames[0]) if isinstance(frames[0], Mapping) else None
    if (
        not permissive
        and keys is not None
        and all(isinstance(f, Mapping) and list(f) == keys for f in frames)
    ):  # columns of arrays, as the server hands them over: one concatenation per column
        inputs = pa.table({k: np.concatenate([np.asarray(f[k]) for f in frames]) for k in keys})
    elif permissive or not all(isinstance(f, pd.DataFrame) for f in frames):
        inputs = pa.concat_tables([_part(f) for f in frames], promote_options="permissive")
    else:
        inputs = _part(frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True))
    if permissive or not all(list(c) == names for c in outputs):
        return inputs, pa.concat_tables(map(pa.table, outputs), promote_options="permissive")
    return inputs, pa.table({n: np.concatenate([c[n] for c in outputs]) for n in names})


def _table(batches: list[_Batch], *, permissive: bool = False) -> pa.Table:
    """One table of the batches' rows, in the layout of the module docs."""
    counts = np.fromiter((b.n for b in batches), dtype=np.int64, count=len(batches))
    ids = pa.array(list(chain.from_iterable(b.request_ids for b in batches)), pa.string())
    rows = np.concatenate([np.asarray(b.rows, dtype=np.int64) for b in batches])
    stamps = np.array([_utc(b.at).replace(tzinfo=None) for b in batches], dtype="datetime64[us]")
    inputs, outputs = _parts(batches, permissive)
    total = int(counts.sum())
    if not len(ids) == len(rows) == inputs.num_rows == outputs.num_rows == total:
        raise ValueError(
            f"a batch's parts disagree: {len(ids)} request ids, {len(rows)} row numbers, "
            f"{inputs.num_rows} input rows, {outputs.num_rows} output rows"
        )
    return pa.table(
        {
            "request_id": ids,
            "row": rows,
            "served_at": pa.array(np.repeat(stamps, counts), _TIME),
            "lane": pa.array(np.repeat(np.array([b.lane for b in batches]), counts), pa.string()),
            "system_version": pa.array(
                np.repeat(np.array([b.version for b in batches]), counts), pa.string()
            ),
            "rollout": pa.array(
                np.repeat(np.array([b.rollout for b in batches]), counts), pa.string()
            ),
            "input": _struct(inputs),
            "output": _struct(outputs),
        }
    )


def _struct(table: pa.Table) -> pa.StructArray:
    return pa.StructArray.from_arrays(
        [c.combine_chunks() for c in table.columns], names=table.column_names
    )


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())
