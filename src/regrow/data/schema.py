"""Schemas: the columns a dataset must have, their types and their constraints.

A :class:`Schema` is a tuple of :class:`ColumnSchema`. Each column has a logical ``dtype``
(``int``, ``float``, ``bool``, ``string``, ``category`` or ``datetime``), says whether it may
hold nulls, and optionally bounds its values (``min``/``max`` for numbers and datetimes, the
allowed ``categories`` for categories). Schemas are inferred from data, declared in code or as
plain dicts (see :meth:`Schema.to_dict`), checked against data, and compared with each other.

>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [31, 45, 27, 31], "plan": ["pro", "free", "free", "pro"]})
>>> schema = Schema.infer(frame)
>>> schema.names
('age', 'plan')
>>> schema["plan"].dtype, schema["plan"].categories
('category', ('free', 'pro'))
>>> schema.validate(pd.DataFrame({"age": [200], "plan": ["team"]}))
Traceback (most recent call last):
...
regrow.errors.SchemaError: the data does not match the schema (2 problems):
  - column 'age': 1 value outside min=27, max=45 (smallest 200, largest 200)
  - column 'plan': 1 value not among the declared categories: 'team' (1 row); ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import as_array, timestamp_bounds, valid_numpy
from regrow.data._schema_checks import column_problems
from regrow.data.frames import logical_dtype, to_arrow
from regrow.data.schema_diff import SchemaDiff
from regrow.errors import DataError, SchemaError

__all__ = ["DTYPES", "ColumnSchema", "Schema", "SchemaDiff", "conform_column"]

DTYPES = ("bool", "category", "datetime", "float", "int", "string")
"""The logical dtypes a column can have."""

Bound = int | float | datetime

_RANGED = ("datetime", "float", "int")
_PHYSICAL = {
    "bool": pa.bool_(),
    "category": pa.large_string(),
    "datetime": pa.timestamp("us"),
    "float": pa.float64(),
    "int": pa.int64(),
    "string": pa.large_string(),
}
_COLUMN_KEYS = ("name", "dtype", "nullable", "min", "max", "categories")
_VALIDATE_HINT = (
    "fix the data, or declare a schema that allows it (Schema.infer(data) shows what the data "
    "looks like)"
)


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its name, logical dtype, nullability and optional value constraints.

    ``min``/``max`` apply to ``int``, ``float`` and ``datetime`` columns, ``categories`` to
    ``category`` columns (``None`` allows any value). Invalid combinations raise
    :class:`~regrow.errors.SchemaError`.

    >>> ColumnSchema("age", "int", nullable=False, min=0, max=130).to_dict()
    {'name': 'age', 'dtype': 'int', 'nullable': False, 'min': 0, 'max': 130}
    """

    name: str
    dtype: str
    nullable: bool = True
    min: Bound | None = None
    max: Bound | None = None
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(
                f"a column name must be a non-empty string (got {self.name!r})",
                hint="name every column of the schema",
            )
        if self.dtype not in DTYPES:
            raise SchemaError(
                f"column {self.name!r}: unknown dtype {self.dtype!r}",
                hint=f"use one of {', '.join(DTYPES)}",
            )
        if not isinstance(self.nullable, bool):
            raise SchemaError(
                f"column {self.name!r}: 'nullable' must be true or false (got {self.nullable!r})",
                hint="write nullable: true or nullable: false",
            )
        for key in ("min", "max"):
            _check_bound(self, key, getattr(self, key))
        if self.min is not None and self.max is not None:
            try:
                inverted = self.min > self.max  # type: ignore[operator]
            except TypeError as exc:  # a naive and an aware datetime
                raise SchemaError(
                    f"column {self.name!r}: min {self.min!r} and max {self.max!r} cannot be "
                    "compared",
                    hint="give both bounds a time zone, or neither",
                ) from exc
            if inverted:
                raise SchemaError(
                    f"column {self.name!r}: min {self.min!r} is greater than max {self.max!r}",
                    hint="swap the bounds",
                )
        if self.categories is not None:
            object.__setattr__(self, "categories", _check_categories(self))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; keys whose value is ``None`` are left out."""
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _bound_to_json(value)
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> ColumnSchema:
        """Build a column from :meth:`to_dict` output; ``nullable`` defaults to true.

        >>> ColumnSchema.from_dict({"name": "at", "dtype": "datetime", "min": "2024-01-01"}).min
        datetime.datetime(2024, 1, 1, 0, 0)
        """
        if not isinstance(spec, Mapping):
            raise SchemaError(
                f"a schema column must be a mapping (got {spec!r})",
                hint='write {"name": ..., "dtype": ...}',
            )
        name = spec.get("name", "?")
        unknown = sorted(str(k) for k in spec if k not in _COLUMN_KEYS)
        if unknown:
            raise SchemaError(
                f"column {name!r}: unknown key(s) {', '.join(map(repr, unknown))}",
                hint=f"a column accepts {', '.join(_COLUMN_KEYS)}",
            )
        for key in ("name", "dtype"):
            if key not in spec:
                raise SchemaError(
                    f"schema column {dict(spec)!r} has no {key!r}",
                    hint="every column needs a name and a dtype",
                )
        dtype = spec["dtype"]
        categories = spec.get("categories")
        return cls(
            name=spec["name"],
            dtype=dtype,
            nullable=spec.get("nullable", True),
            min=_bound_from_json(name, dtype, "min", spec.get("min")),
            max=_bound_from_json(name, dtype, "max", spec.get("max")),
            categories=tuple(categories) if isinstance(categories, list | tuple) else categories,
        )


@dataclass(frozen=True)
class Schema:
    """An ordered tuple of uniquely named :class:`ColumnSchema`.

    >>> schema = Schema((ColumnSchema("x", "float"),))
    >>> Schema.from_dict(schema.to_dict()) == schema
    True
    """

    columns: tuple[ColumnSchema, ...]

    def __post_init__(self) -> None:
        columns = tuple(self.columns)
        for column in columns:
            if not isinstance(column, ColumnSchema):
                raise SchemaError(
                    f"a schema holds ColumnSchema objects (got {column!r})",
                    hint="build columns with ColumnSchema(name, dtype, ...)",
                )
        names = [c.name for c in columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(
                f"duplicate column(s) in the schema: {', '.join(map(repr, duplicates))}",
                hint="declare each column once",
            )
        object.__setattr__(self, "columns", columns)

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r} in the schema; columns: {', '.join(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"columns": [ColumnSchema.to_dict(), ...]}``."""
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Schema:
        """Build a schema from :meth:`to_dict` output, naming the bad key or value if invalid."""
        if not isinstance(spec, Mapping) or not isinstance(spec.get("columns"), list | tuple):
            raise SchemaError(
                f"a schema dict needs a 'columns' list (got {spec!r})",
                hint='write {"columns": [{"name": "age", "dtype": "int"}, ...]}',
            )
        unknown = sorted(str(k) for k in spec if k != "columns")
        if unknown:
            raise SchemaError(
                f"unknown schema key(s) {', '.join(map(repr, unknown))}",
                hint="a schema dict has only 'columns'",
            )
        return cls(tuple(ColumnSchema.from_dict(c) for c in spec["columns"]))

    @classmethod
    def coerce(cls, schema: Schema | Mapping[str, Any]) -> Schema:
        """Accept a :class:`Schema` or its dict form."""
        if isinstance(schema, Schema):
            return schema
        if isinstance(schema, Mapping):
            return cls.from_dict(schema)
        raise SchemaError(
            f"expected a Schema or a dict (got a {type(schema).__name__})",
            hint="pass Schema(...) or its to_dict() form",
        )

    @classmethod
    def infer(cls, data: Any, *, max_categories: int = 50) -> Schema:
        """The schema that describes ``data`` exactly (any input :func:`to_arrow` accepts).

        Nullability and ranges come from the data. A string column becomes ``category`` when it
        has at most ``max_categories`` distinct values and each appears twice on average;
        pandas/polars categoricals always do.
        """
        if isinstance(max_categories, bool) or not isinstance(max_categories, int):
            raise SchemaError(
                f"max_categories must be a non-negative int (got {max_categories!r})",
                hint="pass e.g. max_categories=50",
            )
        table = to_arrow(data)
        return cls(
            tuple(
                _infer_column(name, as_array(table.column(name)), max_categories)
                for name in table.column_names
            )
        )

    def validate(self, data: Any, *, allow_extra: bool = False) -> None:
        """Raise :class:`~regrow.errors.SchemaError` listing every way ``data`` breaks the schema.

        Checks missing columns, extra columns (unless ``allow_extra``), dtypes, nulls in
        non-nullable columns, values outside ``[min, max]`` and unknown categories.
        """
        table = to_arrow(data)
        problems = []
        present = set(table.column_names)
        missing = [n for n in self.names if n not in present]
        if missing:
            problems.append(f"missing column(s): {', '.join(map(repr, missing))}")
        extra = [n for n in table.column_names if n not in self]
        if extra and not allow_extra:
            problems.append(f"unexpected column(s): {', '.join(map(repr, extra))}")
        for column in self.columns:
            if column.name in present:
                problems.extend(column_problems(column, as_array(table.column(column.name))))
        if problems:
            count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
            lines = "".join(f"\n  - {p}" for p in problems)
            raise SchemaError(
                f"the data does not match the schema ({count}):{lines}", hint=_VALIDATE_HINT
            )

    def conform(self, data: Any, *, allow_extra: bool = False) -> pa.Table:
        """Validate ``data`` and return it as a table in schema order with canonical types.

        ``float`` columns holding integers become float64, ``category`` columns plain strings
        (their categories live in the schema), all-null columns take the declared type.
        Extra columns (with ``allow_extra``) follow the schema's columns.
        """
        table = to_arrow(data)
        self.validate(table, allow_extra=allow_extra)
        names = list(self.names) + [n for n in table.column_names if n not in self]
        arrays = [
            conform_column(as_array(table.column(n)), self[n].dtype)
            if n in self
            else as_array(table.column(n))
            for n in names
        ]
        return pa.Table.from_arrays(arrays, names=names)

    def compare(self, other: Schema | Mapping[str, Any]) -> SchemaDiff:
        """What changed from this schema (old) to ``other`` (new).

        >>> old = Schema((ColumnSchema("a", "int"), ColumnSchema("b", "int")))
        >>> new = Schema((ColumnSchema("a", "float"), ColumnSchema("c", "bool")))
        >>> print(old.compare(new))
        incompatible schema change:
          + 'c' (bool)
          - 'b' (int)
          ~ 'a': dtype int → float
        """
        new = Schema.coerce(other)
        return SchemaDiff(
            added=tuple(c for c in new.columns if c.name not in self),
            removed=tuple(c for c in self.columns if c.name not in new),
            changed={
                c.name: (c, new[c.name]) for c in self.columns if c.name in new and c != new[c.name]
            },
        )


