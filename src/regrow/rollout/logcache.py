"""The rows a rollout's analysis reads from the prediction log, parsed once per file.

A rollout's analysis runs after every batch of traffic and reads every row logged since the
rollout began. Prediction files are immutable once written (:mod:`regrow.serve.predlog`), so
:class:`FileCache` keeps the parsed rows of each file, keyed by its artifact id, the versions
read and the slices evaluated: a step parses only the files written since the last one.
(Labels are not cached: they can arrive late, and :mod:`regrow.rollout.evidence` reads them
again each time.)

The cache is bounded by rows (a row takes about half a kilobyte: 250,000 rows by default),
least recently used first out; one per process
(:data:`CACHE`) unless a caller passes its own. A row is a dict with ``request_id``, ``row``,
``served_at``, ``lane``, ``system_version``, ``prediction``, ``classifier`` (the log holds a
classifier's ``proba__*`` outputs) and ``slices`` (the names of the slices it falls in).

A slice is a pandas query expression over the logged input columns (``"age >= 65"``,
``"country == 'FR' and plan == 'pro'"``); :func:`slice_columns` finds the columns it names, so
only those are read from the log's ``input`` struct.

>>> cache = FileCache(max_rows=10)
>>> cache.stats()
{'files': 0, 'rows': 0, 'hits': 0, 'misses': 0}
>>> sorted(slice_columns("age >= 65 and `plan type` == 'pro'", ["age", "plan type", "x"]))
['age', 'plan type']
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from regrow.errors import ArtifactCorrupted, ArtifactNotFound, ConfigError, DataError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.store import ArtifactStore

__all__ = ["CACHE", "FileCache", "logged_rows", "slice_columns"]

_META = ["request_id", "row", "served_at", "lane", "system_version"]
Slices = tuple[tuple[str, str], ...]
_Key = tuple[str, tuple[str, ...], Slices]


def slice_columns(expression: str, columns: Iterable[str]) -> set[str]:
    """The names among ``columns`` that ``expression`` mentions (bare or in backticks)."""
    found = set()
    for col in columns:
        bare = rf"(?<![\w`.]){re.escape(col)}(?![\w`])"
        if f"`{col}`" in expression or (col.isidentifier() and re.search(bare, expression)):
            found.add(col)
    return found


class FileCache:
    """Parsed rows of prediction files, at most ``max_rows`` of them (see the module docs)."""

    def __init__(self, max_rows: int = 250_000) -> None:
        if max_rows < 0:
            raise ConfigError(f"max_rows must be >= 0 (got {max_rows!r})", hint="e.g. 250000")
        self.max_rows = max_rows
        self._files: OrderedDict[_Key, list[dict[str, Any]]] = OrderedDict()
        self._rows = 0
        self._hits = self._misses = 0
        self._lock = threading.Lock()

    def rows(
        self, store: ArtifactStore, artifact: str, versions: Sequence[str], slices: Slices = ()
    ) -> list[dict[str, Any]]:
        """The rows of ``versions`` in the file ``artifact``, with the ``slices`` they fall in
        (the cached rows themselves: read them, do not change them)."""
        key = (artifact, tuple(sorted(versions)), slices)
        with self._lock:
            found = self._files.get(key)
            if found is not None:
                self._files.move_to_end(key)
                self._hits += 1
                return found
            self._misses += 1
        rows = _parse(store, artifact, key[1], slices)
        with self._lock:
            if key not in self._files and len(rows) <= self.max_rows:
                self._files[key] = rows
                self._rows += len(rows)
                while self._rows > self.max_rows:
                    _, dropped = self._files.popitem(last=False)
                    self._rows -= len(dropped)
        return rows

    def clear(self) -> None:
        """Forget every file."""
        with self._lock:
            self._files.clear()
            self._rows = 0

    def stats(self) -> dict[str, int]:
        """Files and rows held, and lookups that found (hits) or parsed (misses) a file."""
        with self._lock:
            return {"files": len(self._files), "rows": self._rows, "hits": self._hits,
                    "misses": self._misses}  # fmt: skip


#: The process's cache of parsed prediction files.
CACHE = FileCache()


def logged_rows(
    catalog: Catalog,
    store: ArtifactStore,
    system: str,
    since: datetime,
    until: datetime | None,
    versions: Iterable[str],
    *,
    slices: Slices = (),
    cache: FileCache | None = None,
) -> list[dict[str, Any]]:
    """The logged rows of ``versions`` of ``system`` served in ``[since, until)``."""
    wanted = sorted(set(versions))
    files = cache if cache is not None else CACHE
    out: list[dict[str, Any]] = []
    for f in catalog.predictions.files(system, since=since, until=until):
        if not set(wanted) & set(f.versions):
            continue
        rows = files.rows(store, f.artifact, wanted, slices)
        if f.first_at >= since and (until is None or f.last_at < until):
            out.extend(rows)  # the whole file is in the window
        else:
            end = until
            out.extend(
                r for r in rows if since <= r["served_at"] and (end is None or r["served_at"] < end)
            )
    return out


def _parse(
    store: ArtifactStore, artifact: str, versions: Sequence[str], slices: Slices
) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        data = store.get(artifact)
    except (ArtifactNotFound, ArtifactCorrupted) as exc:
        raise DataError(
            f"the log file {artifact[:12]} is lost: {exc.message}",
            hint="restore the artifact store, or abort the rollout and start it again",
        ) from exc
    file = pq.ParquetFile(pa.BufferReader(data))
    inputs = file.schema_arrow.field("input").type
    names = [inputs.field(i).name for i in range(inputs.num_fields)]
    needed = sorted(set().union(*(slice_columns(e, names) for _, e in slices)))
    # the routing rollout's id: files written before it was logged have no such column
    meta = [*_META, "rollout"] if "rollout" in file.schema_arrow.names else _META
    table = file.read(columns=[*meta, "output", *(f"input.{c}" for c in needed)])
    outputs = table.column("output").type
    classifier = any(outputs.field(i).name.startswith("proba__") for i in range(outputs.num_fields))
    keep = pc.is_in(table.column("system_version"), pa.array(list(versions), pa.string()))
    flat = table.filter(keep).flatten()
    member = _members(flat, needed, slices, artifact)
    rows: list[dict[str, Any]] = flat.select([*meta, "output.prediction"]).to_pylist()
    for i, r in enumerate(rows):
        r["prediction"] = r.pop("output.prediction")
        r["classifier"] = classifier
        r["slices"] = member[i] if member else ()
    return rows


def _members(flat: Any, needed: list[str], slices: Slices, artifact: str) -> list[tuple[str, ...]]:
    """For each row, the names of the slices it falls in (empty without slices)."""
    if not slices:
        return []
    frame = flat.select([f"input.{c}" for c in needed]).to_pandas()
    frame.columns = needed
    masks = []
    for name, expression in slices:
        try:
            mask = frame.eval(expression) if len(frame) else frame.index == 0
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise DataError(
                f"slice {name!r} ({expression!r}) cannot be evaluated on the log file "
                f"{artifact[:12]}: {exc}",
                hint="the log's input columns are the request's; abort and fix the slice",
            ) from None
        masks.append(
            list(mask.astype(bool)) if hasattr(mask, "astype") else [bool(mask)] * len(frame)
        )
    return [tuple(name for (name, _), m in zip(slices, masks, strict=True) if m[i])
            for i in range(len(frame))]  # fmt: skip
