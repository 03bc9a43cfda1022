"""Member outputs keyed by what they depend on, so the same rows are never predicted twice.

A member's output on a row depends only on three things: the fitted member (its artifact and
the artifacts of the transforms it reads through), the classes its probabilities are laid
out in, and the values of the raw columns it reads on that row. :func:`output_key` names the
first two; :func:`row_keys` hashes the third, 128 bits per row (two 64-bit hashes of the row's
values and the columns' types); an :class:`OutputTable` holds outputs by row key. Rows met
again -- by the monitor and then the probes, by a plan and then the run of the plan, by a
candidate and then its baseline that shares the member -- are looked up, in whatever order
and subset they come, and only the others are predicted.

Outputs are kept as float32 (half the bytes; far below any statistic's noise), and every
consumer reads them through :func:`rounded`, so a value is the same whether it was just
predicted or found in a table: a plan made twice on the same inputs is the same plan.

>>> import pandas as pd
>>> frame = pd.DataFrame({"a": [1.0, 2.0, 1.0], "b": ["x", "y", "x"]})
>>> k1, k2 = row_keys(frame, ["a", "b"])
>>> bool(k1[0] == k1[2]), bool(k1[0] == k1[1])
(True, False)
>>> table = OutputTable.empty().merge(k1[:2], k2[:2], np.array([0.25, 0.5]))
>>> found, values = table.lookup(k1, k2)
>>> found.tolist(), values.tolist()
([True, True, True], [0.25, 0.5, 0.25])
>>> OutputTable.from_bytes(table.to_bytes()).rows
2
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regrow._hashing import hash_json
from regrow.components.fitted import FittedComponent, member_output

__all__ = [
    "KnownOutputs",
    "OutputTable",
    "OutputsFn",
    "cached_member_output",
    "output_key",
    "raw_inputs",
    "rounded",
    "row_keys",
]

#: Members' outputs on the rows of a frame, as float32 keeps them (read as float64): how a
#: service shares them between the steps of a command (:class:`regrow.cache.OutputCache`).
OutputsFn = Callable[[pd.DataFrame], Mapping[str, np.ndarray]]

_KEYS = ("regrow-outputs-1", "regrow-outputs-2")  # pandas hash keys: 16 characters each


def rounded(values: np.ndarray) -> np.ndarray:
    """``values`` as float32 would store them, as float64: how every consumer reads outputs."""
    return np.asarray(np.asarray(values, dtype=np.float32), dtype=np.float64)


def raw_inputs(name: str, components: Mapping[str, FittedComponent]) -> list[str]:
    """The raw columns component ``name`` reads, directly or through transforms, sorted."""
    found: set[str] = set()

    def visit(inputs: Sequence[str]) -> None:
        for i in inputs:
            if i in components:
                visit(components[i].spec.inputs)
            else:
                found.add(i)

    visit(components[name].spec.inputs)
    return sorted(found)


def _transforms_read(name: str, components: Mapping[str, FittedComponent]) -> list[str]:
    found: set[str] = set()

    def visit(inputs: Sequence[str]) -> None:
        for i in inputs:
            if i in components and i not in found:
                found.add(i)
                visit(components[i].spec.inputs)

    visit(components[name].spec.inputs)
    return sorted(found)


def output_key(
    name: str,
    components: Mapping[str, FittedComponent],
    artifacts: Mapping[str, str],
    classes: Sequence[Any] | None,
) -> str | None:
    """What member ``name``'s outputs depend on besides the rows, as a hex digest.

    ``artifacts`` maps component names to their artifact keys; None when one it needs is
    unknown (a system fitted in memory): its outputs are then not shared.
    """
    needed = [name, *_transforms_read(name, components)]
    if any(n not in artifacts for n in needed):
        return None
    key: dict[str, Any] = {
        "member": artifacts[name],
        "transforms": {t: artifacts[t] for t in needed[1:]},
        "classes": None if classes is None else [str(c) for c in classes],
    }
    # A component's own adapters change its outputs without changing its artifact.
    own = {n: a.digest() for n in needed if (a := getattr(components[n].spec, "adapters", None))}
    if own:
        key["adapters"] = own
    return hash_json(key)


def row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row's values in ``columns`` (and their types)."""
    sub = frame[list(columns)]
    types = np.uint64(int(hash_json([str(t) for t in sub.dtypes])[:15], 16))
    keys = []
    for key in _KEYS:
        h = pd.util.hash_pandas_object(sub, index=False, hash_key=key).to_numpy(np.uint64)
        keys.append(h ^ types)
    return keys[0], keys[1]


