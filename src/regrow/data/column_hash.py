"""Content hashes of columns: equal values give equal hashes, whatever the data came from.

A column's hash is the sha256 of a versioned header (logical dtype, row count, null count),
the validity bitmap when there are nulls, and the values in a canonical binary form:

* ``int``, ``float``, ``datetime``: the little-endian 64-bit values, nulls as 0 (floats with
  ``-0.0`` as ``0.0``; datetimes as integers in the column's unit, which is in the header);
* ``bool``: one byte per value;
* ``string``, ``category``: the 64-bit length of each value, then the UTF-8 bytes of all values.

The encoding is computed from Arrow buffers after :func:`~regrow.data.frames.normalize_column`
(no Python loop over rows), so pandas, polars, Arrow and CSV inputs with the same values and
dtype hash alike, however the data is chunked.

>>> import pandas as pd
>>> import pyarrow as pa
>>> column_hash(pd.Series([1, 2, 3])) == column_hash(pa.chunked_array([[1], [2, 3]]))
True
>>> column_hash(pa.array([1, 2, 3])) == column_hash(pa.array([1, 2, 3]), dtype="float")
False
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from regrow._hashing import canonical_json
from regrow.data.frames import logical_dtype, normalize_column
from regrow.data.schema import DTYPES, conform_column
from regrow.errors import DataError, SchemaError

__all__ = ["column_hash", "hash_canonical_column"]

_FORMAT = "regrow-column/1"


def column_hash(array: Any, dtype: str | None = None) -> str:
    """The sha256 hex digest of a column's values and logical ``dtype``.

    ``array`` is a pyarrow Array or ChunkedArray, a pandas or polars Series, or anything
    :func:`pyarrow.array` accepts. ``dtype`` defaults to the column's own logical dtype
    (``string`` for an all-null column of unknown type); giving it hashes the column as that
    dtype, e.g. integers as ``float``.
    """
    column = normalize_column(_as_arrow(array))
    if dtype is None:
        dtype = logical_dtype(column.type) or "string"
    elif dtype not in DTYPES:
        raise SchemaError(f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}")
    return hash_canonical_column(conform_column(column, dtype), dtype)


def hash_canonical_column(array: pa.Array, dtype: str) -> str:
    """Hash a column already in the canonical Arrow type of ``dtype`` (no conversion)."""
    rows, nulls = len(array), array.null_count
    tag = dtype
    if dtype == "datetime":
        tz = f",{array.type.tz}" if array.type.tz else ""
        tag = f"datetime[{array.type.unit}{tz}]"
    header = {"format": _FORMAT, "dtype": tag, "rows": rows, "nulls": nulls}
    digest = hashlib.sha256(canonical_json(header).encode())
    if nulls:
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
        digest.update(np.packbits(valid).tobytes())
    for part in _value_parts(array, dtype):
        digest.update(part)
    return digest.hexdigest()


def _value_parts(array: pa.Array, dtype: str) -> list[Any]:
    if dtype in ("string", "category"):
        return _string_parts(pc.fill_null(array, "") if array.null_count else array)
    if dtype == "bool":
        values = pc.fill_null(array, False) if array.null_count else array
        return [np.ascontiguousarray(values.to_numpy(zero_copy_only=False)).view(np.uint8)]
    if dtype == "datetime":
        array = array.cast(pa.int64())
    if array.null_count:
        array = pc.fill_null(array, 0)
    values = np.ascontiguousarray(array.to_numpy(zero_copy_only=False))
    if dtype == "float":
        values = values + 0.0  # -0.0 + 0.0 == +0.0: equal values, equal bytes
    return [values.astype("<i8" if dtype != "float" else "<f8", copy=False)]


def _string_parts(array: pa.Array) -> list[Any]:
    if len(array) == 0:
        return []
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    lengths = np.diff(offsets)
    start, end = int(offsets[0]), int(offsets[-1])
    data = memoryview(data_buffer)[start:end] if data_buffer is not None else b""
    return [lengths.astype("<i8", copy=False), data]


def _as_arrow(array: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(array, pa.Array | pa.ChunkedArray):
        return array
    if isinstance(array, pd.Series):
        return pa.Array.from_pandas(array)
    if type(array).__module__.split(".")[0] == "polars":
        return array.to_arrow()
    try:
        return pa.array(array, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise DataError(
            f"cannot hash a {type(array).__name__} as a column: {exc}",
            hint="pass a pyarrow Array, a pandas or polars Series, or a list of values",
        ) from exc
