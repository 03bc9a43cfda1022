"""Boundary adapters as people read them, from their stored JSON alone.

Kept apart from :mod:`regrow.data.adapters` (which needs pandas) so that commands that only
show a version, such as ``regrow lineage``, describe its adapters without loading pandas.

>>> describe_adapter({"kind": "rename", "column": "plan", "source": "tier"})
"rename   'tier' → 'plan'"
>>> len(adapters_digest([{"kind": "rename", "column": "plan", "source": "tier"}]))
12
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from regrow._hashing import hash_json

__all__ = ["adapters_digest", "describe_adapter"]


def adapters_digest(adapters: Sequence[Mapping[str, Any]]) -> str:
    """A short hash of stored adapters: their version, recorded with a system version."""
    return hash_json([dict(a) for a in adapters])[:12]


def describe_adapter(adapter: Mapping[str, Any]) -> str:
    """One line for people from an adapter's JSON (``Adapter.to_dict()``)."""
    kind, column = adapter.get("kind"), adapter.get("column")
    if kind == "rename":
        return f"rename   {adapter.get('source')!r} → {column!r}"
    if kind == "cast":
        bounds = ", ".join(
            f"{k}={adapter[k]:g}" for k in ("min", "max") if adapter.get(k) is not None
        )
        return f"cast     {column!r} to {adapter.get('dtype')}" + (f" ({bounds})" if bounds else "")
    if kind == "default":
        return f"default  {column!r} = {adapter.get('value')!r} where missing or null"
    if kind == "category mapping":
        parts = [f"{k!r} → {v!r}" for k, v in (adapter.get("mapping") or {}).items()]
        if adapter.get("known") is not None:
            parts.append(f"unseen → {adapter.get('unseen')!r}")
        return f"map      {column!r}: " + ", ".join(parts)
    if kind == "derived":
        inputs = ", ".join(adapter.get("inputs") or ())
        return (
            f"derived  {column!r} = {adapter.get('function')}({inputs}) v{adapter.get('version')}"
        )
    return f"{kind} {column!r}"
