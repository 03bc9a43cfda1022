"""Refit a version's recorded graph, component by component, in a scratch workspace.

Each component is refitted from what the catalog recorded, as the runner fitted it (see
``runner._task``): the stored component (estimator, parameters and the user's code, which
travel with the artifact), the snapshot it trained on, its seed, the refitted components it
reads (transforms; every ancestor for a stack), the members fitted on the same rows (a
stack's in-sample members), and for an update the refitted version it updated and the
snapshot it may replay. Its fingerprint parts are recomputed as they read now (see
:mod:`.parts`), and the refit is recorded in the scratch catalog under that fingerprint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from regrow.catalog.catalog import Catalog, component_version_id
from regrow.catalog.records import RunRecord, SnapshotRecord
from regrow.catalog.store import ArtifactStore
from regrow.components.base import Ensemble
from regrow.data.column_hash import column_hash
from regrow.data.schema import Schema
from regrow.data.snapshot import read_parquet
from regrow.doctor import lost_artifact_error
from regrow.errors import ArtifactCorrupted, ArtifactNotFound, RegrowError
from regrow.fingerprint import fingerprint
from regrow.reproduce.graph import RecordedGraph
from regrow.reproduce.parts import Explanation, PartsNow, explain, parts_now
from regrow.reproduce.report import ReproduceReport
from regrow.reproduce.scratch import Scratch
from regrow.run.tasks import TaskSpec, run_task

__all__ = ["Refit", "Refitted"]


@dataclass(frozen=True)
class Refitted:
    """A refitted component version: its artifact in the scratch store, the fingerprint and
    parts recomputed now, and how long the fit took."""

    artifact: str
    fingerprint: str
    parts: PartsNow
    seconds: float


class Refit:
    """The refit of a version's recorded graph into a scratch workspace.

    :meth:`copy_snapshot` each snapshot first, then :meth:`component` each id in the
    graph's order; :meth:`finish` records the rebuilt version in the scratch catalog.
    ``refitted`` holds each refitted id's artifact and recomputed fingerprint, ``roots``
    what a differing fingerprint comes down to, ``tables`` the snapshots' rows.
    """

    def __init__(
        self,
        catalog: Catalog,
        store: ArtifactStore,
        graph: RecordedGraph,
        room: Scratch,
        *,
        environment: Mapping[str, Any],
        home: Any = None,
    ) -> None:
        self.catalog, self.store, self.graph, self.room, self.home = (
            catalog, store, graph, room, home
        )  # fmt: skip
        self.refitted: dict[str, Refitted] = {}
        self.roots: dict[str, tuple[str, ...]] = {}  # id -> the root causes it differs for
        self.tables: dict[str, pa.Table] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        version = graph.version
        room.catalog.actor = catalog.actor
        self.run: RunRecord = room.catalog.start_run(
            system=version.system,
            kind="reproduce",
            seed=int(version.spec.get("seed") or 0),
            environment=environment,
            params={"reproduces": version.ref, "version_id": version.id},
        )

    # -- refitting -------------------------------------------------------------------------

    def copy_snapshot(self, snap: SnapshotRecord) -> None:
        """Copy a snapshot into the scratch store, and hash its columns again."""
        try:
            data = self.store.get(snap.artifact)
        except (ArtifactNotFound, ArtifactCorrupted) as exc:
            what = f"snapshot {snap.id[:12]} ({snap.name})"
            home = str(self.home) if self.home is not None else None
            raise lost_artifact_error(exc, what, home=home, snapshot=snap) from exc
        schema = self.catalog.get_schema(snap.schema_id).spec
        self.room.add_snapshot(snap, data, schema, self.catalog.get_profile(snap.id))
        table = read_parquet(data)
        self.tables[snap.id] = table
        self.hashes[snap.id] = _column_hashes(table, schema)

    def component(self, cid: str) -> None:
        """Refit component version ``cid`` in the scratch workspace and record it there."""
        graph, record = self.graph, self.graph.records[cid]
        spec = graph.originals[cid].spec
        ancestors = graph.ancestors(cid)
        snap = graph.snapshots.get(record.snapshot_id) if record.snapshot_id else None
        stack = isinstance(spec, Ensemble) and spec.learns_from_data
        upstream = {
            name: self.refitted[a].artifact
            for name, a in ancestors.items()
            if graph.records[a].kind == "transform" or stack
        }
        in_sample: tuple[str, ...] = ()
        if isinstance(spec, Ensemble) and snap is not None:
            in_sample = tuple(
                m
                for m in spec.inputs
                if m in ancestors and graph.records[ancestors[m]].snapshot_id == snap.id
            )
        update = record.parts.get("update")
        base = graph.bases.get(cid)
        reference = (update or {}).get("reference")
        result = run_task(
            TaskSpec(
                name=record.component,
                component=spec,
                target=self._target(cid),
                seed=record.seed,
                store_url=self.room.store.url,
                snapshot_artifact=snap.artifact if snap is not None else None,
                columns=tuple(sorted(record.parts.get("data") or {})) if snap else (),
                upstream=upstream,
                in_sample=in_sample,
                update=(
                    {"action": update["action"], "params": dict(update.get("params") or {})}
                    if update is not None
                    else None
                ),
                base_artifact=self.refitted[base].artifact if base else None,
                reference_artifact=graph.snapshots[reference].artifact if reference else None,
            )
        )
        now = parts_now(
            record,
            estimator=spec.estimator,
            column_hashes=self.hashes.get(snap.id) if snap is not None else None,
            upstream={n: self.refitted[u].fingerprint for n, u in graph.upstream[cid].items()},
            base=self.refitted[base].fingerprint if base else None,
        )
        fp = fingerprint(now.parts)
        self.room.catalog.add_component_version(
            system=record.system,
            component=record.component,
            kind=record.kind,
            fingerprint=fp,
            parts=now.parts,
            artifact=result.artifact,
            run_id=self.run.id,
            snapshot_id=snap.id if snap is not None else None,
            seed=record.seed,
            train_seconds=result.seconds,
            info={**result.info, "code": now.locations, "reproduces": cid},
        )
        self.refitted[cid] = Refitted(result.artifact, fp, now, result.seconds)
        self.roots[cid] = self._root_causes(cid) if fp != record.fingerprint else ()

    def _target(self, cid: str) -> str:
        version = self.graph.version
        if cid in version.manifest.values():
            return str(version.spec["target"])
        record = self.graph.records[cid]
        for other in self.catalog.list_system_versions(record.system):
            if cid in other.manifest.values():
                return str(other.spec["target"])
        return str(version.spec["target"])

    def _root_causes(self, cid: str) -> tuple[str, ...]:
        """What a differing fingerprint comes down to: the component's own causes, or those
        of the upstream components (and update base) it differs through."""
        own = self.explain(cid).own
        if own:
            return own
        inherited: dict[str, None] = {}
        base = self.graph.bases.get(cid)
        for dep in [*self.graph.upstream[cid].values(), *([base] if base else [])]:
            inherited.update(dict.fromkeys(self.roots.get(dep, ())))
        return tuple(inherited) or ("its fingerprint differs",)

    def explain(self, cid: str) -> Explanation:
        """Why the fingerprint recomputed for ``cid`` differs (see :func:`.parts.explain`)."""
        differing = {
            name: "; ".join(self.roots[up])
            for name, up in self.graph.upstream[cid].items()
            if self.roots.get(up)
        }
        base = self.graph.bases.get(cid)
        if base and self.roots.get(base):
            differing["update"] = "; ".join(self.roots[base])
        return explain(self.graph.records[cid], self.refitted[cid].parts, differing)

    # -- the scratch workspace's own record -----------------------------------------------

    def finish(self, report: ReproduceReport) -> None:
        """Record the rebuilt version and the run in the scratch catalog."""
        version = self.graph.version
        manifest = {
            name: component_version_id(version.system, name, self.refitted[cid].fingerprint)
            for name, cid in version.manifest.items()
        }
        snapshot = version.snapshot_id if version.snapshot_id in self.tables else None
        made = self.room.catalog.add_system_version(
            system=version.system,
            manifest=manifest,
            spec=version.spec,
            parent_id=None,
            run_id=self.run.id,
            snapshot_id=snapshot,
            note=f"reproduction of {version.ref} ({version.id})",
        )
        causes = {  # what `regrow lineage` says each component was trained for
            c.name: [f"reproduces {c.version_id[:12]} ({c.verdict})"] for c in report
        }
        summary = {**report.summary(), "trained": list(manifest), "causes": causes}
        self.room.catalog.finish_run(
            self.run.id, status="succeeded", summary=summary, version_id=made.id
        )

    def fail(self, exc: BaseException) -> None:
        """Mark the scratch run failed (seen only when the scratch workspace is kept)."""
        with contextlib.suppress(Exception):
            self.room.catalog.finish_run(
                self.run.id,
                status="failed",
                summary={"rebuilt": len(self.refitted)},
                error=f"{type(exc).__name__}: {exc}",
            )


def _column_hashes(table: pa.Table, schema_spec: Mapping[str, Any]) -> dict[str, str]:
    """Each column's hash from the stored rows, as the snapshot's schema types it."""
    try:
        schema: Schema | None = Schema.from_dict(schema_spec)
    except RegrowError:  # a schema regrow did not write: hash each column as it reads
        schema = None
    return {
        c: column_hash(table.column(c), dtype=schema[c].dtype if schema and c in schema else None)
        for c in table.column_names
    }
