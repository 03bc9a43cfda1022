"""Prepare an immutable, content-addressed snapshot of a dataset.

:func:`prepare_snapshot` validates and encodes data but writes nothing: the caller stores
``parquet`` in the artifact store and the rest in the catalog. The snapshot ``id`` hashes the
column names in order, each column's :func:`column_hash` and the time column, so the same data
gives the same id whether it came from pandas, polars, Arrow or a file.

>>> import pandas as pd
>>> frame = pd.DataFrame({
...     "at": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-02"]),
...     "country": ["FR", "DE", "FR"],
...     "spend": [12.5, 3.0, 8.25],
... })
>>> snap = prepare_snapshot(frame, time_column="at", slices={"france": "country == 'FR'"})
>>> snap.rows, snap.schema.names, len(snap.id)
(3, ('at', 'country', 'spend'), 64)
>>> read_parquet(snap.parquet, columns=["spend"]).column("spend").to_pylist()
[12.5, 3.0, 8.25]
>>> len(apply_slice(frame, "france", "country == 'FR'"))
2
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from regrow._hashing import hash_json
from regrow.data._compute import as_array, parallel_map
from regrow.data.column_hash import column_hash, hash_canonical_column
from regrow.data.frames import to_arrow, to_pandas
from regrow.data.profile import profile_table
from regrow.data.quality import Note, quality_notes, replace_infinities
from regrow.data.schema import Schema
from regrow.data.snapshot_safety import align_to
from regrow.errors import DataError, SliceError

__all__ = ["PreparedSnapshot", "apply_slice", "column_hash", "prepare_snapshot", "read_parquet"]

_FORMAT = "regrow-snapshot/1"
_SLICE_HINT = (
    "a slice is a pandas query expression over the snapshot's columns, "
    "e.g. \"country == 'FR' and age >= 18\" (put names with spaces in `backticks`)"
)


@dataclass(frozen=True)
class PreparedSnapshot:
    """A validated, encoded dataset, ready to be stored.

    ``table`` is the data in canonical form (schema order, category columns as plain strings);
    ``parquet`` is the same table as zstd-compressed Parquet bytes, written deterministically
    for a given pyarrow version; ``profile`` is :func:`~regrow.data.profile_table` of it, with
    each column's ``dtype`` as the schema says. ``column_hashes[c]`` equals
    ``column_hash(table.column(c), dtype=schema[c].dtype)``. ``notes`` are the
    :mod:`~regrow.data.quality` findings (nulls, stray text, infinities made null),
    ``slice_rows`` the rows each slice selects, ``source`` the file path or the kind of table.
    """

    id: str
    table: pa.Table
    schema: Schema
    column_hashes: dict[str, str]
    parquet: bytes
    profile: dict[str, Any]
    time_column: str | None
    slices: dict[str, str]
    rows: int
    notes: tuple[Note, ...] = ()
    slice_rows: dict[str, int] = field(default_factory=dict)
    source: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(self.table.column_names)

    def stored_profile(self) -> dict[str, Any]:
        """The profile as the catalog keeps it: ``profile`` plus ``slice_rows``, ``notes``
        (their dicts) and ``source``."""
        return {
            **self.profile,
            "slice_rows": dict(self.slice_rows),
            "notes": [n.to_dict() for n in self.notes],
            "source": self.source,
        }


def prepare_snapshot(
    data: Any,
    *,
    schema: Schema | Mapping[str, Any] | None = None,
    time_column: str | None = None,
    slices: Mapping[str, str] | None = None,
    name: str | None = None,
    delimiter: str | None = None,
    like: Schema | None = None,
    source: str | None = None,
) -> PreparedSnapshot:
    """Validate ``data`` (anything :func:`~regrow.data.to_arrow` accepts) and encode it.

    * ``schema``: a declared :class:`Schema` (or its dict form) the data must match exactly
      (no extra columns); without one, the schema is inferred from the data.
    * ``time_column``: a ``datetime`` column without nulls. Epoch numbers are refused rather
      than guessed at: convert them with ``pd.to_datetime(values, unit="s")`` first.
    * ``slices``: named pandas ``query`` expressions; each is evaluated on the data, so an
      expression that does not apply raises :class:`~regrow.errors.SliceError` now.
    * ``delimiter``: a CSV file's delimiter (default: found from its first lines).
    * ``like``: the schema of the name's previous snapshot; without a declared ``schema``,
      columns are read as it says where no value changes (see
      :func:`~regrow.data.snapshot_safety.align_to`).
    * ``source``: where the rows came from, as recorded (default: the file's path, or the
      kind of table given).

    ``inf`` and ``-inf`` become nulls, as NaN does, and each column that had some gets a note.

    The id hashes the column hashes with everything that defines the snapshot: column
    order, time column, slices and ``name``. The same data under another name or with other
    slices is another snapshot, but components reading it keep their fingerprints, which
    depend on the column hashes only.

    Raises :class:`~regrow.errors.DataError` (or its subclasses) and writes nothing.
    """
    table, notes = replace_infinities(to_arrow(data, delimiter=delimiter))
    if table.num_rows == 0:
        raise DataError(
            f"the data has no rows (columns: {', '.join(map(repr, table.column_names))})",
            hint="a snapshot needs at least one row; check the query or file that produced it",
        )
    if schema is None and like is not None:
        table = align_to(table, like)
    schema = Schema.infer(table) if schema is None else Schema.coerce(schema)
    table = schema.conform(table)
    if time_column is not None:
        _check_time_column(table, schema, time_column)
    slice_rows = _check_slices(table, slices or {})
    checked_slices = {n: slices[n] for n in slice_rows} if slices else {}
    notes += quality_notes(table)
    cells = table.num_rows * table.num_columns
    # Parquet encoding releases the GIL: on big tables it runs beside hashing and profiling.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="regrow-parquet") as pool:
        parquet = pool.submit(_to_parquet, table)
        hashes = parallel_map(
            lambda c: hash_canonical_column(as_array(table.column(c.name)), c.dtype),
            schema.columns,
            cells=cells,
        )
        profile = profile_table(table)
        for column in schema.columns:  # label columns as the schema does ("category" ...)
            profile["columns"][column.name]["dtype"] = column.dtype
        column_hashes = dict(zip(schema.names, hashes, strict=True))
        snapshot_id = hash_json(
            {
                "format": _FORMAT,
                "columns": list(schema.names),
                "column_hashes": column_hashes,
                "time_column": time_column,
                "slices": checked_slices,
                "name": name,
            }
        )
        return PreparedSnapshot(
            id=snapshot_id,
            table=table,
            schema=schema,
            column_hashes=column_hashes,
            parquet=parquet.result(),
            profile=profile,
            time_column=time_column,
            slices=checked_slices,
            rows=table.num_rows,
            notes=tuple(sorted(notes, key=lambda n: table.column_names.index(n.column))),
            slice_rows=slice_rows,
            source=source or _source(data),
        )


def read_parquet(data: bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """Read Parquet bytes (a snapshot's artifact) into a table, optionally only ``columns``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DataError(
            f"read_parquet expects bytes (got a {type(data).__name__})",
            hint="pass the bytes read from the artifact store",
        )
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"the {len(data)} bytes given are not a readable Parquet file: {exc}",
            hint="pass the bytes of a snapshot artifact, e.g. PreparedSnapshot.parquet",
        ) from exc
    names = parquet.schema_arrow.names
    if columns is not None:
        if isinstance(columns, str):
            columns = [columns]
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(
                f"no column(s) {', '.join(map(repr, missing))} in the Parquet data",
                hint=f"the columns are {', '.join(map(repr, names))}",
            )
    table: pa.Table = parquet.read(columns=list(columns) if columns is not None else None)
    return table


