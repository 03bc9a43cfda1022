"""What changed between two schemas, and whether data of the new one still fits the old.

>>> from regrow.data import ColumnSchema, Schema
>>> old = Schema((ColumnSchema("plan", "category", categories=("free", "pro")),))
>>> new = Schema((ColumnSchema("plan", "category", categories=("free", "pro", "team")),))
>>> diff = old.compare(new)
>>> diff.compatible
True
>>> diff.changes
("~ 'plan': categories added 'team'",)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from regrow.data._schema_checks import ACCEPTS

if TYPE_CHECKING:
    from regrow.data.schema import ColumnSchema

__all__ = ["SchemaDiff", "describe_change", "dtype_accepts"]

_RANGED = ("datetime", "float", "int")


def dtype_accepts(old: str, new: str) -> bool:
    """Whether a column declared ``old`` accepts data of dtype ``new``, as
    :meth:`Schema.validate` does: ``float`` takes ``int``, ``category`` and ``string`` take
    each other.

    >>> dtype_accepts("float", "int"), dtype_accepts("int", "float")
    (True, False)
    """
    return old == new or new in ACCEPTS.get(old, ())


@dataclass(frozen=True)
class SchemaDiff:
    """The difference from an old schema to a new one (see :meth:`Schema.compare`).

    ``added`` and ``removed`` hold whole columns; ``changed`` maps a column name to its
    ``(old, new)`` :class:`ColumnSchema`. The diff is ``compatible`` when no column was removed
    and every dtype change is one the old dtype accepts (see :func:`dtype_accepts`): code
    written for the old schema can read data of the new one.
    """

    added: tuple[ColumnSchema, ...] = ()
    removed: tuple[ColumnSchema, ...] = ()
    changed: Mapping[str, tuple[ColumnSchema, ColumnSchema]] = field(default_factory=dict)

    @property
    def compatible(self) -> bool:
        """No removed columns, and no dtype change the old dtype does not accept."""
        return not self.removed and all(
            dtype_accepts(old.dtype, new.dtype) for old, new in self.changed.values()
        )

    @property
    def unchanged(self) -> bool:
        """The two schemas are equal."""
        return not (self.added or self.removed or self.changed)

    @property
    def changes(self) -> tuple[str, ...]:
        """One human-readable line per added (+), removed (-) and changed (~) column."""
        lines = [f"+ {c.name!r} ({c.dtype})" for c in self.added]
        lines += [f"- {c.name!r} ({c.dtype})" for c in self.removed]
        lines += [
            f"~ {name!r}: {describe_change(old, new)}" for name, (old, new) in self.changed.items()
        ]
        return tuple(lines)

    def __str__(self) -> str:
        if self.unchanged:
            return "no schema change"
        kind = "compatible" if self.compatible else "incompatible"
        return f"{kind} schema change:" + "".join(f"\n  {line}" for line in self.changes)


def describe_change(old: ColumnSchema, new: ColumnSchema) -> str:
    """Describe how one column changed, e.g. ``dtype int → float; now nullable``."""
    parts = []
    if old.dtype != new.dtype:
        parts.append(f"dtype {old.dtype} → {new.dtype}")
    if old.nullable != new.nullable:
        parts.append("now nullable" if new.nullable else "no longer nullable")
    if (old.min, old.max) != (new.min, new.max) and new.dtype in _RANGED:
        parts.append(f"range {_range(old)} → {_range(new)}")
    if old.categories != new.categories:
        parts.append(_categories(old.categories, new.categories))
    return "; ".join(parts) or "unchanged"


def _range(column: ColumnSchema) -> str:
    return f"[{_bound(column.min, '-inf')}, {_bound(column.max, 'inf')}]"


def _bound(value: Any, unbounded: str) -> str:
    if value is None:
        return unbounded
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def _categories(old: tuple[str, ...] | None, new: tuple[str, ...] | None) -> str:
    if new is None:
        return "categories no longer restricted"
    if old is None:
        return f"categories now restricted to {', '.join(map(repr, new))}"
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    parts = []
    if added:
        parts.append(f"categories added {', '.join(map(repr, added))}")
    if removed:
        parts.append(f"categories removed {', '.join(map(repr, removed))}")
    return "; ".join(parts) or "categories reordered"
