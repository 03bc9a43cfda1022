"""What monitoring, planning, running plans and evaluating need from a workspace.

The services -- :mod:`regrow.monitoring`, :mod:`regrow.planning`, :mod:`regrow.plan_runs`,
:mod:`regrow.evaluating` and :mod:`regrow.windows` -- take a :class:`Services`: the catalog,
the artifact store, a way to store rows as a snapshot, and loaders. They never take the
:class:`~regrow.Workspace`, which imports them and only delegates (DESIGN.md: a lower floor
never imports a higher one).

A Workspace makes one :class:`Services` per command, and the loaders remember what they
read for that command:

- each component artifact is read, verified and unpickled once, however many versions share
  it (a candidate and the baseline it was updated from share most of theirs); a Workspace
  keeps the components it read across its commands too (:class:`FittedMemo`, bounded), so a
  plan and its run, or a watcher's cycles, unpickle a champion once;
- each snapshot is read once per set of columns;
- each member is predicted once per row (:class:`~regrow.cache.OutputCache`), and rows an
  earlier command predicted and stored are read back.

:func:`load_components` and :func:`read_frame` are the loaders themselves, which
``Workspace.load`` and ``Workspace.frame`` use too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from regrow.catalog.records import SnapshotRecord, SystemVersionRecord
from regrow.errors import ArtifactCorrupted, ArtifactNotFound, DataError, SystemSpecError

if TYPE_CHECKING:
    import pandas as pd

    from regrow.cache import OutputCache
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.store import ArtifactStore
    from regrow.components.fitted import FittedComponent
    from regrow.model import FittedSystem
    from regrow.system import System

__all__ = ["FittedMemo", "Services", "SnapshotFn", "load_components", "read_frame"]

#: Stores rows as a snapshot, as :meth:`regrow.Workspace.snapshot` does.
SnapshotFn = Callable[..., SnapshotRecord]


class FittedMemo:
    """Fitted components by artifact key, with the artifact's size when it was read; the
    least recently used are dropped once their artifacts add up to more than ``max_bytes``.
    An artifact's key is the hash of its bytes, so what a key names never changes; the
    components are shared, never changed in place (an update fits a copy).
    :func:`load_components` uses one only while its artifact is stored with that size, so a
    lost or truncated artifact is noticed as on a first read (a same-size corruption is
    found by the next process that reads it, and by ``regrow doctor``).

    >>> memo = FittedMemo(max_bytes=10)
    >>> memo.put("a", "first", 6); memo.put("b", "second", 6)
    >>> memo.get("a"), memo.get("b")
    (None, ('second', 6))
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[FittedComponent, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[FittedComponent, int] | None:
        """The component read from artifact ``key`` and the artifact's size then."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def drop(self, key: str) -> None:
        with self._lock:
            found = self._items.pop(key, None)
            if found is not None:
                self._bytes -= found[1]

    def put(self, key: str, fitted: FittedComponent, size: int) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (fitted, size)
            self._bytes += size
            while self.max_bytes is not None and self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped


def load_components(
    catalog: Catalog,
    store: ArtifactStore,
    version: SystemVersionRecord,
    *,
    home: str | None = None,
    memo: dict[str, FittedComponent] | FittedMemo | None = None,
) -> tuple[dict[str, FittedComponent], dict[str, str]]:
    """The fitted components of ``version`` and the artifact each was read from.

    ``memo`` (artifact key -> component) is read first and filled: an artifact several
    versions share is read once. A lost or damaged artifact raises the error ``regrow
    doctor`` explains.
    """
    from regrow.doctor import lost_artifact_error
    from regrow.run.tasks import load_fitted

    records = catalog.get_component_versions(list(version.manifest.values()))
    fitted: dict[str, FittedComponent] = {}
    artifacts: dict[str, str] = {}
    for name, vid in version.manifest.items():
        artifact = records[vid].artifact
        if artifact is None:
            raise SystemSpecError(f"component version {vid} of {version.ref} has no artifact")
        found = _remembered(memo, store, artifact)
        if found is not None:
            fitted[name] = found
        else:
            try:
                data = store.get(artifact)
            except (ArtifactCorrupted, ArtifactNotFound) as exc:
                what = f"component {name!r} of {version.ref} (component version {vid})"
                raise lost_artifact_error(exc, what, home=home) from exc
            fitted[name] = load_fitted(data)
            if isinstance(memo, FittedMemo):
                memo.put(artifact, fitted[name], len(data))
            elif memo is not None:
                memo[artifact] = fitted[name]
        artifacts[name] = artifact
    return fitted, artifacts


def _remembered(
    memo: dict[str, FittedComponent] | FittedMemo | None, store: ArtifactStore, key: str
) -> FittedComponent | None:
    """The component ``memo`` holds for artifact ``key``; from a :class:`FittedMemo`, only
    while the stored artifact has the size it had when read (else it is dropped)."""
    if not isinstance(memo, FittedMemo):
        return None if memo is None else memo.get(key)
    found = memo.get(key)
    if found is None:
        return None
    try:
        same = store.size(key) == found[1]
    except (ArtifactCorrupted, ArtifactNotFound):
        same = False
    if not same:
        memo.drop(key)
        return None
    return found[0]


def read_frame(
    catalog: Catalog,
    store: ArtifactStore,
    ref: str,
    columns: Iterable[str] | None = None,
    *,
    home: str | None = None,
) -> pd.DataFrame:
    """The rows of snapshot ``ref`` (id, id prefix or name) as a pandas DataFrame."""
    from regrow.data.snapshot import read_parquet
    from regrow.doctor import lost_artifact_error

    snap = catalog.get_snapshot(ref)
    cols = list(columns) if columns is not None else None
    if cols is not None:
        unknown = sorted(set(cols) - set(snap.columns))
        if unknown:
            raise DataError(
                f"snapshot {ref!r} has no columns {unknown}",
                hint=f"it has {list(snap.columns)}",
            )
    try:
        data = store.get(snap.artifact)
    except (ArtifactCorrupted, ArtifactNotFound) as exc:
        what = f"snapshot {snap.id[:12]} ({snap.name})"
        raise lost_artifact_error(exc, what, home=home, snapshot=snap) from exc
    frame: pd.DataFrame = read_parquet(data, columns=cols).to_pandas()
    return frame


@dataclass
class Services:
    """The catalog, the store and loaders for one command (see the module docs).

    ``snapshot`` stores rows as a snapshot (``Workspace.snapshot``'s signature); ``home``
    is the workspace folder that error hints name; ``fitted`` keeps the components read
    beyond the command (the Workspace's), else they are kept for this command only.
    """

    catalog: Catalog
    store: ArtifactStore
    snapshot: SnapshotFn
    home: str | None = None
    fitted: FittedMemo | dict[str, FittedComponent] = field(default_factory=dict, repr=False)
    outputs: OutputCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from regrow.cache import OutputCache  # scikit-learn: not for reading a snapshot

        self.outputs = OutputCache(self.catalog, self.store)
        self._frames: dict[tuple[str, tuple[str, ...] | None], pd.DataFrame] = {}
        self._ids: dict[str, str] = {}  # snapshot reference -> id

    def version(self, ref: str | SystemVersionRecord) -> SystemVersionRecord:
        """The system version ``ref`` names (a record is returned as it is)."""
        if isinstance(ref, SystemVersionRecord):
            return ref
        return self.catalog.get_system_version(ref)

    def load(self, ref: str | SystemVersionRecord) -> FittedSystem:
        """The fitted system of version ``ref``; each artifact is read once per command."""
        from regrow.model import FittedSystem

        version = self.version(ref)
        fitted, artifacts = load_components(
            self.catalog, self.store, version, home=self.home, memo=self.fitted
        )
        return FittedSystem(version.spec, fitted, ref=version.ref, artifacts=artifacts)

    def system(self, ref: str | SystemVersionRecord) -> System:
        """The (unfitted) System definition stored with version ``ref``."""
        return self.load(ref).definition()

    def frame(self, ref: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The rows of snapshot ``ref`` (``columns`` of them); each read once per command.

        Every call gets its own frame object (a shallow copy: pandas copies on write), so a
        caller that changes it changes nobody else's.
        """
        if ref not in self._ids:
            self._ids[ref] = self.catalog.get_snapshot(ref).id
        snap = self._ids[ref]
        cols = tuple(columns) if columns is not None else None
        whole = self._frames.get((snap, None))
        if whole is not None and (cols is None or set(cols) <= set(whole.columns)):
            return whole[list(cols)] if cols is not None else whole.copy(deep=False)
        if (snap, cols) not in self._frames:
            self._frames[(snap, cols)] = read_frame(
                self.catalog, self.store, snap, cols, home=self.home
            )
        return self._frames[(snap, cols)].copy(deep=False)

    def record(self, snapshot: SnapshotRecord | str) -> SnapshotRecord:
        """The snapshot record ``snapshot`` names (a record is returned as it is)."""
        if isinstance(snapshot, SnapshotRecord):
            return snapshot
        return self.catalog.get_snapshot(snapshot)
