"""The hashes of a component's columns as its own adapters change them, from a snapshot.

A component may adapt the values of columns it reads (:func:`regrow.components.base.
check_own_adapters`). Its fingerprint then holds the hash of each column those adapters
change in the rows it is bound to (:func:`regrow.fingerprint.component_parts`): an adapter that
changes nothing there re-fits nothing; one that maps values the component trained on does.
Finding out reads those columns of the snapshot once per set of adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regrow.catalog.records import SnapshotRecord
    from regrow.catalog.store import ArtifactStore

__all__ = ["AdaptedHashes", "adapted_hashes"]

#: ``(adapters, columns) -> {column: hash after adapting}``, for the columns that change.
AdaptedHashes = Callable[[Any, list[str]], dict[str, str]]


def adapted_hashes(store: ArtifactStore, snapshot: SnapshotRecord | None) -> AdaptedHashes | None:
    """The hashes ``snapshot``'s columns get from a component's own adapters (None without a
    snapshot: then the adapters' digest stands in)."""
    if snapshot is None:
        return None
    memo: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}

    def compute(adapters: Any, columns: list[str]) -> dict[str, str]:
        key = (adapters.digest(), tuple(columns))
        if key not in memo:
            memo[key] = _changed(store, snapshot, adapters, columns)
        return memo[key]

    return compute


def _changed(
    store: ArtifactStore, snapshot: SnapshotRecord, adapters: Any, columns: list[str]
) -> dict[str, str]:
    import pandas as pd

    from regrow.data.column_hash import column_hash
    from regrow.data.snapshot import read_parquet

    present = [c for c in columns if c in snapshot.columns]
    if present:
        frame = read_parquet(store.get(snapshot.artifact), columns=present).to_pandas()
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(snapshot.rows))
    after = adapters.apply(frame)
    changed: dict[str, str] = {}
    for column in columns:
        if column not in after.columns or (column in frame and after[column] is frame[column]):
            continue
        now = column_hash(after[column])
        if column not in frame or now != column_hash(frame[column]):
            changed[column] = now
    return changed
