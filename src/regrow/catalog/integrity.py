"""The catalog's side of store checks and repairs: ``catalog.integrity``.

Reads what ``regrow doctor`` checks (every artifact a row references, runs still marked
running, alias history next to its audit events, the schema revision), and makes the few
writes a repair needs, each in one transaction with its audit event:

=============================  ===============================================================
``record_rebuild``             a component version refitted under its own fingerprint: the row
                               stays, its artifact pointer moves (compare-and-set) if the new
                               bytes differ; audit ``component.rebuild``
``restore_snapshot_artifact``  a snapshot's Parquet written again from its source; audit
                               ``snapshot.restore``
=============================  ===============================================================

An abandoned run is marked by :meth:`regrow.catalog.leases.Leases.abandon`.

Versions stay immutable in everything that defines them (fingerprint, parts, data, seed): a
repair only ever points a row at a rebuilt copy of the artifact it lost.

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> catalog.integrity.artifact_references()
[]
>>> current, head = catalog.integrity.schema_revision()
>>> current == head
True
>>> catalog.close()
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, db
from regrow.catalog.models import (
    Alias,
    AliasMove,
    AuditEvent,
    ComponentVersion,
    Evaluation,
    Run,
    Snapshot,
)
from regrow.catalog.records import ComponentVersionRecord, RunRecord, SnapshotRecord
from regrow.catalog.rows import component_version_record, run_record, snapshot_record
from regrow.errors import NotFound, VersionNotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["ARTIFACT_BYTES", "ArtifactReference", "Integrity"]

ARTIFACT_BYTES = "artifact_bytes"
"""The key of a component version's ``info`` that records its artifact's size, when known."""

_ALIAS_ACTIONS = ("alias.move", "alias.force", "alias.rollback")  # every kind of move


@dataclass(frozen=True)
class ArtifactReference:
    """A catalog row that references an artifact.

    ``kind`` is ``"component"`` (a component version; ``label`` is ``system/component``) or
    ``"snapshot"`` (``label`` is its name). ``size`` is the artifact's recorded size, when
    the row records one.
    """

    key: str
    kind: str
    id: str
    label: str
    size: int | None = None
    time_column: str | None = None  # a snapshot's, which storing its rows again must name
    slices: Mapping[str, str] | None = None  # a snapshot's, likewise

    @property
    def subject(self) -> str:
        """How audit events and doctor reports name the row."""
        return f"component-version:{self.id}" if self.kind == "component" else f"snapshot:{self.id}"


class Integrity:
    """Checks and repairs of ``catalog`` (see the module docs), as ``catalog.integrity``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    # -- reads ----------------------------------------------------------------------------

    def artifact_references(self) -> list[ArtifactReference]:
        """Every (row, artifact) pair: component versions first, then snapshots. Two queries."""
        cv = ComponentVersion.__table__.c
        snap = Snapshot.__table__.c
        refs: list[ArtifactReference] = []
        with self._catalog._read() as session:
            query = (
                sa.select(cv.id, cv.system, cv.component, cv.artifact, cv.info)
                .where(cv.artifact.is_not(None))
                .order_by(cv.created_at, cv.id)
            )
            for row in session.execute(query):
                size = (row.info or {}).get(ARTIFACT_BYTES)
                refs.append(
                    ArtifactReference(
                        row.artifact,
                        "component",
                        row.id,
                        f"{row.system}/{row.component}",
                        size if isinstance(size, int) else None,
                    )
                )
            query = sa.select(
                snap.id, snap.name, snap.artifact, snap.time_column, snap.slices
            ).order_by(snap.created_at, snap.id)
            refs.extend(
                ArtifactReference(
                    row.artifact,
                    "snapshot",
                    row.id,
                    row.name,
                    time_column=row.time_column,
                    slices=dict(row.slices or {}),
                )
                for row in session.execute(query)
            )
        return refs

    def referenced(self, key: str) -> bool:
        """Whether any component version or snapshot references the artifact ``key``, a
        stored table of members' outputs is in it (``catalog.outputs``), it is a file of the
        prediction log (``catalog.predictions``) or an evaluation's HTML report."""
        with self._catalog._read() as session:
            for model in (ComponentVersion, Snapshot):
                query = sa.select(model.id).where(model.artifact == key).limit(1)
                if session.execute(query).first() is not None:
                    return True
        return (
            self._catalog.outputs.holds(key)
            or self._catalog.predictions.holds(key)
            or key in self.report_artifacts()
        )

    def report_artifacts(self) -> set[str]:
        """The store keys of evaluations' HTML reports (``results["report"]``)."""
        with self._catalog._read() as session:
            rows = session.execute(sa.select(Evaluation.results))
            return {
                str(r.results["report"])
                for r in rows
                if isinstance(r.results, dict) and isinstance(r.results.get("report"), str)
            }

    def running_since(self, before: datetime) -> list[RunRecord]:
        """Runs still marked ``running`` that started before ``before``, oldest first."""
        query = (
            sa.select(Run)
            .where(Run.status == "running", Run.started_at < before)
            .order_by(Run.started_at, Run.id)
        )
        with self._catalog._read() as session:
            return [run_record(row) for row in session.scalars(query)]

    def database_problems(self, *, quick: bool = False) -> list[str]:
        """What SQLite's own check finds wrong in the catalog file (``PRAGMA integrity_check``,
        or ``quick_check``: no index checks), one line each; empty when it is sound, and for
        PostgreSQL, which keeps its pages itself."""
        engine = self._catalog._engine
        if engine.dialect.name != "sqlite":
            return []
        pragma = "quick_check" if quick else "integrity_check"
        try:
            with engine.connect() as connection:
                lines = [str(r[0]) for r in connection.exec_driver_sql(f"PRAGMA {pragma}")]
        except sa.exc.DatabaseError as exc:  # too damaged to check
            return [str(exc.orig)]
        return [] if lines == ["ok"] else lines

    def schema_revision(self) -> tuple[str | None, str]:
        """The catalog database's migration revision, and the newest this regrow knows."""
        return db.current_revision(self._catalog._engine), db.HEAD_REVISION

    def alias_problems(self) -> list[tuple[str, str]]:
        """Where alias rows, their move history and their audit events disagree.

        Each alias's moves must count revisions 1, 2, ... up to the alias's revision and end
        at the version it points to, and each move must have exactly one ``alias.move`` /
        ``alias.force`` / ``alias.rollback`` audit event with the same revision and target (and
        no event may lack its move). Returns ``(subject, what is wrong)`` pairs.
        """
        with self._catalog._read() as session:
            aliases = {
                (a.system, a.name): (a.version_id, a.revision)
                for a in session.scalars(sa.select(Alias))
            }
            moves: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
            for m in session.execute(
                sa.select(AliasMove.system, AliasMove.alias, AliasMove.revision,
                          AliasMove.to_version_id).order_by(AliasMove.id)
            ):  # fmt: skip
                moves[(m.system, m.alias)].append((m.revision, m.to_version_id))
            events: dict[str, list[tuple[int, Any, Any]]] = defaultdict(list)
            for e in session.execute(
                sa.select(AuditEvent.seq, AuditEvent.subject, AuditEvent.payload)
                .where(AuditEvent.action.in_(_ALIAS_ACTIONS))
                .order_by(AuditEvent.seq)
            ):
                payload = e.payload if isinstance(e.payload, dict) else {}
                events[e.subject].append((e.seq, payload.get("revision"), payload.get("to")))
        problems: list[tuple[str, str]] = []
        subjects = {f"alias:{s}@{a}": (s, a) for s, a in {*aliases, *moves}}
        subjects.update((s, _split_alias(s)) for s in events)
        for subject, key in sorted(subjects.items()):
            problems.extend(
                (subject, what)
                for what in _alias_disagreements(
                    aliases.get(key), moves.get(key, []), events[subject]
                )
            )
        return problems

    # -- repairs --------------------------------------------------------------------------

    def record_rebuild(
        self,
        version_id: str,
        *,
        expected: str,
        artifact: str,
        size: int | None,
        reason: str,
        by: str,
        run_id: str | None = None,
        actor: str | None = None,
    ) -> ComponentVersionRecord:
        """Record that component version ``version_id`` was refitted into ``artifact``.

        ``expected`` is the artifact the row pointed at when the rebuild started: the pointer
        moves only if it still does (compare-and-set), and only if the rebuilt bytes differ.
        If someone else repaired the row meanwhile, their record is returned and nothing is
        written. Audit ``component.rebuild`` naming the version, the old and new artifact,
        the reason (``missing``, ``corrupted``) and who rebuilt it (``by``: run or doctor).
        """
        who = self._catalog._who(actor)

        def write(session: Session) -> ComponentVersionRecord:
            row = session.get(ComponentVersion, version_id)
            if row is None:
                raise VersionNotFound(version_id, hint="pass the id of a stored component version")
            if row.artifact != expected:
                return component_version_record(row)  # repaired by someone else meanwhile
            if artifact != expected or (size is not None and row.info.get(ARTIFACT_BYTES) != size):
                info = dict(row.info)
                if size is not None:
                    info[ARTIFACT_BYTES] = size
                session.execute(
                    sa.update(ComponentVersion)
                    .where(ComponentVersion.id == version_id, ComponentVersion.artifact == expected)
                    .values(artifact=artifact, info=info)
                    .execution_options(synchronize_session=False)
                )
            audit.append(
                session,
                actor=who,
                action="component.rebuild",
                subject=f"component-version:{version_id}",
                rows=[("component_versions", version_id)],
                payload={
                    "system": row.system,
                    "component": row.component,
                    "fingerprint": row.fingerprint,
                    "from": expected,
                    "to": artifact,
                    "identical": artifact == expected,
                    "reason": reason,
                    "by": by,
                    "run_id": run_id,
                },
            )
            session.expire(row)
            return component_version_record(session.get_one(ComponentVersion, version_id))

        return self._catalog._write(write)

    def restore_snapshot_artifact(
        self,
        snapshot_id: str,
        *,
        expected: str,
        artifact: str,
        reason: str,
        actor: str | None = None,
    ) -> SnapshotRecord:
        """Record that snapshot ``snapshot_id``'s Parquet was written again, as ``artifact``.

        Compare-and-set on ``expected`` like :meth:`record_rebuild`; audit ``snapshot.restore``.
        """
        who = self._catalog._who(actor)

        def write(session: Session) -> SnapshotRecord:
            row = session.get(Snapshot, snapshot_id)
            if row is None:
                raise NotFound("snapshot", snapshot_id, hint="pass the full id of a snapshot")
            if row.artifact != expected:
                return snapshot_record(row)
            if artifact != expected:
                session.execute(
                    sa.update(Snapshot)
                    .where(Snapshot.id == snapshot_id, Snapshot.artifact == expected)
                    .values(artifact=artifact)
                    .execution_options(synchronize_session=False)
                )
            audit.append(
                session,
                actor=who,
                action="snapshot.restore",
                subject=f"snapshot:{snapshot_id}",
                rows=[("snapshots", snapshot_id)],
                payload={"name": row.name, "from": expected, "to": artifact, "reason": reason},
            )
            session.expire(row)
            return snapshot_record(session.get_one(Snapshot, snapshot_id))

        return self._catalog._write(write)


