"""Boundary adapters: bridge a changed data shape to what a trained system reads.

Upstream data changes shape long before anyone retrains: a column is renamed, an ``int`` column
arrives as ``float``, a new category appears, a column goes missing. A system declares
adapters at its input boundary (``System(..., adapters=[...])``) and every row that enters it,
in training, monitoring, evaluation and serving, passes through them first, in order:

==================== ===============================================================================
adapter              what it does
==================== ===============================================================================
:class:`Rename`      feeds the incoming column ``source`` as ``column``
:class:`Cast`        converts ``column`` to ``dtype`` (``int``, ``float``, ``bool``, ``string``),
                     refusing values the type cannot hold exactly and values outside ``min``/``max``
:class:`Default`     fills a missing ``column`` (or its nulls) with ``value``
:class:`MapCategories` maps values of ``column`` (``mapping``); with ``known``, any other value
                     becomes ``unseen`` ("unseen → other")
:class:`Derived`     computes ``column`` from ``inputs`` with a named, versioned function
==================== ===============================================================================

Each adapter leaves rows that already have the shape the system reads as they are (a
:class:`Rename` does nothing when ``column`` is there, a :class:`Cast` nothing when the type
matches), so the same system reads the old data and the new alike. An adapter enters the
fingerprint of the components that read its column through the data it produces: the
``data`` part hashes the adapted column, so a rename that gives back the column a component
was trained on re-fits nothing, while a derived column whose function's version changes
re-fits what reads it (see :mod:`regrow.fingerprint`). The adapters themselves are stored
with every system version (its ``spec``), which is how serving applies them and lineage shows
them.

Bad data gets a :class:`~regrow.errors.DataError` that names the column, the adapter and an
example of the value.

>>> import pandas as pd
>>> adapters = Adapters([Rename("plan", source="tier"), Cast("age", "int", min=0, max=130)])
>>> adapters.apply(pd.DataFrame({"age": [31.0, 45.0], "tier": ["pro", "free"]}))
   age  plan
0   31   pro
1   45  free
>>> adapters.apply(pd.DataFrame({"age": [31.5], "tier": ["pro"]}))
Traceback (most recent call last):
...
regrow.errors.DataError: column 'age': 1 value is not a whole number (31.5), so cast to int ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as fields_of
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from regrow._adapter_text import adapters_digest, describe_adapter
from regrow._hashing import hash_json
from regrow.errors import ConfigError, DataError

__all__ = [
    "ADAPTER_KINDS",
    "Adapter",
    "Adapters",
    "Cast",
    "Default",
    "Derived",
    "MapCategories",
    "Rename",
    "adapter_from_dict",
]

_CASTS = ("int", "float", "bool", "string")


def _check_column(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{what} must be a non-empty column name (got {name!r})",
            hint="name the column the system reads",
        )
    return name


def _is(n: int, one: str, many: str) -> str:
    return f"is {one}" if n == 1 else f"are {many}"


def _examples(values: Iterable[Any], limit: int = 3) -> str:
    shown = list(dict.fromkeys(repr(v) for v in values))
    more = f", ... ({len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


@dataclass(frozen=True)
class Adapter:
    """Base of the boundary adapters: ``column`` is the column the system reads."""

    kind: ClassVar[str] = ""
    column: str

    def sources(self) -> tuple[str, ...]:
        """The incoming columns this adapter reads to produce :attr:`column`."""
        return (self.column,)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with this adapter applied (the same object when nothing changes)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The adapter as JSON: how it is stored with a system version."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people."""
        return describe_adapter(self.to_dict())

    def _missing(self, frame: pd.DataFrame, name: str) -> DataError:
        return DataError(
            f"the data has no column {name!r} for the {self.kind} adapter of {self.column!r}",
            hint=f"it has {list(frame.columns)[:12]}; fix the adapter or the data",
        )