@dataclass(frozen=True)
class OutputTable:
    """A member's outputs (float32) by row key; ``keys`` unique, ``checks`` the second hash."""

    keys: np.ndarray
    checks: np.ndarray
    values: np.ndarray

    @classmethod
    def empty(cls) -> OutputTable:
        """A table with no rows."""
        none = np.zeros(0, np.uint64)
        return cls(none, none, np.zeros(0, np.float32))

    @property
    def rows(self) -> int:
        """How many rows the table holds."""
        return int(self.keys.size)

    def lookup(self, keys: np.ndarray, checks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the rows are held, and their outputs (as :func:`rounded` reads them)."""
        if self.rows == 0:
            return np.zeros(keys.size, bool), np.zeros((0, *self.values.shape[1:]))
        pos = pd.Index(self.keys).get_indexer(keys)
        found = pos >= 0
        found[found] = self.checks[pos[found]] == checks[found]
        return found, np.asarray(self.values[pos[found]], dtype=np.float64)

    def merge(self, keys: np.ndarray, checks: np.ndarray, values: np.ndarray) -> OutputTable:
        """This table with the rows given added (rows it holds, or repeated, are kept once)."""
        values = np.asarray(values, dtype=np.float32)
        if self.rows and values.shape[1:] != self.values.shape[1:]:
            return self  # another layout (a system with other classes): not shared
        keys = np.concatenate([self.keys, keys])
        checks = np.concatenate([self.checks, checks])
        stacked = np.concatenate([self.values, values]) if self.rows else values
        _, first = np.unique(keys, return_index=True)
        first.sort()
        return OutputTable(keys[first], checks[first], stacked[first])

    def to_bytes(self) -> bytes:
        """The table as bytes (numpy's ``.npz``, no pickled objects)."""
        out = io.BytesIO()
        np.savez(out, keys=self.keys, checks=self.checks, values=self.values)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> OutputTable:
        """A table written by :meth:`to_bytes`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return cls(npz["keys"], npz["checks"], npz["values"])


def cached_member_output(
    name: str,
    frame: pd.DataFrame,
    components: Mapping[str, FittedComponent],
    classes: Sequence[Any] | None,
    table: OutputTable | None,
) -> tuple[np.ndarray, OutputTable]:
    """Member ``name``'s output on ``frame``: rows ``table`` holds are read, the others
    predicted; returns the output (:func:`rounded`) and the table with the new rows."""
    table = table if table is not None else OutputTable.empty()
    k1, k2 = row_keys(frame, raw_inputs(name, components))
    found, known = table.lookup(k1, k2)
    if found.all():
        return known, table
    transforms = {n: c for n, c in components.items() if c.spec.kind == "transform"}
    fresh = rounded(member_output(components[name], frame[~found], transforms, classes))
    out = np.empty((len(frame), *fresh.shape[1:]))
    if found.any():
        out[found] = known
    out[~found] = fresh
    return out, table.merge(k1[~found], k2[~found], fresh)


@dataclass(frozen=True)
class KnownOutputs:
    """Stored outputs a fit may read (a stack's, on its rows): tables by output key, and
    the artifact key of each upstream component, by which a member's key is named."""

    tables: Mapping[str, OutputTable]
    artifacts: Mapping[str, str]

    def output(
        self,
        name: str,
        frame: pd.DataFrame,
        components: Mapping[str, FittedComponent],
        classes: Sequence[Any] | None,
    ) -> np.ndarray:
        """Member ``name``'s output on ``frame`` (:func:`rounded`): stored rows are read,
        the others predicted."""
        key = output_key(name, components, self.artifacts, classes)
        table = self.tables.get(key) if key is not None else None
        if table is None or table.rows == 0:
            transforms = {n: c for n, c in components.items() if c.spec.kind == "transform"}
            return rounded(member_output(components[name], frame, transforms, classes))
        return cached_member_output(name, frame, components, classes, table)[0]
