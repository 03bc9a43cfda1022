"""Members' outputs within a command, and across commands through the store.

An :class:`OutputCache` answers "member ``m``'s outputs on these rows" for one command: the
monitor, attribution, the probes and an evaluation all ask it, and it predicts each member
once per row, whatever order or subset of rows the askers come with (rows are keyed by their
content, :mod:`regrow.components.outputs`). Given a catalog and a store, it also reads the
tables earlier commands stored for the snapshot the rows come from, and :meth:`~OutputCache.save`
stores what this command predicted (``catalog.outputs``): ``regrow plan`` then ``regrow run``
predict the members the run keeps on the window's rows once, not twice. Saving is left to the
command, once it succeeded: a command that fails leaves nothing behind.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> from regrow.components.base import Member
>>> from regrow.components.fitted import fit_component
>>> from regrow.model import FittedSystem
>>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 2.0, 4.0, 6.0]})
>>> m = fit_component(Member("m", LinearRegression(), inputs=["x"]), frame, target="y",
...                   upstream={}, seed=0)
>>> spec = {"name": "s", "target": "y", "task": "regression", "components": {}}
>>> model = FittedSystem(spec, {"m": m}, artifacts={"m": "a" * 64})
>>> cache = OutputCache()
>>> cache.member_outputs(model, frame)["m"].round(6).tolist()
[0.0, 2.0, 4.0, 6.0]
>>> _ = cache.member_outputs(model, frame.iloc[[3, 1]])
>>> cache.predicted, cache.found
(4, 2)
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from regrow.components.fitted import member_output
from regrow.components.outputs import OutputTable, output_key, raw_inputs, rounded, row_keys
from regrow.errors import CatalogError, StoreError

if TYPE_CHECKING:
    import pandas as pd

    from regrow.catalog.catalog import Catalog
    from regrow.catalog.store import ArtifactStore
    from regrow.model import FittedSystem

__all__ = ["OutputCache"]


class OutputCache:
    """Members' outputs of one command (see the module docs).

    ``predicted`` and ``found`` count member-rows predicted and read from a table.
    """

    def __init__(self, catalog: Catalog | None = None, store: ArtifactStore | None = None) -> None:
        self.catalog = catalog
        self.store = store
        self.predicted = 0
        self.found = 0
        self._tables: dict[str, OutputTable] = {}
        self._fresh: dict[tuple[str, str], OutputTable] = {}  # (key, snapshot) -> to store
        self._read: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"OutputCache(<{len(self._tables)} members>, predicted={self.predicted})"

    @property
    def held(self) -> int:
        """How many rows the cache holds, over all its members' tables (its memory grows with
        it: a long-lived cache is dropped past a bound)."""
        return sum(table.rows for table in self._tables.values())

    def member_outputs(
        self,
        model: FittedSystem,
        frame: pd.DataFrame,
        *,
        snapshot: str | None = None,
        members: Collection[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Each member's output on ``frame`` (probabilities in ``model.classes_`` order, or
        values), as float32 keeps them; ``snapshot`` names the snapshot the rows come from,
        whose stored tables are read and under which the new rows are saved."""
        names = [
            n
            for n, c in model.components.items()
            if c.spec.kind == "member" and (members is None or n in members)
        ]
        keys = {n: output_key(n, model.components, model.artifacts, model.classes_) for n in names}
        if snapshot is not None:
            self._load([k for k in keys.values() if k is not None], snapshot)
        transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
        out: dict[str, np.ndarray] = {}
        for name in names:
            key = keys[name]
            if key is None:  # fitted in memory: nothing names its outputs
                self.predicted += len(frame)
                out[name] = rounded(
                    member_output(model.components[name], frame, transforms, model.classes_)
                )
                continue
            table = self._tables.get(key, OutputTable.empty())
            k1, k2 = row_keys(frame, raw_inputs(name, model.components))
            found, known = table.lookup(k1, k2)
            self.found += int(found.sum())
            if found.all():
                out[name] = known
                continue
            missing = ~found
            fresh = rounded(
                member_output(model.components[name], frame[missing], transforms, model.classes_)
            )
            self.predicted += int(missing.sum())
            self._tables[key] = table.merge(k1[missing], k2[missing], fresh)
            if snapshot is not None:
                pending = self._fresh.get((key, snapshot), OutputTable.empty())
                self._fresh[(key, snapshot)] = pending.merge(k1[missing], k2[missing], fresh)
            values = np.empty((len(frame), *fresh.shape[1:]))
            if found.any():
                values[found] = known
            values[missing] = fresh
            out[name] = values
        return out

    def stored(self, keys: Iterable[str], snapshot_ids: Iterable[str]) -> dict[str, list[str]]:
        """The artifacts of the tables stored for ``keys`` on any of ``snapshot_ids``."""
        if self.catalog is None:
            return {}
        return self.catalog.outputs.find(keys, snapshot_ids)

    def _load(self, keys: list[str], snapshot: str) -> None:
        wanted = [k for k in keys if (k, snapshot) not in self._read]
        if not wanted or self.catalog is None or self.store is None:
            return
        self._read.update((k, snapshot) for k in wanted)
        for key, artifacts in self.catalog.outputs.find(wanted, [snapshot]).items():
            for artifact in artifacts:
                try:
                    table = OutputTable.from_bytes(self.store.get(artifact))
                except (LookupError, ValueError, OSError, StoreError):
                    continue  # lost or damaged: its rows are predicted again
                held = self._tables.get(key, OutputTable.empty())
                self._tables[key] = held.merge(table.keys, table.checks, table.values)

    def save(self, snapshots: Mapping[str, str] | None = None) -> int:
        """Store the rows this command predicted, each table under its snapshot (renamed by
        ``snapshots``, e.g. a window's id once it is stored); returns the tables stored.

        A cache: a table that cannot be stored is skipped, never an error.
        """
        if self.catalog is None or self.store is None:
            return 0
        stored = 0
        for (key, snapshot), table in self._fresh.items():
            snap = (snapshots or {}).get(snapshot, snapshot)
            artifact = None
            try:
                artifact = self.store.put(table.to_bytes())
                self.catalog.outputs.add(
                    key=key, snapshot_id=snap, artifact=artifact, rows=table.rows
                )
                stored += 1
            except (CatalogError, StoreError, LookupError, OSError):
                if artifact is not None and not self.catalog.integrity.referenced(artifact):
                    with contextlib.suppress(StoreError, OSError):
                        self.store.delete(artifact)
        self._fresh.clear()
        return stored