@dataclass(frozen=True)
class Rename(Adapter):
    """Feed the incoming column ``source`` as ``column``.

    >>> Rename("plan", source="tier").apply(pd.DataFrame({"tier": ["pro"]})).columns.tolist()
    ['plan']
    """

    kind: ClassVar[str] = "rename"
    source: str = ""

    def __post_init__(self) -> None:
        _check_column(self.column, "a rename's column")
        _check_column(self.source, f"the source of the rename to {self.column!r}")
        if self.source == self.column:
            raise ConfigError(
                f"rename of {self.column!r} to itself", hint="drop the adapter, or name the source"
            )

    def sources(self) -> tuple[str, ...]:
        return (self.source,)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.column in frame.columns:
            return frame  # the old shape: nothing to bridge
        if self.source not in frame.columns:
            raise self._missing(frame, self.source)
        return frame.rename(columns={self.source: self.column})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.column, "source": self.source}


@dataclass(frozen=True)
class Cast(Adapter):
    """Convert ``column`` to ``dtype``; a value the type cannot hold exactly, or outside
    ``min``/``max``, is refused with the column, the count and examples.

    >>> Cast("age", "int", max=130).apply(pd.DataFrame({"age": [31.0, 200.0]}))
    Traceback (most recent call last):
    ...
    regrow.errors.DataError: column 'age': 1 value outside the cast's range max=130 (200.0), so ...
    """

    kind: ClassVar[str] = "cast"
    dtype: str = "int"
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        _check_column(self.column, "a cast's column")
        if self.dtype not in _CASTS:
            raise ConfigError(
                f"cast of {self.column!r}: unknown dtype {self.dtype!r}",
                hint=f"use one of {', '.join(_CASTS)}",
            )
        for key in ("min", "max"):
            bound = getattr(self, key)
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float)
            ):
                raise ConfigError(
                    f"cast of {self.column!r}: {key} must be a number (got {bound!r})",
                    hint=f"e.g. Cast({self.column!r}, {self.dtype!r}, min=0, max=130)",
                )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(
                f"cast of {self.column!r}: min {self.min} is above max {self.max}",
                hint="swap them",
            )

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.column not in frame.columns:
            raise self._missing(frame, self.column)
        values = frame[self.column]
        self._check_range(values)
        cast = self._cast(values)
        if cast is values:
            return frame
        out = frame.copy(deep=False)
        out[self.column] = cast
        return out

    def _fail(self, what: str, bad: pd.Series) -> DataError:
        n = len(bad)
        return DataError(
            f"column {self.column!r}: {n:,} value{'s' if n != 1 else ''} {what} "
            f"({_examples(bad.tolist())}), so cast to {self.dtype} cannot bridge it",
            hint=f"fix the rows, or widen the cast's range (the cast adapter of {self.column!r})",
        )

    def _check_range(self, values: pd.Series) -> None:
        if (self.min is None and self.max is None) or pd.api.types.is_bool_dtype(values):
            return
        if pd.api.types.is_numeric_dtype(values):
            numbers = values
        elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            # numbers written as text ("200") are checked as the numbers they cast to; what is
            # not a number at all, the cast itself refuses
            numbers = pd.to_numeric(values, errors="coerce")
        else:
            return
        mask = pd.Series(False, index=values.index)
        if self.min is not None:
            mask |= (numbers < self.min).fillna(False).astype(bool)
        if self.max is not None:
            mask |= (numbers > self.max).fillna(False).astype(bool)
        outside = values[mask]
        if len(outside):
            bounds = ", ".join(
                f"{k}={v:g}" for k, v in (("min", self.min), ("max", self.max)) if v is not None
            )
            raise self._fail(f"outside the cast's range {bounds}", outside)

    def _nulls(self, values: pd.Series) -> DataError:
        n = int(values.isna().sum())
        return DataError(
            f"column {self.column!r}: {n:,} null value{'s' if n != 1 else ''} cannot be cast "
            f"to {self.dtype}",
            hint=f"declare a Default adapter for {self.column!r} before the cast",
        )

    def _cast(self, values: pd.Series) -> pd.Series:
        dtype = self.dtype
        if dtype == "string":
            if pd.api.types.is_string_dtype(values) and not isinstance(
                values.dtype, pd.CategoricalDtype
            ):
                return values
            return values.astype(object).where(values.isna(), values.astype(str))
        numeric = pd.to_numeric(values, errors="coerce")
        unreadable = values[numeric.isna() & values.notna()]
        if len(unreadable):
            raise self._fail(_is(len(unreadable), "not a number", "not numbers"), unreadable)
        if dtype == "float":
            if values.dtype == np.float64:
                return values
            return numeric.astype("float64")
        present = numeric.dropna()
        if dtype == "bool":
            if values.dtype == np.bool_:
                return values
            bad = present[~present.isin([0, 1])]
            if len(bad):
                raise self._fail(_is(len(bad), "not 0 or 1", "not 0 or 1"), bad)
            if len(present) < len(values):
                raise self._nulls(values)
            return numeric.astype(bool)
        # int
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
            return values  # numpy ints hold no nulls; a nullable Int64 is checked below
        if not (pd.api.types.is_integer_dtype(present) or pd.api.types.is_bool_dtype(present)):
            floats = present.astype("float64")
            whole = np.isfinite(floats) & (floats == np.floor(floats))
            if not whole.all():
                bad = present[~whole]
                raise self._fail(_is(len(bad), "not a whole number", "not whole numbers"), bad)
            huge = (floats >= 2.0**63) | (floats < -(2.0**63))
            if huge.any():
                raise self._fail("outside the int64 range", present[huge])
        if len(present) < len(values):
            raise self._nulls(values)
        return numeric.astype("int64")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "column": self.column, "dtype": self.dtype}
        out.update({k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None})
        return out


