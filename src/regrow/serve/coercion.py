"""Values of a request (JSON scalars) as the columns a version reads, and a file's rows too.

:func:`coerce` turns one input's values into the numpy array of its logical dtype, checking
each value's type (``INT64`` takes integers and integral floats, ``FP64`` numbers, ``BOOL``
true or false, ``BYTES`` strings; datetimes are ISO 8601 strings); ``null`` is a missing
value. A wrong value is a :class:`~regrow.serve.errors.BadRequest` naming it.
:func:`frame_columns` does the same for the columns of a DataFrame (``regrow predict``).

>>> coerce("age", [30, 41.0], "int").tolist()
[30, 41]
>>> coerce("age", [30, "41"], "int")
Traceback (most recent call last):
...
regrow.serve.errors.BadRequest: input 'age' is INT64: '41' is not one of JSON numbers; ...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from regrow.serve.errors import BadRequest
from regrow.serve.signature import Signature

__all__ = ["coerce", "frame_columns"]

_I64 = 2.0**63


def coerce(name: str, values: Sequence[Any] | np.ndarray, dtype: str) -> np.ndarray:
    """``values`` (JSON scalars) as the array a column of logical ``dtype`` holds.

    ``None`` is missing: NaN in numbers (an ``int`` column with one becomes float, as pandas
    reads it), None in strings and booleans, NaT in datetimes.

    >>> coerce("n", [1, 2.0, None], "int").tolist()
    [1.0, 2.0, nan]
    >>> coerce("when", ["2024-05-01T12:00:00Z"], "datetime").astype(str).tolist()
    ['2024-05-01T12:00:00.000000']
    """
    if isinstance(values, np.ndarray):  # a column of a numeric 2-D tensor: floats already
        if dtype == "float":
            return values
        if dtype == "int":
            return _integral(name, values, values.tolist())
        return coerce(name, values.tolist(), dtype)
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    if dtype in ("int", "float"):
        _only(name, values, kinds, (int, float), "INT64" if dtype == "int" else "FP64")
        if dtype == "int" and kinds <= {int} and not nulls:
            try:
                return np.array(values, dtype=np.int64)
            except OverflowError:
                _bad(name, values, "INT64", lambda v: abs(v) >= _I64, "is out of the INT64 range")
        arr = np.array(values, dtype=np.float64)
        if dtype == "float":
            return arr
        ints = _integral(name, arr, values)
        if ints.dtype == np.int64 and int in kinds and np.abs(arr).max() > 2**53:
            return np.array([int(v) for v in values], dtype=np.int64)  # exact past 2**53
        return ints
    if dtype == "bool":
        _only(name, values, kinds, (bool,), "BOOL")
        return np.array(values, dtype=object if nulls else bool)
    _only(name, values, kinds, (str,), "BYTES")
    if dtype == "datetime":
        return _datetimes(name, values)
    return np.array(values, dtype=object)


def _integral(name: str, arr: np.ndarray, values: Sequence[Any]) -> np.ndarray:
    """``arr`` (floats, NaN for missing) as int64, or as it is when a value is missing; a
    value that is not an integer, or past the INT64 range, is named (from ``values``)."""
    missing = np.isnan(arr)
    gaps = bool(missing.any())
    known = arr[~missing] if gaps else arr
    if not np.array_equal(known, np.trunc(known)):
        _bad(name, values, "INT64", _fractional, "is not an integer")
    if known.size and np.abs(known).max() >= _I64:
        _bad(name, values, "INT64", lambda v: abs(v) >= _I64, "is out of the INT64 range")
    return arr if gaps else arr.astype(np.int64)


def frame_columns(frame: Any, signature: Signature) -> dict[str, np.ndarray]:
    """The input columns of a pandas DataFrame (a CSV or Parquet file's rows), coerced as
    :func:`decode` coerces a request's: missing values (NaN, NaT, None) are nulls.

    >>> import pandas as pd
    >>> from regrow.serve.signature import Signature, TensorSpec
    >>> sig = Signature((TensorSpec("n", "INT64", (-1,), "int"),), (), "regression")
    >>> frame_columns(pd.DataFrame({"n": [1.0, None], "other": ["x", "y"]}), sig)["n"].tolist()
    [1.0, nan]
    """
    if signature.aliases:
        frame = frame.rename(
            columns={a: n for a, n in signature.aliases.items() if n not in frame.columns}
        )
    missing = [
        n for n in signature.input_names if n not in frame.columns and n not in signature.optional
    ]
    if missing:
        raise BadRequest(
            f"the data lacks input column(s) {missing}",
            hint=f"it has {list(frame.columns)}; the inputs are {signature.input_names}",
        )
    columns: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        if spec.name not in frame.columns:  # optional: the version's default adapter fills it
            columns[spec.name] = coerce(spec.name, [None] * len(frame), spec.dtype)
            continue
        series = frame[spec.name]
        if spec.dtype == "datetime" and series.dtype.kind == "M":
            columns[spec.name] = (
                series.dt.tz_localize(None).to_numpy() if series.dt.tz else (series.to_numpy())
            )
            continue
        values = series.astype(object).where(series.notna(), None).tolist()
        columns[spec.name] = coerce(spec.name, values, spec.dtype)
    return columns


def _fractional(value: float) -> bool:
    return (math.isfinite(value) and value != math.trunc(value)) or math.isinf(value)


def _datetimes(name: str, values: Sequence[Any]) -> np.ndarray:
    import pandas as pd

    try:
        stamps = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(
            f"input {name!r} holds a value that is not an ISO 8601 date-time ({exc})",
            hint='send strings like "2024-05-01T12:00:00" (a zone is converted to UTC)',
        ) from None
    return np.asarray(stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[us]"))


def _only(
    name: str, values: Sequence[Any], kinds: set[type], allowed: tuple[type, ...], datatype: str
) -> None:
    if kinds <= set(allowed):
        return
    what = {"BYTES": "JSON strings", "BOOL": "true or false"}.get(datatype, "JSON numbers")
    _bad(name, values, datatype, lambda v: type(v) not in allowed, f"is not one of {what}")


def _bad(name: str, values: Sequence[Any], datatype: str, wrong: Any, why: str) -> None:
    first = next(v for v in values if v is not None and wrong(v))
    raise BadRequest(
        f"input {name!r} is {datatype}: {_short(first)} {why}",
        hint="send the values the model metadata lists (GET /v2/models/<model>)",
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