def apply_slice(frame: pd.DataFrame, name: str, expr: str) -> pd.DataFrame:
    """The rows of ``frame`` selected by the slice ``name``'s pandas ``query`` expression.

    The expression sees the frame's columns only (no ``@variables``). Anything that fails
    raises :class:`~regrow.errors.SliceError` naming the slice, the expression and the error.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise SliceError(f"slice {name!r} has no expression (got {expr!r})", hint=_SLICE_HINT)
    try:
        mask = frame.eval(expr, local_dict={}, global_dict={})
    except Exception as exc:  # pandas raises many types here; all mean the same thing
        said = str(exc)
        said = said if len(said) <= 200 else said[:200] + "..."  # not a whole column
        raise SliceError(
            f"slice {name!r} ({expr!r}) does not apply to the data: {type(exc).__name__}: {said}",
            hint=_SLICE_HINT,
        ) from exc
    if isinstance(mask, pd.DataFrame) or not (
        isinstance(mask, pd.Series) and pd.api.types.is_bool_dtype(mask)
    ):
        got = (
            f"a {mask.dtype} column" if isinstance(mask, pd.Series) else f"a {type(mask).__name__}"
        )
        raise SliceError(
            f"slice {name!r} ({expr!r}) is not a True/False condition on each row (got {got})",
            hint=_SLICE_HINT,
        )
    return frame[mask]


def _check_time_column(table: pa.Table, schema: Schema, time_column: str) -> None:
    if time_column not in schema:
        raise DataError(
            f"time column {time_column!r} is not a column of the data",
            hint=f"pick one of {', '.join(map(repr, schema.names))}",
        )
    dtype = schema[time_column].dtype
    if dtype != "datetime":
        raise DataError(
            f"time column {time_column!r} is {dtype!r}, not 'datetime'",
            hint="convert it first, e.g. pd.to_datetime(values) or, for epoch seconds, "
            'pd.to_datetime(values, unit="s")',
        )
    nulls = table.column(time_column).null_count
    if nulls:
        raise DataError(
            f"time column {time_column!r} has {nulls} null value(s)",
            hint="every row needs a time: drop or fill the rows without one",
        )


def _check_slices(table: pa.Table, slices: Mapping[str, str]) -> dict[str, int]:
    """Check every slice on the data; return the rows each selects."""
    if not isinstance(slices, Mapping):
        raise SliceError(
            f"slices must be a mapping of name to expression (got a {type(slices).__name__})",
            hint='pass e.g. {"adults": "age >= 18"}',
        )
    checked: dict[str, int] = {}
    frame = None
    for name, expr in slices.items():
        if not isinstance(name, str) or not name:
            raise SliceError(
                f"slice names must be non-empty strings (got {name!r})", hint=_SLICE_HINT
            )
        if frame is None:
            frame = to_pandas(table)
        checked[name] = len(apply_slice(frame, name, expr))
    return checked


def _source(data: Any) -> str:
    if isinstance(data, str | os.PathLike):
        return str(Path(data).resolve())
    kind = type(data)
    return f"{kind.__module__.split('.')[0]}.{kind.__qualname__}"


def _to_parquet(table: pa.Table) -> bytes:
    # Dictionary encoding pays off for strings; for numbers it mostly costs time.
    strings = [f.name for f in table.schema if pa.types.is_large_string(f.type)]
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, compression="zstd", use_dictionary=strings or False, write_statistics=True
    )
    data: bytes = sink.getvalue().to_pybytes()
    return data