@dataclass(frozen=True)
class Default(Adapter):
    """Fill a missing ``column``, and the nulls of a present one, with ``value``.

    >>> Default("seats", 1).apply(pd.DataFrame({"a": [1, 2]}))["seats"].tolist()
    [1, 1]
    """

    kind: ClassVar[str] = "default"
    value: Any = None

    def __post_init__(self) -> None:
        _check_column(self.column, "a default's column")
        if self.value is None or (isinstance(self.value, float) and np.isnan(self.value)):
            raise ConfigError(
                f"the default of {self.column!r} has no value",
                hint="give the value missing rows should read, e.g. Default('seats', 1)",
            )
        if not isinstance(self.value, str | int | float | bool):
            raise ConfigError(
                f"the default of {self.column!r} must be a number, a string or a bool "
                f"(got {type(self.value).__name__})",
                hint="the value is stored as JSON with the system; give a plain number, string "
                "or bool",
            )

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.column not in frame.columns:
            out = frame.copy(deep=False)
            out[self.column] = pd.Series(self.value, index=frame.index)
            return out
        values = frame[self.column]
        if not values.isna().any():
            return frame
        out = frame.copy(deep=False)
        filled = values.fillna(self.value)
        if pd.api.types.is_float_dtype(values) and isinstance(self.value, int | float):
            filled = filled.astype("float64")
        out[self.column] = filled.infer_objects()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.column, "value": self.value}


