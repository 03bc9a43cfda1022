"""Schema compatibility modes: can a model trained on one schema's data read another's?

The Confluent Schema Registry's modes, applied to a table that feeds a trained model. A *reader*
is a model; it was trained on data of one schema and scores rows of another:

- ``backward``: the model trained on ``old`` data can score rows of ``new``. Added columns are
  safe (the model ignores them); a dropped column it reads is breaking (the fix: a ``default``
  adapter); a widened type (``int`` → ``float``) is adaptable by a ``cast`` with a range check;
  a narrowed one is safe; a new category is adaptable by a ``category mapping``
  ("unseen → other"); a column that became nullable is adaptable by a ``default`` for the nulls;
  a rename is adaptable by a ``rename``; a reorder is safe (columns are read by name).
- ``forward``: a model trained on ``new`` data can score rows of ``old`` (backward with the two
  schemas swapped: an added column is now the breaking one, a narrowed type needs a cast).
- ``full``: both; each change takes the worse of its two classes.
- ``none``: no check; every change is listed as ``safe``.

Each change is ``safe``, ``adaptable`` (and names the adapter that would bridge it; adapters
themselves are later work) or ``breaking``. With ``target`` (the columns the model reads), a
change to a column no model reads is safe. A rename is recognised when exactly one dropped and
one added column share a dtype and nullability; anything else is a drop and an add.

>>> from regrow.data import ColumnSchema, Schema
>>> old = Schema((ColumnSchema("age", "int"), ColumnSchema("plan", "string")))
>>> new = Schema((ColumnSchema("age", "float"), ColumnSchema("tier", "string")))
>>> print(classify(old, new, "backward"))
backward: compatible (2 adaptable)
  adaptable  'plan' renamed to 'tier' (rename)
  adaptable  'age' widened int → float (cast)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from regrow.data.schema import ColumnSchema, Schema
from regrow.errors import SchemaError

__all__ = [
    "CLASSES",
    "MODES",
    "Change",
    "Compatibility",
    "bridge",
    "classify",
    "classify_history",
]

Mode = Literal["backward", "forward", "full", "none"]
MODES: tuple[str, ...] = ("backward", "forward", "full", "none")
"""The compatibility modes, as a policy's ``contracts.compatibility`` names them."""
CLASSES: tuple[str, ...] = ("safe", "adaptable", "breaking")
"""Change classes, from harmless to refused."""

# dtype pairs (old, new) where ``new`` holds every value of ``old``, with the adapter a reader
# of ``old`` needs to read ``new``.
_WIDER: dict[tuple[str, str], str] = {
    ("int", "float"): "cast",
    ("bool", "int"): "cast",
    ("bool", "float"): "cast",
    ("category", "string"): "category mapping",
}
# change kind -> (class, adapter) for a reader of the old schema (backward).
_BACKWARD: dict[str, tuple[str, str | None]] = {
    "added": ("safe", None),
    "dropped": ("breaking", "default"),
    "renamed": ("adaptable", "rename"),
    "widened": ("adaptable", "cast"),
    "narrowed": ("safe", None),
    "retyped": ("breaking", None),
    "categories grown": ("adaptable", "category mapping"),
    "categories shrunk": ("safe", None),
    "became nullable": ("adaptable", "default"),
    "became required": ("safe", None),
    "reordered": ("safe", None),
}
_INVERSE = {
    "added": "dropped",
    "dropped": "added",
    "widened": "narrowed",
    "narrowed": "widened",
    "categories grown": "categories shrunk",
    "categories shrunk": "categories grown",
    "became nullable": "became required",
    "became required": "became nullable",
}
_FIX = {
    "dropped": "declare a default adapter for it, or bring the column back",
    "added": "declare a default adapter for it, or retrain on data without it",
    "retyped": "convert the column back to its old type, or retrain on the new data",
}


@dataclass(frozen=True)
class Change:
    """One column change from the old schema to the new, with its class under a mode.

    ``adapter`` names what would bridge it (for a breaking change, the adapter that would make
    it adaptable once declared, if any).
    """

    kind: str
    column: str
    detail: str
    cls: str
    adapter: str | None = None
    bridged: str | None = None
    """The adapter of the reader's own that bridges the change (it is then ``safe``)."""

    def hint(self, mode: str) -> str:
        """What to do about this change, naming the column, the mode and the fix."""
        fix = _FIX.get(self.kind) or (
            f"declare a {self.adapter} adapter" if self.adapter else "retrain on the new data"
        )
        return (
            f"column {self.column!r} {self.kind} breaks {mode} compatibility: {fix}; "
            "or accept the change with --mode none"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "column": self.column,
            "detail": self.detail,
            "class": self.cls,
            "adapter": self.adapter,
            "bridged": self.bridged,
        }

    def __str__(self) -> str:
        if self.bridged:
            return f"{self.cls:<10} {self.detail} (bridged by its {self.bridged} adapter)"
        via = f" ({self.adapter})" if self.adapter and self.cls == "adaptable" else ""
        return f"{self.cls:<10} {self.detail}{via}"