def conform_column(array: pa.Array, dtype: str) -> pa.Array:
    """Cast a canonical column (see :mod:`regrow.data.frames`) to the physical type of ``dtype``.

    >>> import pyarrow as pa
    >>> conform_column(pa.array([1, 2]), "float").type
    DataType(double)
    """
    if dtype == "datetime" and pa.types.is_timestamp(array.type):
        return array
    target = _PHYSICAL[dtype]
    if array.type == target:
        return array
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"cannot store a {array.type} column as {dtype!r}: {exc}",
            hint=f"convert the column to {dtype} first",
        ) from exc


# -- inference ----------------------------------------------------------------------------


def _infer_column(name: str, array: pa.Array, max_categories: int) -> ColumnSchema:
    dtype = logical_dtype(array.type) or "string"
    nullable = array.null_count > 0
    if dtype in ("int", "float"):
        values = valid_numpy(array)
        if values.size == 0:
            return ColumnSchema(name, dtype, nullable)
        lo, hi = values.min().item(), values.max().item()
        if dtype == "float":
            lo, hi = lo + 0.0, hi + 0.0  # -0.0 == 0.0: one spelling for one value
        return ColumnSchema(name, dtype, nullable, min=lo, max=hi)
    if dtype == "datetime":
        try:
            bounds = timestamp_bounds(array)
        except OverflowError:  # beyond the years 1-9999 that Python's datetime can hold
            bounds = None
        return ColumnSchema(name, dtype, nullable, *(bounds or (None, None)))
    if dtype in ("string", "category"):
        distinct = pc.unique(pc.drop_null(array.cast(pa.large_string())))
        non_null = len(array) - array.null_count
        few = 0 < len(distinct) <= max_categories and 2 * len(distinct) <= non_null
        if dtype == "category" or few:
            return ColumnSchema(
                name, "category", nullable, categories=tuple(sorted(distinct.to_pylist()))
            )
    return ColumnSchema(name, dtype, nullable)


