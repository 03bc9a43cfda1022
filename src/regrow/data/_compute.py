"""Small vectorised helpers shared by the schema, profile and snapshot modules.

>>> import pyarrow as pa
>>> valid_numpy(pa.array([3, None, 1])).tolist()
[3, 1]
>>> timestamp_bounds(pa.array([1_500, 2_500], pa.timestamp("ns")))
(datetime.datetime(1970, 1, 1, 0, 0, 0, 1), datetime.datetime(1970, 1, 1, 0, 0, 0, 3))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_array", "parallel_map", "timestamp_bounds", "valid_numpy"]

T = TypeVar("T")
R = TypeVar("R")

# Below this many cells, starting threads costs more than it saves.
_PARALLEL_CELLS = 200_000
_EPOCH = datetime(1970, 1, 1)
_PER_MICROSECOND = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}


def as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous Arrow array (an empty ChunkedArray gives an empty array)."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        return column.combine_chunks()
    return column


def valid_numpy(array: pa.Array) -> np.ndarray[Any, Any]:
    """The non-null values of a numeric or timestamp array as numpy (timestamps as int64)."""
    if pa.types.is_timestamp(array.type):
        array = array.cast(pa.int64())
    if array.null_count:
        array = pc.drop_null(array)
    return np.asarray(array.to_numpy(zero_copy_only=False))


def timestamp_bounds(array: pa.Array) -> tuple[datetime, datetime] | None:
    """The smallest and largest timestamp, widened to whole microseconds, or None if empty."""
    values = valid_numpy(array)
    if values.size == 0:
        return None
    unit = array.type.unit
    lo, hi = int(values.min()), int(values.max())
    if unit == "ns":
        lo, hi = lo // 1000, -(-hi // 1000)  # floor the minimum, ceil the maximum
    else:
        lo, hi = lo * _PER_MICROSECOND[unit], hi * _PER_MICROSECOND[unit]
    bounds = (_EPOCH + timedelta(microseconds=lo), _EPOCH + timedelta(microseconds=hi))
    if array.type.tz is not None:
        return bounds[0].replace(tzinfo=UTC), bounds[1].replace(tzinfo=UTC)
    return bounds


def parallel_map(fn: Callable[[T], R], items: Sequence[T], *, cells: int) -> list[R]:
    """``[fn(item) for item in items]``, on threads when there are enough cells to be worth it.

    numpy, pyarrow and hashlib release the GIL on large buffers, so per-column work runs in
    parallel on several cores.
    """
    workers = min(len(items), os.cpu_count() or 1, 8)
    if workers < 2 or cells < _PARALLEL_CELLS:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="regrow-data") as pool:
        return list(pool.map(fn, items))
