"""Argument checks shared by the catalog's methods, and the default actor.

Every check raises :class:`~regrow.errors.ConfigError` naming the parameter and the value,
before any transaction starts, so bad input never reaches the database.

>>> text("metric", "auc")
'auc'
>>> choice("verdict", "approved", ("blessed", "rejected", "none"))
Traceback (most recent call last):
...
regrow.errors.ConfigError: 'verdict' must be one of 'blessed', 'rejected', 'none' (got 'approved')
"""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from regrow.errors import ConfigError

__all__ = ["actor", "choice", "identifier", "integer", "mapping", "number", "text", "texts"]


def actor(value: str | None) -> str:
    """``value``, else ``$REGROW_ACTOR``, else the login name (``"unknown"`` if there is none)."""
    if value is None:
        value = os.environ.get("REGROW_ACTOR") or None
    if value is None:
        try:
            value = getpass.getuser()
        except (OSError, KeyError):  # no login name (some containers)
            value = "unknown"
    return text("actor", value)


def text(name: str, value: object, *, max_length: int = 255, empty: bool = False) -> str:
    """``value`` if it is a string of at most ``max_length`` characters (and not empty,
    unless ``empty``)."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{name!r} must be a string (got {value!r} that is a {type(value).__name__})"
        )
    if (not value and not empty) or len(value) > max_length:
        raise ConfigError(
            f"{name!r} must be a {'' if empty else 'non-empty '}string of at most {max_length} "
            f"characters (got {value!r})"
        )
    return value


def identifier(name: str, value: object) -> str:
    """``value`` if it is a non-empty string id of at most 64 characters."""
    return text(name, value, max_length=64)


def choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{name!r} must be one of {listed} (got {value!r})")
    return str(value)


def integer(name: str, value: object) -> int:
    """``value`` if it is an int (not a bool) that fits a signed 64-bit column."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ConfigError(
            f"{name!r} must be a 64-bit integer (got {value!r})",
            hint=f"use a whole number from {-(2**63):,} to {2**63 - 1:,}",
        )
    return value


def number(name: str, value: object) -> float:
    """``value`` as a float if it is a finite, non-negative real number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name!r} must be a finite number (got {value!r})")
    if value < 0:
        raise ConfigError(f"{name!r} must be >= 0 (got {value!r})")
    return float(value)


def mapping(name: str, value: object) -> dict[str, Any]:
    """``value`` as a dict if it is a mapping with string keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(
            f"{name!r} must be a mapping with string keys (got a {type(value).__name__}: "
            f"{_short(value)})"
        )
    return dict(value)


def texts(name: str, value: object) -> tuple[str, ...]:
    """``value`` as a tuple if it is a sequence (not a string) of strings."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(f"{name!r} must be a sequence of strings (got {_short(value)})")
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise ConfigError(f"{name!r} must hold only strings (got {_short(bad[0])})")
    return items


def _short(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