@dataclass(frozen=True)
class Compatibility:
    """Every change from ``old`` to ``new`` under ``mode``, and the verdict."""

    mode: str
    changes: tuple[Change, ...]

    @property
    def compatible(self) -> bool:
        """No breaking change."""
        return not self.breaking

    @property
    def breaking(self) -> tuple[Change, ...]:
        """The breaking changes."""
        return tuple(c for c in self.changes if c.cls == "breaking")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "mode": self.mode,
            "compatible": self.compatible,
            "changes": [c.to_dict() for c in self.changes],
        }

    def __str__(self) -> str:
        counts = [
            f"{n} {cls}"
            for cls in ("breaking", "adaptable")
            if (n := sum(c.cls == cls for c in self.changes))
        ]
        verdict = "compatible" if self.compatible else "incompatible"
        head = f"{self.mode}: {verdict}" + (f" ({', '.join(counts)})" if counts else "")
        if not self.changes:
            head += " (no change)"
        return head + "".join(f"\n  {c}" for c in self.changes)


def classify(
    old: Schema, new: Schema, mode: str, *, target: Iterable[str] | None = None
) -> Compatibility:
    """Every change from ``old`` to ``new`` with its class under ``mode`` (see the module).

    ``target``: the columns the reader reads (default: all); changes to other columns are safe.

    >>> from regrow.data import ColumnSchema, Schema
    >>> old = Schema((ColumnSchema("x", "float"),))
    >>> classify(old, Schema(()), "backward").breaking[0].hint("backward")
    "column 'x' dropped breaks backward compatibility: declare a default adapter for it, or \
bring the column back; or accept the change with --mode none"
    """
    if mode not in MODES:
        raise SchemaError(
            f"unknown compatibility mode {mode!r}", hint=f"use one of {', '.join(MODES)}"
        )
    read = None if target is None else set(target)
    changes = []
    for kind, column, detail, names, bridge in _changes(old, new):
        cls, adapter = _class(kind, mode)
        if adapter == "cast":
            adapter = bridge or adapter
        if read is not None and not read.intersection(names):
            cls, adapter = "safe", None  # no reader reads the column
        changes.append(Change(kind, column, detail, cls, adapter))
    return Compatibility(mode, tuple(changes))


# change kind -> the adapter kind that bridges it for a reader of the old schema.
_BRIDGES = {
    "renamed": "rename",
    "dropped": "default",
    "became nullable": "default",
    "categories grown": "category mapping",
}


def bridge(result: Compatibility, adapters: Iterable[Mapping[str, Any]]) -> Compatibility:
    """``result`` with each change that one of the reader's ``adapters`` (their stored JSON,
    :meth:`regrow.data.adapters.Adapter.to_dict`) bridges marked ``safe``, naming the adapter.

    A rename needs a ``rename`` of the column, a widened or narrowed type a ``cast`` (or a
    ``category mapping`` between category and string), a dropped or newly nullable column a
    ``default``, new categories a ``category mapping`` with ``unseen``.

    >>> from regrow.data import ColumnSchema, Schema
    >>> old = Schema((ColumnSchema("x", "float"),))
    >>> result = classify(old, Schema(()), "backward")
    >>> print(bridge(result, [{"kind": "default", "column": "x", "value": 0.0}]))
    backward: compatible
      safe       'x' dropped (float) (bridged by its default adapter)
    """
    have: set[tuple[str, str]] = set()
    for adapter in adapters:
        kind, column = str(adapter.get("kind")), str(adapter.get("column"))
        if kind == "category mapping" and adapter.get("unseen") is None:
            continue  # a mapping without "unseen" leaves new categories as they are
        have.add((kind, column))
    changes = []
    for change in result.changes:
        needs = change.adapter if change.kind in ("widened", "narrowed") else None
        needs = needs or _BRIDGES.get(change.kind)
        if change.cls != "safe" and needs and (needs, change.column) in have:
            change = replace(change, cls="safe", bridged=needs)
        changes.append(change)
    return Compatibility(result.mode, tuple(changes))


