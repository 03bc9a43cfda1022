"""Turn the tables users hand us into one canonical Arrow form.

:func:`to_arrow` accepts a pandas DataFrame, a polars DataFrame, a pyarrow Table, or the path of a
``.csv`` / ``.parquet`` / ``.pq`` file, and returns a single-chunk Arrow table whose columns use
one physical type per logical type, so equal data gives equal tables whatever it came from:

=============  ================================================  ============================
logical dtype  accepted Arrow types                              canonical Arrow type
=============  ================================================  ============================
``int``        int8 … int64, uint8 … uint64 (if it fits)         ``int64``
``float``      float16, float32, float64 (NaN becomes null)      ``float64``
``bool``       bool                                              ``bool``
``string``     string, large_string, string_view                 ``large_string``
``category``   dictionary of strings (pandas/polars categories)  ``dictionary<int32, large_string>``
``datetime``   timestamp (any unit, any time zone), date32/64    ``timestamp[us]`` (UTC if aware)
=============  ================================================  ============================

CSV files are read with pyarrow's type inference; an empty field is a null, as in pandas, and
the delimiter (``,`` ``;`` tab ``|``) is found from the first lines.
Timestamps keep nanoseconds (``timestamp[ns]``) only when a value has sub-microsecond digits;
time zone aware timestamps are converted to UTC. An all-null column of unknown type (pandas
``object`` full of ``None``, an empty CSV column) stays Arrow's ``null`` type until a schema
says what it is.

>>> import pandas as pd
>>> table = to_arrow(pd.DataFrame({"age": [31, 45], "score": [0.5, float("nan")]}))
>>> table.schema
age: int64
score: double
>>> table.column("score").null_count
1
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import as_array, parallel_map
from regrow.data.csv_files import read_csv
from regrow.errors import DataError

__all__ = ["FILE_SUFFIXES", "logical_dtype", "normalize_column", "to_arrow", "to_pandas"]

#: The suffixes of the files rows are read from (a snapshot, a window).
FILE_SUFFIXES = (".csv", ".parquet", ".pq")
_ACCEPTED = (
    "a pandas DataFrame, a polars DataFrame, a pyarrow Table, "
    "or the path of a .csv, .parquet or .pq file"
)
_CATEGORY_TYPE = pa.dictionary(pa.int32(), pa.large_string())
_SUPPORTED_HINT = (
    "convert it to one of int, float, bool, string, category or datetime "
    "(for example with pandas `astype`)"
)


def to_arrow(data: Any, *, delimiter: str | None = None) -> pa.Table:
    """Convert ``data`` to a canonical, single-chunk :class:`pyarrow.Table`.

    CSV files are read by :func:`~regrow.data.csv_files.read_csv`: ``delimiter`` (CSV only)
    defaults to the one the file's first lines show.

    The pandas index is dropped, except named index levels (``df.set_index("id")``), which
    become ordinary columns again. Schema and field metadata (pandas, polars) are removed.
    Raises :class:`~regrow.errors.DataError` for unsupported inputs, unreadable or missing
    files, zero columns, duplicate or non-string column names and unsupported column types.

    >>> import pyarrow as pa
    >>> to_arrow(pa.table({"n": pa.array([1, 2], pa.int8())})).schema
    n: int64
    """
    table = _read(data, delimiter)
    names = table.column_names
    if not names:
        raise DataError(
            "the data has no columns", hint="pass a table with at least one named column"
        )
    _check_names(names)
    table = table.combine_chunks()
    # Column by column on threads: the NaN scans and casts release the GIL on large buffers.
    arrays = parallel_map(
        lambda i: normalize_column(table.column(i), name=names[i]),
        range(len(names)),
        cells=table.num_rows * len(names),
    )
    return pa.Table.from_arrays(arrays, names=names)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Convert an Arrow table to a pandas DataFrame with a fresh ``RangeIndex``.

    Strings become pandas' ``str`` dtype, integers with nulls become ``float64`` (NaN for
    missing), as :meth:`pyarrow.Table.to_pandas` does by default.

    >>> import pyarrow as pa
    >>> to_pandas(pa.table({"a": [1, 2]}))["a"].tolist()
    [1, 2]
    """
    if not isinstance(table, pa.Table):
        raise DataError(
            f"to_pandas expects a pyarrow Table (got a {type(table).__name__})",
            hint="convert the data with regrow.data.to_arrow first",
        )
    frame: pd.DataFrame = table.to_pandas()
    return frame


def normalize_column(column: pa.Array | pa.ChunkedArray, *, name: str = "column") -> pa.Array:
    """Cast one column to its canonical Arrow type (see the module docs) as a single chunk.

    >>> import pyarrow as pa
    >>> normalize_column(pa.array([1.0, float("nan")], pa.float32())).to_pylist()
    [1.0, None]
    """
    array = as_array(column)
    kind = array.type
    if pa.types.is_dictionary(kind):
        if _is_string_type(kind.value_type):
            return _cast(array, _CATEGORY_TYPE, name)
        return normalize_column(_cast(array, kind.value_type, name), name=name)
    if pa.types.is_null(kind) or pa.types.is_boolean(kind):
        return array
    if pa.types.is_integer(kind):
        return _cast(array, pa.int64(), name)
    if pa.types.is_floating(kind):
        return _nan_to_null(_cast(array, pa.float64(), name))
    if _is_string_type(kind):
        return _cast(array, pa.large_string(), name)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return _normalize_timestamp(array, name)
    raise DataError(
        f"column {name!r} has Arrow type {kind}, which regrow does not support",
        hint=_SUPPORTED_HINT,
    )


