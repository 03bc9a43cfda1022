"""The recorded graph of a version: every component version a rebuild reads, in order.

A version's manifest names its components; rebuilding one also needs what it was fitted
from: the upstream components it reads (transitively) and, for an update (continue,
fine-tune), the version it updated, which may belong to an older version of the system.
:func:`recorded_graph` collects them all from the catalog, orders them so each comes after
what it reads, and loads each original from the store (the store checks every byte against
its hash). Anything missing fails here, before anything is fitted, with the repair to run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regrow.catalog.catalog import Catalog, component_version_id
from regrow.catalog.records import ComponentVersionRecord, SnapshotRecord, SystemVersionRecord
from regrow.catalog.store import ArtifactStore
from regrow.components.fitted import FittedComponent
from regrow.doctor import lost_artifact_error
from regrow.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ComponentError,
    VersionNotFound,
)
from regrow.run.rebuild import dependency_order
from regrow.run.tasks import load_fitted

__all__ = ["RecordedGraph", "recorded_graph"]


@dataclass(frozen=True)
class RecordedGraph:
    """A version's component versions and their dependencies, keyed by component version id.

    ``order`` lists every id after the ids it reads; ``upstream`` maps an id to the
    components it reads directly (name -> id), ``bases`` an update's id to the id it updated.
    ``originals`` holds each fitted original, loaded and verified.
    """

    version: SystemVersionRecord
    records: dict[str, ComponentVersionRecord]
    order: tuple[str, ...]
    upstream: dict[str, dict[str, str]]
    bases: dict[str, str]
    originals: dict[str, FittedComponent]
    snapshots: dict[str, SnapshotRecord]

    def ancestors(self, cid: str) -> dict[str, str]:
        """Every component ``cid`` reads, directly or not: name -> component version id."""
        found: dict[str, str] = {}
        frontier = [cid]
        while frontier:
            nxt = []
            for current in frontier:
                for name, up in self.upstream.get(current, {}).items():
                    if name not in found:
                        found[name] = up
                        nxt.append(up)
            frontier = nxt
        return found

    def label(self, cid: str) -> str:
        """``component 'geo' of churn:v2 (component version 1a2b...)`` for messages."""
        record = self.records[cid]
        where = self.version.ref if cid in self.version.manifest.values() else record.system
        return f"component {record.component!r} of {where} (component version {cid})"


def recorded_graph(
    catalog: Catalog, store: ArtifactStore, version: SystemVersionRecord, *, home: Any = None
) -> RecordedGraph:
    """Collect, order and load everything a rebuild of ``version`` reads (see the module)."""
    records = dict(catalog.get_component_versions(list(version.manifest.values())))
    upstream: dict[str, dict[str, str]] = {}
    bases: dict[str, str] = {}
    frontier = list(records.values())
    while frontier:
        wanted: dict[str, str] = {}  # id -> who reads it
        for rec in frontier:
            upstream[rec.id] = {
                name: component_version_id(rec.system, name, fp)
                for name, fp in (rec.parts.get("upstream") or {}).items()
            }
            update = rec.parts.get("update")
            if update is not None:
                bases[rec.id] = component_version_id(rec.system, rec.component, update["base"])
            for dep in [*upstream[rec.id].values(), *([bases[rec.id]] if update else [])]:
                if dep not in records:
                    wanted[dep] = rec.id
        try:
            found = catalog.get_component_versions(wanted)
        except VersionNotFound as exc:
            reader = records[wanted.get(exc.ref, next(iter(wanted.values())))]
            raise VersionNotFound(
                exc.ref,
                hint=f"{reader.component!r} of {version.ref} was fitted from this component "
                "version, and the catalog has no row for it: run `regrow doctor`",
            ) from exc
        records.update(found)
        frontier = list(found.values())
    order = dependency_order(
        {cid: {*upstream[cid].values(), *([bases[cid]] if cid in bases else [])} for cid in records}
    )
    snapshot_ids = {r.snapshot_id for r in records.values() if r.snapshot_id}
    snapshot_ids |= {
        ref for r in records.values() if (ref := (r.parts.get("update") or {}).get("reference"))
    }
    snapshots = {sid: catalog.get_snapshot(sid) for sid in sorted(snapshot_ids)}
    graph = RecordedGraph(version, records, tuple(order), upstream, bases, {}, snapshots)
    for snap in snapshots.values():
        if not store.exists(snap.artifact):
            missing = ArtifactNotFound(f"artifact {snap.artifact} is not in the store")
            what = f"snapshot {snap.id[:12]} ({snap.name})"
            raise lost_artifact_error(missing, what, home=_home(home), snapshot=snap)
    for cid in order:
        graph.originals[cid] = _load(graph, store, cid, home)
    return graph


def _load(graph: RecordedGraph, store: ArtifactStore, cid: str, home: Any) -> FittedComponent:
    record = graph.records[cid]
    if record.artifact is None:
        raise ComponentError(
            f"{graph.label(cid)} has no artifact to compare a rebuild with",
            hint="it was recorded before every component stored one: retrain the version",
        )
    try:
        data = store.get(record.artifact)
    except (ArtifactNotFound, ArtifactCorrupted) as exc:
        raise lost_artifact_error(exc, graph.label(cid), home=_home(home)) from exc
    try:
        return load_fitted(data)
    except (ComponentError, ImportError, AttributeError) as exc:
        raise _unloadable(graph, cid, exc) from exc


def _unloadable(graph: RecordedGraph, cid: str, exc: BaseException) -> ComponentError:
    """The estimator's definition cannot be loaded: name the module, and how to get it."""
    cause: BaseException = exc
    while not isinstance(cause, ImportError) and cause.__cause__ is not None:
        cause = cause.__cause__
    module = getattr(cause, "name", None)
    if not module:
        return ComponentError(
            f"cannot load the estimator of {graph.label(cid)}: {type(cause).__name__}: {cause}",
            hint="the class it was fitted with is gone from its module: restore that module",
        )
    deps: Mapping[str, Any] = graph.records[cid].parts.get("deps") or {}
    top = module.split(".")[0]
    library = next((lib for lib in deps if lib.replace("-", "_").lower() == top.lower()), None)
    if library is not None:
        hint = f"install {library}=={deps[library]} (the version it was trained with)"
    else:
        hint = f"install the package that provides {top!r}, or run from the folder holding it"
    return ComponentError(
        f"cannot load the estimator of {graph.label(cid)}: its module {module!r} is not "
        "importable here",
        hint=hint,
    )


def _home(home: Any) -> str | None:
    return str(home) if home is not None else None
