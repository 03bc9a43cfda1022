"""Per-column statistics of a table: the reference that drift is measured against.

:func:`profile_table` returns plain JSON types only (``None`` where a statistic does not exist,
such as the mean of an all-null column), so a profile can be stored in the catalog as is.

>>> import pandas as pd
>>> profile = profile_table(pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", "a", None]}))
>>> profile["rows"], profile["columns"]["x"]["mean"], profile["columns"]["x"]["null_rate"]
(4, 2.3333333333333335, 0.25)
>>> profile["columns"]["c"]["top"]
[{'value': 'a', 'count': 2}, {'value': 'b', 'count': 1}]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import as_array, parallel_map, timestamp_bounds, valid_numpy
from regrow.data.frames import logical_dtype, to_arrow
from regrow.errors import DataError

__all__ = ["QUANTILES", "TOP_VALUES", "profile_table", "quantiles"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""The quantiles profiled for numeric columns."""

TOP_VALUES = 20
"""How many of the most frequent values are profiled for categorical columns."""


def profile_table(data: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Profile ``columns`` (default: all) of ``data`` (anything :func:`to_arrow` accepts).

    Returns ``{"rows": n, "columns": {name: stats}}``. Every column's stats have ``dtype``
    (``None`` for an all-null column of unknown type), ``count`` (non-null values), ``nulls``
    and ``null_rate`` (``None`` for an empty table). Numeric columns add ``mean``, ``std``
    (sample, ddof=1), ``min``, ``max`` and ``quantiles`` (``{"0.01": v, ...}``, linear
    interpolation as numpy's default); non-finite results are ``None``. ``bool``, ``string``
    and ``category`` columns add ``distinct``, ``top`` (the 20 most frequent values, ties by
    value) and ``other`` (the non-null values not in ``top``). ``datetime`` columns add ``min``
    and ``max`` as ISO-8601 strings.
    """
    table = to_arrow(data)
    names = table.column_names if columns is None else list(columns)
    unknown = [n for n in names if n not in table.column_names]
    if unknown:
        raise DataError(
            f"cannot profile unknown column(s) {', '.join(map(repr, unknown))}",
            hint=f"the table has {', '.join(map(repr, table.column_names))}",
        )
    stats = parallel_map(
        lambda name: _profile_column(as_array(table.column(name))),
        names,
        cells=table.num_rows * len(names),
    )
    return {"rows": table.num_rows, "columns": dict(zip(names, stats, strict=True))}


def quantiles(values: np.ndarray[Any, Any], qs: Sequence[float] = QUANTILES) -> list[float]:
    """Exact quantiles of a 1-D numeric array, equal to ``numpy.quantile(values, qs)``.

    About three times faster than numpy for several quantiles: it partitions around the middle
    rank first, then each half, so each pass touches fewer values.

    >>> quantiles(np.arange(101.0), [0.05, 0.5])
    [5.0, 50.0]
    """
    return _quantiles_in_place(np.array(values, dtype=np.float64), qs)


def _quantiles_in_place(work: np.ndarray[Any, Any], qs: Sequence[float]) -> list[float]:
    # Reorders ``work`` (a float64 array the caller owns).
    n = len(work)
    if n == 0:
        return [math.nan for _ in qs]
    positions = [q * (n - 1) for q in qs]
    ranks = sorted({r for p in positions for r in (math.floor(p), min(math.floor(p) + 1, n - 1))})
    pending = [(0, n, ranks)]
    while pending:
        lo, hi, ks = pending.pop()
        if not ks:
            continue
        middle = len(ks) // 2
        k = ks[middle]
        work[lo:hi].partition(k - lo)
        pending += [(lo, k, ks[:middle]), (k + 1, hi, ks[middle + 1 :])]
    return [
        _lerp(work[math.floor(p)], work[min(math.floor(p) + 1, n - 1)], p % 1) for p in positions
    ]


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's formula, so results match numpy.quantile to the last bit
    diff = b - a
    return float(b - diff * (1 - t)) if t >= 0.5 else float(a + diff * t)


def _profile_column(array: pa.Array) -> dict[str, Any]:
    rows, nulls = len(array), array.null_count
    dtype = logical_dtype(array.type)
    stats: dict[str, Any] = {
        "dtype": dtype,
        "count": rows - nulls,
        "nulls": nulls,
        "null_rate": nulls / rows if rows else None,
    }
    if dtype in ("int", "float"):
        stats.update(_numeric(array))
    elif dtype in ("bool", "string", "category"):
        stats.update(_categorical(array))
    elif dtype == "datetime":
        try:
            bounds = timestamp_bounds(array)
        except OverflowError:  # beyond what Python's datetime can hold
            bounds = None
        stats["min"], stats["max"] = (b.isoformat() for b in bounds) if bounds else (None, None)
    return stats


def _numeric(array: pa.Array) -> dict[str, Any]:
    values = valid_numpy(array)
    if values.size == 0:
        return {
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "quantiles": {str(q): None for q in QUANTILES},
        }
    work = np.array(values, dtype=np.float64)  # one float64 copy for every statistic
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported as None
        mean = work.mean()
        std = work.std(ddof=1) if work.size > 1 else math.nan
        qs = _quantiles_in_place(work, QUANTILES)  # last: it reorders ``work``
    return {
        "mean": _finite(mean),
        "std": _finite(std),
        "min": _finite(values.min().item()),
        "max": _finite(values.max().item()),
        "quantiles": {str(q): _finite(v) for q, v in zip(QUANTILES, qs, strict=True)},
    }


def _categorical(array: pa.Array) -> dict[str, Any]:
    if pa.types.is_dictionary(array.type):
        array = array.cast(pa.large_string())
    counts = pc.value_counts(pc.drop_null(array))
    distinct = len(counts)
    if distinct > TOP_VALUES:
        top_indices = pc.select_k_unstable(
            pa.table({"v": counts.field("values"), "c": counts.field("counts")}),
            k=TOP_VALUES,
            sort_keys=[("c", "descending"), ("v", "ascending")],
        )
        counts = counts.take(top_indices)
    pairs = sorted(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
        key=lambda pair: (-pair[1], pair[0]),
    )
    top = [{"value": value, "count": count} for value, count in pairs[:TOP_VALUES]]
    non_null = len(array) - array.null_count
    return {"distinct": distinct, "top": top, "other": non_null - sum(t["count"] for t in top)}


def _finite(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
