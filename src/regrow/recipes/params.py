"""A recipe's parameter: a type, a default, bounds, accepted values, and what it does.

Validated declaratively, so every bad value gets a message of the same shape: what a valid
value is (``an int >= 1``, ``'auto' or a non-empty list of strings``, ``a number > 0 or
null``).

>>> Param("extra", "int", 100, ge=1).problem(0)
'an int >= 1'
>>> Param("blocks", "list[str]", "auto", choices=("auto",)).problem(["head"]) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from regrow.recipes.errors import RecipeError

__all__ = ["Param", "ParamType"]

ParamType = Literal["int", "float", "bool", "str", "list[str]"]


def _what(p: Param) -> str:
    """What a valid value of ``p`` is, in words."""
    base = {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string",
            "list[str]": "a non-empty list of strings"}[p.type]  # fmt: skip
    bounds = [
        f"{op} {v:g}"
        for op, v in ((">=", p.ge), (">", p.gt), ("<=", p.le), ("<", p.lt))
        if v is not None
    ]
    if bounds:
        base += " " + " and ".join(bounds)
    if p.choices:
        base = " or ".join([*(repr(c) for c in p.choices), base])
    if p.optional:
        base += " or null"
    return base


@dataclass(frozen=True)
class Param:
    """One parameter of a recipe: its type, default, bounds and what it does.

    ``choices`` are values accepted besides the type (``blocks: "auto"`` or a list of block
    names); for a ``str`` parameter they are the only values. ``optional`` admits ``None``
    (the planner then decides, within the policy's budgets; the doc says how).
    """

    name: str
    type: ParamType
    default: Any
    doc: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] = ()
    optional: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise RecipeError(f"a parameter's name must be an identifier (got {self.name!r})")
        if self.type not in ("int", "float", "bool", "str", "list[str]"):
            raise RecipeError(
                f"parameter {self.name!r}: unknown type {self.type!r}",
                hint="use one of int, float, bool, str, list[str]",
            )
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.problem(self.default) is not None:
            raise RecipeError(
                f"parameter {self.name!r}: its default {self.default!r} is not valid: it must "
                f"be {_what(self)}"
            )

    def problem(self, value: Any) -> str | None:
        """None when ``value`` is valid; else what a valid value is."""
        if value is None:
            return None if self.optional else _what(self)
        if self.choices and value in self.choices and not isinstance(value, bool | list):
            return None
        if self.type == "str":
            ok = isinstance(value, str) and not self.choices
        elif self.type == "bool":
            ok = isinstance(value, bool)
        elif self.type == "list[str]":
            ok = (isinstance(value, list | tuple) and len(value) > 0
                  and all(isinstance(v, str) for v in value))  # fmt: skip
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if self.type == "int":
                ok = ok and isinstance(value, int)
            if ok:
                ok = not (
                    (self.ge is not None and value < self.ge)
                    or (self.gt is not None and value <= self.gt)
                    or (self.le is not None and value > self.le)
                    or (self.lt is not None and value >= self.lt)
                )
        return None if ok else _what(self)

    def to_dict(self) -> dict[str, Any]:
        """The parameter as JSON."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default,
                               "constraint": _what(self), "doc": self.doc}  # fmt: skip
        return out
