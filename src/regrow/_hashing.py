"""Canonical JSON and sha256 helpers shared by every layer.

>>> canonical_json({"b": 1, "a": [1.5, None]})
'{"a":[1.5,null],"b":1}'
>>> sha256_hex(b"regrow")[:12]
'0fa08186f447'
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from datetime import date, datetime
from typing import Any

from regrow._modules import code_label

__all__ = ["canonical_json", "hash_json", "jsonable", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Turn ``value`` into plain JSON types, deterministically.

    numpy scalars and arrays become Python numbers and lists, sets become sorted lists,
    non-finite floats become strings, and unknown objects become ``"<module.Class>"`` plus
    their ``get_params()`` when they have one (scikit-learn style), else their attributes,
    else their ``repr`` without memory addresses: the result is the same in every process.

    >>> import functools, operator
    >>> jsonable(functools.partial(operator.add, 1))
    {'partial': '<_operator.add>', 'args': [1], 'keywords': {}}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, type):
        return f"<{code_label(value)}>"
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        return jsonable(value.tolist())
    cls = type(value)
    name = f"<{code_label(cls)}>"
    get_params = getattr(value, "get_params", None)
    if callable(get_params):
        try:
            return {"class": name, "params": jsonable(get_params(deep=False))}
        except TypeError:
            pass
    if isinstance(value, functools.partial):
        return {
            "partial": jsonable(value.func),
            "args": jsonable(value.args),
            "keywords": jsonable(value.keywords),
        }
    if callable(value) and hasattr(value, "__qualname__"):
        return f"<{code_label(value)}>"
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict) and _depth < 8:
        return {"class": name, "state": {str(k): jsonable(v, _depth + 1) for k, v in state.items()}}
    # A repr may carry a memory address, different in every process: never hash one.
    return {"class": name, "repr": _ADDRESS.sub("", repr(value))}


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal strings."""
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def hash_json(value: Any) -> str:
    """sha256 of :func:`canonical_json`."""
    return sha256_hex(canonical_json(value).encode())