def _split_alias(subject: str) -> tuple[str, str]:
    system, _, alias = subject.removeprefix("alias:").partition("@")
    return system, alias


def _alias_disagreements(
    alias: tuple[str, int] | None,
    moves: list[tuple[int, str]],
    events: list[tuple[int, Any, Any]],
) -> list[str]:
    found: list[str] = []
    revisions = [r for r, _ in moves]
    if revisions != list(range(1, len(moves) + 1)):
        found.append(f"its moves have revisions {revisions}, not 1..{len(moves)}")
    if alias is None:
        if moves:
            found.append(f"has {len(moves)} recorded moves but no alias row")
    else:
        version_id, revision = alias
        if revision != len(moves):
            found.append(f"is at revision {revision} but has {len(moves)} recorded moves")
        if moves and moves[-1][1] != version_id:
            found.append(
                f"points at {version_id} but its last recorded move went to {moves[-1][1]}"
            )
    recorded = {(r, to) for r, to in moves}
    audited = {(r, to) for _, r, to in events}
    for r, to in sorted(recorded - audited):
        found.append(f"move r{r} to {to} has no audit event")
    for seq, r, to in events:
        if (r, to) not in recorded:
            found.append(f"audit event seq {seq} (r{r} to {to}) has no recorded move")
    if len(events) != len(audited):
        found.append(f"{len(events) - len(audited)} moves have more than one audit event")
    return found