def logical_dtype(kind: pa.DataType) -> str | None:
    """The logical dtype of a canonical Arrow type, or ``None`` for the ``null`` type.

    >>> import pyarrow as pa
    >>> logical_dtype(pa.int64()), logical_dtype(pa.large_string()), logical_dtype(pa.null())
    ('int', 'string', None)
    """
    if pa.types.is_null(kind):
        return None
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "int"
    if pa.types.is_floating(kind):
        return "float"
    if pa.types.is_dictionary(kind):
        return "category"
    if _is_string_type(kind):
        return "string"
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "datetime"
    raise DataError(f"Arrow type {kind} has no regrow dtype", hint=_SUPPORTED_HINT)


# -- reading ------------------------------------------------------------------------------


def _read(data: Any, delimiter: str | None) -> pa.Table:
    if delimiter is not None and not isinstance(data, str | os.PathLike):
        raise DataError(
            f"a delimiter ({delimiter!r}) applies to CSV files, not to a "
            f"{type(data).__module__}.{type(data).__qualname__}",
            hint="leave the delimiter out",
        )
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return _from_pandas(data)
    if type(data).__module__.split(".")[0] == "polars":
        return _from_polars(data)
    if isinstance(data, str | os.PathLike):
        return _read_file(Path(data), delimiter)
    raise DataError(
        f"cannot turn a {type(data).__module__}.{type(data).__qualname__} into a table",
        hint=f"pass {_ACCEPTED}",
    )


def _from_pandas(frame: pd.DataFrame) -> pa.Table:
    _check_names(list(frame.columns))
    named = [level for level in frame.index.names if level is not None]
    if named:
        try:
            frame = frame.reset_index(level=named)
        except ValueError as exc:
            raise DataError(
                f"the index level(s) {named} clash with columns of the same name: {exc}",
                hint="rename the index or the columns, or drop it with reset_index(drop=True)",
            ) from exc
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"cannot convert the pandas DataFrame to Arrow: {exc}",
            hint="give each column a single type (mixed Python objects cannot be stored)",
        ) from exc


def _from_polars(frame: Any) -> pa.Table:
    if type(frame).__name__ == "LazyFrame":
        raise DataError(
            "got a polars LazyFrame, which has no data yet",
            hint="pass frame.collect() instead",
        )
    if type(frame).__name__ != "DataFrame":
        raise DataError(
            f"cannot turn a polars {type(frame).__name__} into a table",
            hint=f"pass {_ACCEPTED} (a polars Series can be wrapped with .to_frame())",
        )
    table: pa.Table = frame.to_arrow()
    return table


def _read_file(path: Path, delimiter: str | None) -> pa.Table:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DataError(
            f"cannot read {str(path)!r}: unsupported file type {suffix or '(no suffix)'!r}",
            hint=f"pass {_ACCEPTED}",
        )
    if not path.is_file():
        raise DataError(
            f"no such file: {str(path)!r}", hint="check the path (relative paths start at the cwd)"
        )
    if delimiter is not None and suffix != ".csv":
        raise DataError(
            f"a delimiter ({delimiter!r}) applies to CSV files, not to {str(path)!r}",
            hint="leave the delimiter out",
        )
    try:
        if suffix == ".csv":
            return read_csv(path, delimiter=delimiter)
        import pyarrow.parquet

        table: pa.Table = pyarrow.parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"cannot read {str(path)!r}: {exc}", hint="check that the file is a valid CSV/Parquet"
        ) from exc
    # pandas writes a non-trivial index as a column named __index_level_N__; drop it as we
    # drop the index of a DataFrame.
    index_columns = [n for n in table.column_names if n.startswith("__index_level_")]
    return table.drop_columns(index_columns) if index_columns else table


def _check_names(names: list[Any]) -> None:
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise DataError(
            f"column names must be non-empty strings (got {bad[0]!r}, a {type(bad[0]).__name__})",
            hint="rename the columns, e.g. df.columns = [str(c) for c in df.columns]",
        )
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataError(
            f"duplicate column names: {', '.join(map(repr, duplicates))}",
            hint="give every column a unique name",
        )


# -- normalizing --------------------------------------------------------------------------


def _is_string_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _cast(array: pa.Array, kind: pa.DataType, name: str) -> pa.Array:
    if array.type == kind:
        return array
    try:
        return array.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"column {name!r} cannot be converted from {array.type} to {kind}: {exc}",
            hint=_SUPPORTED_HINT,
        ) from exc


def _nan_to_null(array: pa.Array) -> pa.Array:
    if array.null_count == 0:
        values = array.to_numpy(zero_copy_only=True)
        # min() carries a NaN through without the temporary boolean array isnan() makes.
        has_nan = len(values) > 0 and bool(np.isnan(values.min()))
    else:
        has_nan = bool(pc.any(pc.is_nan(array)).as_py())
    if not has_nan:
        return array
    return pc.if_else(pc.is_nan(array), pa.scalar(None, pa.float64()), array)


def _normalize_timestamp(array: pa.Array, name: str) -> pa.Array:
    kind = array.type
    tz = "UTC" if pa.types.is_timestamp(kind) and kind.tz is not None else None
    target = pa.timestamp("us", tz=tz)
    if kind == target:
        return array
    try:
        return array.cast(target)
    except pa.ArrowInvalid:
        # sub-microsecond digits (keep nanoseconds) or a date beyond the microsecond range
        # (keep the coarser unit): either way no value is altered.
        unit = kind.unit if pa.types.is_timestamp(kind) else "s"
        return _cast(array, pa.timestamp(unit, tz=tz), name)
