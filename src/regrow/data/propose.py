"""Propose the boundary adapters that let a trained system read data of a changed schema.

:func:`propose` classifies every change from the schema a system trained on (``old``) to a new
one (:mod:`regrow.data.compat`) and, for each change that matters (``adaptable`` or
``breaking`` under the mode, to a column the system reads), either proposes the adapter
(:mod:`regrow.data.adapters`) that bridges it, when the schemas alone decide its parameters,
or leaves it *undecided* with the reason and what to write:

=========================== ========================================================================
change                      proposal
=========================== ========================================================================
renamed                     ``Rename(old_name, source=new_name)``
widened int/bool → float,   ``Cast(column, old_dtype)``, without a range: the old column's
bool → int                  ``min``/``max`` are what training saw, not limits
categories grown,           ``MapCategories(column, known=old categories, unseen="other")`` when
category → string           ``"other"`` is an old category; undecided otherwise (which known
                            category should unseen values become?)
dropped, became nullable    undecided: a ``Default`` needs the value, which only people know
anything else               undecided: no adapter on this system bridges it
=========================== ========================================================================

>>> from regrow.data import ColumnSchema, Schema
>>> old = Schema((ColumnSchema("age", "int", min=0, max=130), ColumnSchema("plan", "string"),
...               ColumnSchema("seats", "int")))
>>> new = Schema((ColumnSchema("age", "float"), ColumnSchema("tier", "string")))
>>> proposal = propose(old, new)
>>> print(proposal.python())
from regrow.data.adapters import Cast, Rename
<BLANKLINE>
adapters = [
    Rename("plan", source="tier"),
    Cast("age", dtype="int"),
]
>>> change, what = proposal.undecided[0]
>>> print(what)
'seats' dropped (int): a Default needs the value rows without it should read, which regrow
cannot choose; write Default("seats", ...) with an int (the old schema records nothing more
about it)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from regrow.data.adapters import Adapter, Adapters, Cast, MapCategories, Rename
from regrow.data.compat import Change, bridge, classify
from regrow.data.schema import ColumnSchema, Schema
from regrow.errors import SchemaError

__all__ = ["UNSEEN", "Proposal", "propose"]

UNSEEN = "other"
"""The category unseen values become in a proposed mapping (it must be a known category)."""

_CASTABLE = ("int", "bool")  # old dtypes a Cast turns a widened column back into


@dataclass(frozen=True)
class Proposal:
    """The adapters regrow proposes, and the changes it leaves to people.

    ``undecided`` holds each change that needs an adapter whose parameters regrow cannot
    choose, with the reason and what to write.
    """

    adapters: Adapters
    undecided: tuple[tuple[Change, str], ...] = ()

    @property
    def bridged(self) -> bool:
        """Every change that matters is bridged by a proposed adapter."""
        return not self.undecided

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "adapters": self.adapters.to_list(),
            "undecided": [{**c.to_dict(), "reason": why} for c, why in self.undecided],
            "python": self.python(),
        }

    def python(self) -> str:
        """The proposed adapters as Python: an import line and ``adapters = [...]``, whose
        items go into ``adapters=[...]`` of the system file (empty when none).

        >>> print(Proposal(Adapters([Rename("plan", source="tier")])).python())
        from regrow.data.adapters import Rename
        <BLANKLINE>
        adapters = [
            Rename("plan", source="tier"),
        ]
        """
        if not self.adapters:
            return ""
        names = sorted({type(a).__name__ for a in self.adapters})
        lines = [f"from regrow.data.adapters import {', '.join(names)}", "", "adapters = ["]
        lines += [f"    {_source(a)}," for a in self.adapters]
        return "\n".join([*lines, "]"])


def propose(
    old: Schema,
    new: Schema,
    *,
    reads: Iterable[str] | None = None,
    mode: str = "backward",
    have: Iterable[Mapping[str, Any]] = (),
) -> Proposal:
    """The adapters that let a reader of ``old`` read ``new`` (see the module).

    ``reads``: the columns the reader reads (default: all); ``mode``: the compatibility mode
    whose ``adaptable`` and ``breaking`` changes need a proposal; ``have``: the adapters the
    reader has already (stored JSON): changes they bridge need nothing, and they come first
    in the proposal, which is then the whole list for ``adapters=[...]``.

    >>> from regrow.data import ColumnSchema, Schema
    >>> old = Schema((ColumnSchema("plan", "category", categories=("free", "other")),))
    >>> new = Schema((ColumnSchema("plan", "category", categories=("free", "other", "team")),))
    >>> propose(old, new).adapters.describe()
    ["map      'plan': unseen → 'other'"]
    >>> propose(old, new, reads=["age"]).adapters.describe()
    []
    """
    existing = Adapters(have)
    result = bridge(classify(old, new, mode, target=reads), existing.to_list())
    adapters: list[Adapter] = list(existing)
    undecided: list[tuple[Change, str]] = []
    for change in result.changes:
        if change.cls == "safe":
            continue
        proposed = _propose(change, old, new)
        if isinstance(proposed, Adapter):
            adapters.append(proposed)
        else:
            undecided.append((change, f"{change.detail}: {proposed}"))
    return Proposal(Adapters(adapters), tuple(undecided))


def _propose(change: Change, old: Schema, new: Schema) -> Adapter | str:
    """The adapter that bridges ``change``, or why there is none and what to write."""
    if change.kind == "renamed":
        return Rename(change.column, source=_renamed_to(change, old, new))
    if change.column not in old:
        return _no_adapter(change)
    before = old[change.column]
    if change.kind == "widened" and before.dtype in _CASTABLE:
        # No range: the old schema's min and max are what training saw, not limits, and a
        # range from them would refuse every new value beyond them (declare one by hand).
        return Cast(before.name, before.dtype)
    if change.kind == "categories grown" or (
        change.kind == "widened" and before.dtype == "category"
    ):
        return _map_unseen(before)
    if change.kind == "dropped":
        return _default(before, "rows without it")
    if change.kind == "became nullable":
        return _default(before, "its nulls") + " (declared before any Cast of it)"
    return _no_adapter(change)


def _renamed_to(change: Change, old: Schema, new: Schema) -> str:
    """The new name of a renamed column: the one added column its detail names."""
    for name in new.names:
        if name not in old and change.detail == f"{change.column!r} renamed to {name!r}":
            return name
    raise SchemaError(f"cannot find the new name of renamed column {change.column!r}")


def _map_unseen(before: ColumnSchema) -> Adapter | str:
    known = before.categories
    name = before.name
    if not known:
        return (
            f"the old schema does not restrict {name!r}'s categories, so regrow cannot tell "
            f"which values the system knows; write MapCategories({_literal(name)}, "
            "known=(...), unseen=...) with the categories it was trained on"
        )
    if UNSEEN in known:
        return MapCategories(name, known=known, unseen=UNSEEN)
    return (
        "which known category should unseen values become? "
        f"write MapCategories({_literal(name)}, known={_literal(known)}, unseen=...) "
        f"with one of {_few(known)}, or map each new value to a known one with mapping={{...}}"
    )


def _default(before: ColumnSchema, rows: str) -> str:
    return (
        f"a Default needs the value {rows} should read, which regrow cannot choose; "
        f"write Default({_literal(before.name)}, ...) with {_value_hint(before)}"
    )


def _no_adapter(change: Change) -> str:
    if change.kind == "retyped":
        return (
            "no adapter converts between these types for certain; a Cast to the old type "
            "bridges it only if every value converts: retrain on the new data, or declare "
            "the Cast and let it refuse what does not"
        )
    return (
        "no adapter on this system bridges it: it breaks only a model trained on the new data "
        "reading the old (the forward direction); retrain, or check with --mode backward"
    )


def _value_hint(column: ColumnSchema) -> str:
    article = "an" if column.dtype[0] in "aeiou" else "a"
    if column.categories:
        return f"one of its categories {_few(column.categories)}"
    if column.dtype == "bool":
        return "True or False"
    low, high = _number(column.min), _number(column.max)
    if low is not None and high is not None:
        return f"{article} {column.dtype} from {low:g} to {high:g} (the old schema's range)"
    if low is not None or high is not None:
        bound = f">= {low:g}" if low is not None else f"<= {high:g}"
        return f"{article} {column.dtype} {bound} (the old schema's bound)"
    return f"{article} {column.dtype} (the old schema records nothing more about it)"


def _number(value: Any) -> int | float | None:
    """A numeric bound as a Cast takes it (datetimes and bools are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _few(values: Iterable[str], limit: int = 6) -> str:
    shown = list(values)
    more = f", ... ({len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(map(repr, shown[:limit])) + more


def _source(adapter: Adapter) -> str:
    """The Python that builds ``adapter``: its class, its column, its fields by name."""
    data = adapter.to_dict()
    fields = [f"{k}={_literal(v)}" for k, v in data.items() if k not in ("kind", "column")]
    return f"{type(adapter).__name__}({', '.join([_literal(adapter.column), *fields])})"


def _literal(value: Any) -> str:
    """``value`` as Python source: strings double-quoted, lists as tuples."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        items = [_literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)
