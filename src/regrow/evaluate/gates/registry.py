"""The gates an evaluation can run, by name.

Built-in gates are registered when :mod:`regrow.evaluate.gates` is imported; a project adds
its own with :func:`register` (a class with a ``name``, constructed from the thresholds the
policy gives it, and a ``check`` method: :class:`~regrow.evaluate.gates.base.Gate`).
:func:`build` turns a policy's ``gates.checks`` section into gate objects, and an unknown
name is refused with the closest known one.

>>> import regrow.evaluate.gates
>>> get_gate("slice_regresion")
Traceback (most recent call last):
...
regrow.errors.ConfigError: unknown gate 'slice_regresion'; did you mean 'slice_regression'? ...
>>> [g.name for g in build({"size": {"max_bytes": 1000}})]
['size']
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from regrow.errors import ConfigError
from regrow.evaluate.gates.base import Gate

__all__ = ["build", "gate_names", "get_gate", "invalid", "register", "validate_checks"]

GateFactory = Callable[..., Gate]
F = TypeVar("F", bound=GateFactory)

_GATES: dict[str, GateFactory] = {}


def register(factory: F, *, name: str | None = None, replace: bool = False) -> F:
    """Register a gate class (or factory) under its ``name``; usable as a decorator.

    Registering a second gate under a taken name is refused unless ``replace``.
    """
    key = name or str(getattr(factory, "name", "") or "")
    if not key.isidentifier():
        raise ConfigError(
            f"a gate needs a name that is an identifier (got {key!r})",
            hint="give the class a `name` class attribute, e.g. name = 'my_gate'",
        )
    if key in _GATES and _GATES[key] is not factory and not replace:
        raise ConfigError(
            f"a gate named {key!r} is already registered ({_GATES[key]!r})",
            hint="choose another name, or pass replace=True",
        )
    _GATES[key] = factory
    return factory


def gate_names() -> list[str]:
    """The registered gates' names, sorted."""
    return sorted(_GATES)


def get_gate(name: str) -> GateFactory:
    """The gate registered as ``name``; an unknown name names the closest known one."""
    try:
        return _GATES[name]
    except KeyError:
        raise ConfigError(f"unknown gate {name!r}", hint=_known(name)) from None


def build(checks: Mapping[str, Mapping[str, Any]]) -> list[Gate]:
    """Gate objects for a policy's ``checks`` (gate name -> thresholds), in order."""
    return [get_gate(name)(**dict(params or {})) for name, params in checks.items()]


def validate_checks(checks: Any) -> dict[str, dict[str, Any]]:
    """``checks`` with every gate's thresholds validated and completed with its defaults.

    Raises a pydantic ``ValidationError`` whose locations are ``(gate, key)``, so that a policy
    error reads ``gates.checks.fairness.max_difference: ... (got 1.5)``.
    """
    if not isinstance(checks, Mapping):
        raise ValueError(
            f"checks must map gate names to their thresholds (got a {type(checks).__name__})"
        )
    out: dict[str, dict[str, Any]] = {}
    errors: list[InitErrorDetails] = []
    for name, params in checks.items():
        if str(name) not in _GATES:
            errors.append(_error((str(name),), f"unknown gate; {_known(str(name))}", name))
            continue
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            errors.append(_error((name,), "thresholds must be a mapping of keys", params))
            continue
        try:
            gate = _GATES[name](**params)
        except ValidationError as exc:
            fields = list(getattr(_GATES[name], "model_fields", {}))
            errors.extend(
                _error((name, *e["loc"]), _message(e, fields), e.get("input")) for e in exc.errors()
            )
            continue
        except (TypeError, ValueError) as exc:
            errors.append(_error((name,), str(exc), params))
            continue
        settings = getattr(gate, "settings", None)
        out[name] = dict(settings()) if callable(settings) else dict(params)
    if errors:
        raise ValidationError.from_exception_data("checks", errors)
    return out


def invalid(loc: tuple[Any, ...], message: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` (inside a model's validator, pydantic prefixes the
    model's own location, so a policy error names the whole key path)."""
    return ValidationError.from_exception_data("gates", [_error(loc, message, value)])


def _message(error: Any, fields: list[str]) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), fields, n=1)
        return (
            f"unknown key (did you mean {close[0]!r}?)"
            if close
            else (f"unknown key (known: {', '.join(fields)})")
        )
    return msg


def _error(loc: tuple[Any, ...], message: str, value: Any) -> InitErrorDetails:
    return {
        "type": PydanticCustomError("gate_error", message.replace("{", "{{").replace("}", "}}")),
        "loc": tuple(str(p) if not isinstance(p, int) else p for p in loc),
        "input": value,
    }


def _known(name: str) -> str:
    close = difflib.get_close_matches(name, list(_GATES), n=1)
    known = ", ".join(gate_names())
    return f"did you mean {close[0]!r}? known gates: {known}" if close else f"known gates: {known}"