def classify_history(
    history: Sequence[Schema],
    new: Schema,
    mode: str,
    *,
    transitive: bool = False,
    target: Iterable[str] | None = None,
) -> tuple[Compatibility, ...]:
    """``new`` against the newest schema of ``history`` (oldest first), or against every one
    of them when ``transitive``; one :class:`Compatibility` per schema checked.

    >>> from regrow.data import ColumnSchema, Schema
    >>> v1 = Schema((ColumnSchema("a", "int"), ColumnSchema("b", "int")))
    >>> v2 = Schema((ColumnSchema("a", "int"),))
    >>> [c.compatible for c in classify_history([v1, v2], v2, "backward", transitive=True)]
    [False, True]
    """
    if not history:
        raise SchemaError(
            "no schema to check against", hint="register a schema (a first snapshot) first"
        )
    read = None if target is None else list(target)
    chosen = list(history) if transitive else [history[-1]]
    return tuple(classify(old, new, mode, target=read) for old in chosen)


def _class(kind: str, mode: str) -> tuple[str, str | None]:
    if mode == "none":
        return "safe", _BACKWARD[kind][1]
    backward = _BACKWARD[kind]
    forward = _BACKWARD[_INVERSE.get(kind, kind)]
    if mode == "backward":
        return backward
    if mode == "forward":
        return forward
    return max(backward, forward, key=lambda c: CLASSES.index(c[0]))


_Found = tuple[str, str, str, set[str], str | None]


def _changes(old: Schema, new: Schema) -> list[_Found]:
    """(kind, column, detail, names involved, the adapter a cast needs) for each change."""
    added = [c for c in new.columns if c.name not in old]
    dropped = [c for c in old.columns if c.name not in new]
    out: list[_Found] = []
    for before, after in _renames(dropped, added):
        dropped.remove(before)
        added.remove(after)
        detail = f"{before.name!r} renamed to {after.name!r}"
        both = {before.name, after.name}
        out.append(("renamed", before.name, detail, both, None))
        out += [(k, before.name, d, both, a) for k, d, a in _alter(before, after)]
    out += [("added", c.name, f"{c.name!r} added ({c.dtype})", {c.name}, None) for c in added]
    out += [("dropped", c.name, f"{c.name!r} dropped ({c.dtype})", {c.name}, None) for c in dropped]
    for column in old.columns:
        if column.name in new:
            changed = _alter(column, new[column.name])
            out += [(k, column.name, d, {column.name}, a) for k, d, a in changed]
    kept = [n for n in old.names if n in new]
    if kept != [n for n in new.names if n in old]:
        out.append(("reordered", "*", "columns reordered", set(kept), None))
    return out


def _renames(
    dropped: list[ColumnSchema], added: list[ColumnSchema]
) -> list[tuple[ColumnSchema, ColumnSchema]]:
    def key(c: ColumnSchema) -> tuple[str, bool]:
        return (c.dtype, c.nullable)

    pairs = []
    for before in dropped:
        same_old = [c for c in dropped if key(c) == key(before)]
        same_new = [c for c in added if key(c) == key(before)]
        if len(same_old) == 1 and len(same_new) == 1:
            pairs.append((before, same_new[0]))
    return pairs


def _alter(old: ColumnSchema, new: ColumnSchema) -> list[tuple[str, str, str | None]]:
    """(kind, detail, the adapter a cast between the two dtypes needs) per change."""
    name = repr(old.name)
    out: list[tuple[str, str, str | None]] = []
    if old.dtype != new.dtype:
        pair = (old.dtype, new.dtype)
        bridge = _WIDER.get(pair) or _WIDER.get(pair[::-1])
        if pair in _WIDER:
            kind = "widened"
        elif pair[::-1] in _WIDER:
            kind = "narrowed"
        else:
            kind = "retyped"
        out.append((kind, f"{name} {kind} {old.dtype} → {new.dtype}", bridge))
    if old.nullable != new.nullable:
        kind = "became nullable" if new.nullable else "became required"
        out.append((kind, f"{name} {kind}", None))
    if old.dtype == new.dtype == "category" and old.categories != new.categories:
        if new.categories is None:
            out.append(("categories grown", f"{name} categories no longer restricted", None))
        elif old.categories is None:
            out.append(("categories shrunk", f"{name} categories now restricted", None))
        else:
            grown = [c for c in new.categories if c not in old.categories]
            gone = [c for c in old.categories if c not in new.categories]
            if grown:
                out.append(("categories grown", f"{name} categories added {_quoted(grown)}", None))
            if gone:
                out.append(
                    ("categories shrunk", f"{name} categories removed {_quoted(gone)}", None)
                )
    return out


def _quoted(values: list[str]) -> str:
    return ", ".join(map(repr, values))