@dataclass(frozen=True)
class MapCategories(Adapter):
    """Map values of ``column``: ``mapping`` first; then, with ``known``, every value not
    among them (and not null) becomes ``unseen``, which must be one of ``known``.

    >>> mapped = MapCategories("plan", {"gold+": "gold"}, known=("free", "gold", "other"),
    ...                        unseen="other")
    >>> mapped.apply(pd.DataFrame({"plan": ["gold+", "free", "team"]}))["plan"].tolist()
    ['gold', 'free', 'other']
    """

    kind: ClassVar[str] = "category mapping"
    mapping: Mapping[str, str] = field(default_factory=dict)
    known: tuple[str, ...] | None = None
    unseen: str | None = None

    def __post_init__(self) -> None:
        _check_column(self.column, "a category mapping's column")
        if not isinstance(self.mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.mapping.items()
        ):
            raise ConfigError(
                f"the category mapping of {self.column!r} must map strings to strings "
                f"(got {self.mapping!r})",
                hint="e.g. MapCategories('plan', {'gold+': 'gold'})",
            )
        object.__setattr__(self, "mapping", dict(sorted(self.mapping.items())))
        if self.known is not None:
            object.__setattr__(self, "known", tuple(sorted(str(k) for k in self.known)))
        if (self.unseen is None) != (self.known is None):
            raise ConfigError(
                f"the category mapping of {self.column!r} needs both known and unseen, or neither",
                hint="known: the categories the system was trained on; unseen: which of them "
                "other values become",
            )
        if self.known is not None and self.unseen not in self.known:
            raise ConfigError(
                f"the category mapping of {self.column!r} maps unseen values to {self.unseen!r}, "
                f"which is not a known category",
                hint=f"use one of {list(self.known)[:10]}",
            )
        if not self.mapping and self.known is None:
            raise ConfigError(
                f"the category mapping of {self.column!r} maps nothing",
                hint="give a mapping, or known and unseen",
            )
        if self.known is not None:
            stray = sorted({v for v in self.mapping.values() if v not in self.known})
            if stray:
                raise ConfigError(
                    f"the category mapping of {self.column!r} maps to {_examples(stray)}, "
                    "which is not a known category",
                    hint=f"map to one of {list(self.known)[:10]}, or add it to known",
                )

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.column not in frame.columns:
            raise self._missing(frame, self.column)
        values = frame[self.column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        mapped = values.replace(self.mapping) if self.mapping else values
        if self.known is not None:
            other = mapped.notna() & ~mapped.astype(object).isin(self.known)
            if other.any():
                mapped = mapped.astype(object).where(~other, self.unseen)
        present = values.notna()
        if not (mapped[present].astype(object) != values[present].astype(object)).any():
            return frame  # every value already one the system reads (nulls stay null)
        out = frame.copy(deep=False)
        out[self.column] = mapped
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "column": self.column}
        if self.mapping:
            out["mapping"] = dict(self.mapping)
        if self.known is not None:
            out["known"] = list(self.known)
            out["unseen"] = self.unseen
        return out


@dataclass(frozen=True)
class Derived(Adapter):
    """Compute ``column`` from ``inputs`` with ``function`` (rows of ``inputs`` in, one value
    per row out), at ``version``: bump it when the function's meaning changes.

    ``function`` is a module-level function (stored as ``module:qualname`` and imported where
    the system is served) or that path as a string. The column is computed only when the data
    lacks it.

    >>> Derived("ratio", "operator:truediv", version=1, inputs=("a", "b")).to_dict()["function"]
    'operator:truediv'
    """

    kind: ClassVar[str] = "derived"
    function: Callable[..., Any] | str = ""
    version: int = 1
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_column(self.column, "a derived column's name")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ConfigError(
                f"derived column {self.column!r}: version must be an int (got {self.version!r})",
                hint="start at 1 and bump it when the function's meaning changes",
            )
        inputs = (self.inputs,) if isinstance(self.inputs, str) else tuple(self.inputs)
        if not inputs:
            raise ConfigError(
                f"derived column {self.column!r} names no inputs",
                hint="inputs=('a', 'b'): the columns its function reads",
            )
        object.__setattr__(self, "inputs", tuple(_check_column(c, "an input") for c in inputs))
        object.__setattr__(self, "function", _function_path(self.function, self.column))

    def sources(self) -> tuple[str, ...]:
        return self.inputs

    def resolve(self) -> Callable[..., Any]:
        """The function, imported from its path."""
        module, _, qualname = str(self.function).partition(":")
        try:
            target: Any = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"derived column {self.column!r}: cannot import {self.function!r} ({exc})",
                hint="the function must be importable wherever the system runs (install its "
                "package or put its module on PYTHONPATH)",
            ) from exc
        if not callable(target):
            raise ConfigError(
                f"derived column {self.column!r}: {self.function!r} is not callable",
                hint="name a function, 'package.module:function'",
            )
        return target  # type: ignore[no-any-return]

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.column in frame.columns:
            return frame
        for name in self.inputs:
            if name not in frame.columns:
                raise self._missing(frame, name)
        try:
            values = self.resolve()(*(frame[c] for c in self.inputs))
        except (ConfigError, DataError):
            raise
        except Exception as exc:
            raise DataError(
                f"derived column {self.column!r}: {self.function} (version {self.version}) "
                f"failed: {type(exc).__name__}: {exc}",
                hint=f"check its inputs {list(self.inputs)}",
            ) from exc
        array = np.asarray(values)
        if array.ndim != 1 or len(array) != len(frame):
            got = f"{len(array)} values" if array.ndim == 1 else f"an array of shape {array.shape}"
            raise DataError(
                f"derived column {self.column!r}: {self.function} returned {got} "
                f"for {len(frame)} rows",
                hint="the function must return one value per row of its inputs",
            )
        series = pd.Series(array, index=frame.index)
        out = frame.copy(deep=False)
        out[self.column] = series
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "column": self.column,
            "function": self.function,
            "version": self.version,
            "inputs": list(self.inputs),
        }