# -- declaration checks -------------------------------------------------------------------


def _check_bound(column: ColumnSchema, key: str, value: Any) -> None:
    if value is None:
        return
    dtype = column.dtype
    if dtype not in _RANGED:
        raise SchemaError(
            f"column {column.name!r}: {key!r} applies to int, float and datetime columns, "
            f"not {dtype!r} (got {value!r})",
            hint=f"remove {key!r} or change the dtype",
        )
    if dtype == "datetime":
        ok = isinstance(value, datetime)
    elif dtype == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and -(2**63) <= value < 2**63
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and not math.isnan(value)
    if not ok:
        expected = {"datetime": "a datetime", "int": "a 64-bit int", "float": "a number"}[dtype]
        raise SchemaError(
            f"column {column.name!r}: {key!r} must be {expected} for a {dtype!r} column "
            f"(got {value!r}, a {type(value).__name__})",
            hint=f"give {key!r} as {expected}",
        )


def _check_categories(column: ColumnSchema) -> tuple[str, ...]:
    categories = column.categories
    if column.dtype != "category":
        raise SchemaError(
            f"column {column.name!r}: 'categories' applies to 'category' columns, "
            f"not {column.dtype!r}",
            hint="remove 'categories' or use dtype 'category'",
        )
    if not isinstance(categories, tuple | list) or not all(isinstance(c, str) for c in categories):
        raise SchemaError(
            f"column {column.name!r}: 'categories' must be a list of strings (got {categories!r})",
            hint='write categories: ["a", "b"]',
        )
    duplicates = sorted({c for c in categories if categories.count(c) > 1})
    if duplicates:
        raise SchemaError(
            f"column {column.name!r}: duplicate categories {', '.join(map(repr, duplicates))}",
            hint="list each category once",
        )
    return tuple(categories)


def _bound_to_json(value: Bound) -> int | float | str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _bound_from_json(name: str, dtype: str, key: str, value: Any) -> Any:
    if dtype == "datetime" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise SchemaError(
                f"column {name!r}: {key!r} is not an ISO-8601 datetime (got {value!r})",
                hint="write e.g. 2024-01-31T00:00:00",
            ) from exc
    if dtype == "datetime" and isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if dtype == "float" and value in ("inf", "-inf"):
        return float(value)
    return value
