"""Check one column of data against its :class:`~regrow.data.schema.ColumnSchema`.

Each check returns human-readable problems (empty when the data fits) that name the column and
the offending values or counts; :meth:`Schema.validate` gathers them into one error.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import valid_numpy
from regrow.data.frames import logical_dtype

if TYPE_CHECKING:
    from regrow.data.schema import ColumnSchema

__all__ = ["ACCEPTS", "column_problems"]

# data dtype (None: an all-null column of unknown type) accepted for each declared dtype
ACCEPTS = {
    "bool": ("bool",),
    "category": ("category", "string"),
    "datetime": ("datetime",),
    "float": ("float", "int"),
    "int": ("int",),
    "string": ("category", "string"),
}
_SHOWN = 5


def column_problems(spec: ColumnSchema, array: pa.Array) -> list[str]:
    """Every way the canonical column ``array`` breaks ``spec`` (dtype first: a column of the
    wrong dtype gets no value checks).

    >>> from regrow.data import ColumnSchema
    >>> column_problems(ColumnSchema("n", "int", nullable=False), pa.array([1, None]))
    ["column 'n': 1 null value but the schema says it is not nullable"]
    """
    label = f"column {spec.name!r}"
    found = logical_dtype(array.type)
    if found is not None and found not in ACCEPTS[spec.dtype]:
        return [f"{label}: expected dtype {spec.dtype!r}, found {found!r} (Arrow {array.type})"]
    problems = []
    if not spec.nullable and array.null_count:
        problems.append(
            f"{label}: {_rows(array.null_count, 'null value')} but the schema says it is "
            "not nullable"
        )
    if found is None:
        return problems
    if spec.min is not None or spec.max is not None:
        problems.extend(_range_problems(spec, array, label))
    if spec.categories is not None:
        problems.extend(_category_problems(spec.categories, array, label))
    return problems


def _range_problems(spec: ColumnSchema, array: pa.Array, label: str) -> list[str]:
    if spec.dtype != "datetime":  # fast path: a min/max pass tells if anything is outside
        values = valid_numpy(array)
        if values.size == 0 or (
            (spec.min is None or values.min() >= spec.min)
            and (spec.max is None or values.max() <= spec.max)
        ):
            return []
    outside = None
    for bound, compare in ((spec.min, pc.less), (spec.max, pc.greater)):
        if bound is not None:
            scalar = pa.scalar(bound, type=array.type if spec.dtype == "datetime" else None)
            mask = compare(array, scalar)
            outside = mask if outside is None else pc.or_(outside, mask)
    count = pc.sum(outside).as_py() or 0
    if not count:
        return []
    smallest, largest = pc.min_max(array.filter(outside)).values()
    limits = ", ".join(
        f"{key}={_format(value)}"
        for key, value in (("min", spec.min), ("max", spec.max))
        if value is not None
    )
    return [
        f"{label}: {_rows(count, 'value')} outside {limits} "
        f"(smallest {_format(smallest.as_py())}, largest {_format(largest.as_py())})"
    ]


def _category_problems(categories: tuple[str, ...], array: pa.Array, label: str) -> list[str]:
    strings = array.cast(pa.large_string())
    known = pc.is_in(strings, value_set=pa.array(categories, pa.large_string()))
    unknown = pc.and_(pc.is_valid(strings), pc.invert(known))
    count = pc.sum(unknown).as_py() or 0
    if not count:
        return []
    counts = pc.value_counts(strings.filter(unknown))
    pairs = sorted(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
        key=lambda pair: (-pair[1], pair[0]),
    )
    shown = ", ".join(f"{value!r} ({_rows(n, 'row')})" for value, n in pairs[:_SHOWN])
    more = f" and {len(pairs) - _SHOWN} more" if len(pairs) > _SHOWN else ""
    return [f"{label}: {_rows(count, 'value')} not among the declared categories: {shown}{more}"]


def _rows(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _format(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)