def _function_path(function: Any, column: str) -> str:
    if isinstance(function, str):
        if ":" not in function:
            raise ConfigError(
                f"derived column {column!r}: function {function!r} is not 'module:name'",
                hint="pass the function itself, or 'package.module:function'",
            )
        return function
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not callable(function) or not module or not qualname or "<" in qualname:
        raise ConfigError(
            f"derived column {column!r}: {function!r} is not a module-level function",
            hint="define it at the top of a module (not a lambda or a nested function)",
        )
    if module == "__main__":
        raise ConfigError(
            f"derived column {column!r}: {qualname} is defined in __main__, which serving "
            "cannot import",
            hint="move it into a module the system file imports",
        )
    return f"{module}:{qualname}"


ADAPTER_KINDS: dict[str, type[Adapter]] = {
    cls.kind: cls for cls in (Rename, Cast, Default, MapCategories, Derived)
}
"""Each adapter class by the ``kind`` its JSON carries."""


def adapter_from_dict(data: Mapping[str, Any]) -> Adapter:
    """The adapter a :meth:`Adapter.to_dict` wrote.

    >>> adapter_from_dict({"kind": "rename", "column": "plan", "source": "tier"})
    Rename(column='plan', source='tier')
    """
    if (
        not isinstance(data, Mapping)
        or not isinstance(data.get("kind"), str)
        or (data["kind"] not in ADAPTER_KINDS)
    ):
        kind = data.get("kind") if isinstance(data, Mapping) else data
        raise ConfigError(
            f"unknown adapter {kind!r}", hint=f"use one of {', '.join(sorted(ADAPTER_KINDS))}"
        )
    fields = {k: v for k, v in data.items() if k != "kind"}
    if data["kind"] in ("category mapping", "derived"):
        for key in ("known", "inputs"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(fields[key])
    try:
        return ADAPTER_KINDS[data["kind"]](**fields)
    except TypeError as exc:
        raise ConfigError(
            f"adapter {dict(data)!r}: {exc}",
            hint=f"the fields of a {data['kind']} adapter are "
            f"{[f.name for f in fields_of(ADAPTER_KINDS[data['kind']])]}",
        ) from exc


class Adapters(Sequence[Adapter]):
    """The ordered adapters at a system's input boundary.

    >>> adapters = Adapters([Rename("plan", source="tier")])
    >>> adapters.sources(["plan", "age"])
    ['age', 'tier']
    >>> Adapters.from_list(adapters.to_list()) == adapters
    True
    """

    def __init__(self, adapters: Iterable[Adapter | Mapping[str, Any]] = ()) -> None:
        items = [a if isinstance(a, Adapter) else adapter_from_dict(a) for a in adapters]
        for item in items:
            if not isinstance(item, Adapter):
                raise ConfigError(
                    f"not an adapter: {item!r}",
                    hint="use Rename, Cast, Default, MapCategories or Derived",
                )
        seen: set[str] = set()
        for item in items:
            if item.column in seen and isinstance(item, Rename | Derived | Default):
                raise ConfigError(
                    f"column {item.column!r} has two adapters that produce it",
                    hint="keep one",
                )
            if isinstance(item, Rename | Derived | Default):
                seen.add(item.column)
        self._items = tuple(items)

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, Any]] | None) -> Adapters:
        """Adapters from their stored JSON (``None``: none)."""
        return cls(data or ())

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Adapter]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Adapters) and hash_json(self.to_list()) == hash_json(
            other.to_list()
        )

    def __hash__(self) -> int:
        return hash(self.digest())

    def __repr__(self) -> str:
        return f"Adapters({list(self._items)!r})"

    def to_list(self) -> list[dict[str, Any]]:
        """Every adapter as JSON, in order."""
        return [a.to_dict() for a in self._items]

    def digest(self) -> str:
        """A short hash of the adapters: their version, recorded with a system version."""
        return adapters_digest(self.to_list())

    def describe(self) -> list[str]:
        """One line per adapter."""
        return [a.describe() for a in self._items]

    def apply(self, frame: pd.DataFrame, *, problems: list[str] | None = None) -> pd.DataFrame:
        """``frame`` as the system reads it: every adapter, in order (``frame`` itself when
        none applies).

        With ``problems`` (a list), an adapter the rows defeat (a missing source, a value a
        cast refuses) is skipped and its error appended instead of raised: monitoring reports
        dirty windows rather than refusing them.
        """
        for adapter in self._items:
            try:
                frame = adapter.apply(frame)
            except DataError as exc:
                if problems is None:
                    raise
                problems.append(f"{adapter.describe().split()[0]} adapter skipped: {exc.message}")
        return frame

    def changed(self, before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
        """What :meth:`apply` changed from ``before`` to ``after``, one line per adapted
        column (``'plan': 60 of 2,954 values changed (2.0%)``); renamed columns are named.

        >>> adapters = Adapters([MapCategories("plan", known=("a", "b"), unseen="b")])
        >>> rows = pd.DataFrame({"plan": ["a", "c", "b", None]})
        >>> adapters.changed(rows, adapters.apply(rows))
        ["'plan': 1 of 4 values changed (25.0%)"]
        """
        lines = []
        for adapter in self._items:
            if not isinstance(adapter, Rename) or adapter.column in before:
                continue
            if adapter.source in before and adapter.column in after:
                lines.append(f"{adapter.source!r} read as {adapter.column!r}")
        rows = len(before)
        for column in dict.fromkeys(a.column for a in self._items):
            if column not in after or column not in before or after[column] is before[column]:
                continue
            old, new = before[column].astype(object), after[column].astype(object)
            same = (old == new) | (old.isna() & new.isna())
            n = int((~same).sum())
            if n:
                lines.append(f"{column!r}: {n:,} of {rows:,} values changed ({n / rows:.1%})")
        return lines

    def sources(self, columns: Iterable[str]) -> list[str]:
        """The incoming columns needed to produce ``columns`` (the system's names), sorted.

        Walks the adapters backwards, so a column renamed and then cast needs its source.
        """
        needed = set(columns)
        for adapter in reversed(self._items):
            if adapter.column in needed and isinstance(adapter, Rename | Derived):
                needed.discard(adapter.column)
                needed.update(adapter.sources())
            elif adapter.column in needed and isinstance(adapter, Default):
                needed.discard(adapter.column)  # read when present, filled when not
        return sorted(needed)

    def touching(self, columns: Iterable[str]) -> Adapters:
        """The adapters that produce or change any of ``columns`` (the system's names)."""
        wanted = set(columns)
        return Adapters(a for a in self._items if a.column in wanted)
