"""Schemas, snapshots and their profiles in the catalog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow._hashing import hash_json
from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import Profile, Schema, Snapshot, SystemVersion
from regrow.catalog.records import SchemaRecord, SnapshotRecord
from regrow.catalog.rows import schema_record, snapshot_record
from regrow.errors import CatalogError, ConfigError, NotFound

__all__ = ["DatasetsMixin"]

_TOP_SHOWN = 5


class DatasetsMixin(CatalogCore):
    """Catalog methods for schemas, snapshots and profiles."""

    def register_schema(
        self,
        name: str,
        spec: Mapping[str, Any],
        *,
        actor: str | None = None,
        change: Mapping[str, Any] | None = None,
    ) -> SchemaRecord:
        """Record ``spec`` as a version of the schema ``name``; its id is ``hash_json(spec)``.

        Registering a spec already stored under ``name`` returns the existing record; a new
        spec becomes the next version. Audit event ``schema.create`` for a new version.
        ``change`` describes an incompatible change someone allowed (its problems, the diff):
        it is recorded, in the same transaction, as audit event ``schema.change`` with the
        version the spec has, new or not.
        """
        name = checks.text("name", name)
        data = audit.normalize(checks.mapping("spec", spec))
        schema_id, who = hash_json(data), self._who(actor)
        allowed = audit.normalize(checks.mapping("change", change)) if change is not None else None

        def write(session: Session) -> SchemaRecord:
            record = register(session)
            if allowed is not None:
                audit.append(
                    session,
                    actor=who,
                    action="schema.change",
                    subject=f"schema:{name}",
                    rows=[("schemas", (name, record.version))],
                    payload={**allowed, "id": schema_id, "version": record.version},
                )
            return record

        def register(session: Session) -> SchemaRecord:
            row = session.scalars(
                sa.select(Schema).where(Schema.name == name, Schema.id == schema_id)
            ).first()
            if row is not None:
                return schema_record(row)
            latest = session.scalar(
                sa.select(sa.func.max(Schema.version)).where(Schema.name == name)
            )
            row = Schema(
                id=schema_id, name=name, version=(latest or 0) + 1, spec=data, created_at=now()
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="schema.create",
                subject=f"schema:{name}",
                rows=[("schemas", (name, row.version))],
                payload={"id": schema_id, "version": row.version},
            )
            return schema_record(row)

        return self._write(write, retry_on=("pk_schemas", "uq_schemas_name_id"))

    def get_schema(self, schema_id: str) -> SchemaRecord:
        """The schema with this id; :class:`~regrow.errors.NotFound` if there is none.

        Should several datasets share this exact spec, the first one registered is returned.
        """
        with self._read() as session:
            row = self._schema(session, schema_id)
            return schema_record(row)

    def schema_versions(self, name: str) -> list[SchemaRecord]:
        """Every version of the schema ``name``, oldest first (empty if none)."""
        with self._read() as session:
            rows = session.scalars(
                sa.select(Schema).where(Schema.name == name).order_by(Schema.version)
            )
            return [schema_record(row) for row in rows]

    def latest_schema(self, name: str) -> SchemaRecord | None:
        """The schema a new snapshot named ``name`` is compared with: that of the newest
        snapshot with the name, else the name's highest schema version; None for a new name."""
        newest = (
            sa.select(Snapshot.schema_id)
            .where(Snapshot.name == name)
            .order_by(Snapshot.created_at.desc(), Snapshot.id)
            .limit(1)
        )
        with self._read() as session:
            schema_id = session.scalar(newest)
            query = sa.select(Schema).where(Schema.name == name)
            if schema_id is not None:
                query = query.where(Schema.id == schema_id)
            row = session.scalars(query.order_by(Schema.version.desc()).limit(1)).first()
            return schema_record(row) if row is not None else None

    def snapshot_schema(self, ref: str) -> SchemaRecord:
        """The schema of snapshot ``ref`` (id, id prefix or name), with its version under the
        snapshot's name."""
        with self._read() as session:
            snap = lookup.snapshot(session, ref)
            row = session.scalars(
                sa.select(Schema).where(Schema.name == snap.name, Schema.id == snap.schema_id)
            ).first()
            return schema_record(row if row is not None else self._schema(session, snap.schema_id))

    def trained_target(self, name: str) -> str | None:
        """The target of the newest system version trained on a snapshot named ``name``
        (None if none was): what a new snapshot under the name must label."""
        query = (
            sa.select(SystemVersion.spec)
            .join(Snapshot, Snapshot.id == SystemVersion.snapshot_id)
            .where(Snapshot.name == name)
            .order_by(SystemVersion.created_at.desc())
            .limit(1)
        )
        with self._read() as session:
            spec = session.scalar(query)
        target = spec.get("target") if isinstance(spec, Mapping) else None
        return target if isinstance(target, str) else None

    def add_snapshot(
        self,
        *,
        id: str,
        name: str,
        schema_id: str,
        rows: int,
        columns: Sequence[str],
        column_hashes: Mapping[str, str],
        artifact: str,
        time_column: str | None,
        slices: Mapping[str, str],
        profile: Mapping[str, Any],
        parent_ids: Iterable[str] = (),
        actor: str | None = None,
    ) -> SnapshotRecord:
        """Record a snapshot and its whole-snapshot profile (slice ``""``).

        Idempotent on ``id``: adding an id that exists returns the stored record unchanged.
        The schema and the parent snapshots must exist. Audit event ``snapshot.create``.
        """
        values = {
            "id": checks.identifier("id", id),
            "name": checks.text("name", name),
            "schema_id": checks.identifier("schema_id", schema_id),
            "rows": checks.integer("rows", rows),
            "columns": list(checks.texts("columns", columns)),
            "column_hashes": audit.normalize(checks.mapping("column_hashes", column_hashes)),
            "artifact": checks.text("artifact", artifact),
            "time_column": time_column,
            "slices": audit.normalize(checks.mapping("slices", slices)),
            "parent_ids": list(checks.texts("parent_ids", tuple(parent_ids))),
        }
        if time_column is not None and time_column not in values["columns"]:
            raise ConfigError(
                f"time_column {time_column!r} is not one of the snapshot's columns",
                hint="pass None or the name of a column",
            )
        payload = audit.normalize(checks.mapping("profile", profile))
        who = self._who(actor)

        def write(session: Session) -> SnapshotRecord:
            existing = session.get(Snapshot, values["id"])
            if existing is not None:
                return snapshot_record(existing)
            self._schema(session, values["schema_id"])
            for parent in values["parent_ids"]:
                if session.get(Snapshot, parent) is None:
                    raise NotFound(
                        "snapshot", parent, hint="add parent snapshots before their children"
                    )
            row = Snapshot(**values, created_at=now())
            session.add(row)
            session.flush()  # the snapshot row first: profiles reference it
            session.add(Profile(snapshot_id=row.id, slice="", payload=payload))
            session.flush()
            audit.append(
                session,
                actor=who,
                action="snapshot.create",
                subject=f"snapshot:{row.id}",
                rows=[("snapshots", row.id)],
                payload={"name": row.name, "rows": row.rows, "schema_id": row.schema_id},
            )
            return snapshot_record(row)

        return self._write(write, retry_on=("pk_snapshots",))

    def get_snapshot(self, ref: str) -> SnapshotRecord:
        """The snapshot ``ref`` names: its id, a unique id prefix (>= 6 hex), or its name (newest).

        Unknown or ambiguous references raise :class:`~regrow.errors.NotFound` with a hint.
        """
        with self._read() as session:
            return snapshot_record(lookup.snapshot(session, ref))

    def describe_snapshot(self, ref: str) -> dict[str, Any]:
        """Snapshot ``ref`` (id, id prefix or name) for people: its record, schema version,
        source, one row per column (dtype, nullability, nulls, range or top values), its
        slices with their rows, and the data-quality notes made when it was stored.

        Snapshots stored before slice row counts, notes and sources were kept show ``None``
        for them.
        """
        with self._read() as session:
            snap = lookup.snapshot(session, ref)
            record = snapshot_record(snap)
            schema = session.scalars(
                sa.select(Schema).where(Schema.name == snap.name, Schema.id == snap.schema_id)
            ).first() or self._schema(session, snap.schema_id)
            row = session.get(Profile, (snap.id, ""))
            profile = dict(row.payload) if row is not None else {}
        stats = profile.get("columns") or {}
        slice_rows = profile.get("slice_rows") or {}
        notes = profile.get("notes")
        return {
            "id": record.id,
            "name": record.name,
            "rows": record.rows,
            "created_at": record.created_at,
            "source": profile.get("source"),
            "time_column": record.time_column,
            "parent_ids": list(record.parent_ids),
            "schema": {"id": schema.id, "version": schema.version},
            "columns": [
                _column_summary(spec, stats.get(spec.get("name")) or {})
                for spec in _column_specs(schema.spec, record.columns)
            ],
            "slices": [
                {"name": n, "expr": e, "rows": slice_rows.get(n)} for n, e in record.slices.items()
            ],
            "notes": [n["message"] for n in notes] if isinstance(notes, list) else None,
        }

    def list_snapshots(self, name: str | None = None) -> list[SnapshotRecord]:
        """Every snapshot (or those named ``name``), newest first."""
        query = sa.select(Snapshot).order_by(Snapshot.created_at.desc(), Snapshot.id)
        if name is not None:
            query = query.where(Snapshot.name == name)
        with self._read() as session:
            return [snapshot_record(row) for row in session.scalars(query)]

    def put_profile(self, snapshot_id: str, slice: str, profile: Mapping[str, Any]) -> None:
        """Store the profile of one slice of a snapshot.

        Profiles are immutable like the snapshot: storing the same profile again is a no-op,
        a different one for a slice that has one raises :class:`~regrow.errors.CatalogError`.
        """
        checks.text("slice", slice, empty=True)
        payload = audit.normalize(checks.mapping("profile", profile))

        def write(session: Session) -> None:
            if session.get(Snapshot, snapshot_id) is None:
                raise NotFound("snapshot", snapshot_id, hint="add the snapshot before its profiles")
            row = session.get(Profile, (snapshot_id, slice))
            if row is None:
                session.add(Profile(snapshot_id=snapshot_id, slice=slice, payload=payload))
            elif row.payload != payload:
                raise CatalogError(
                    f"snapshot {snapshot_id[:12]} already has a different profile for "
                    f"slice {slice!r}",
                    hint="profiles are immutable references for drift; compute them "
                    "deterministically, or make a new snapshot",
                )

        self._write(write, retry_on=("pk_profiles",))

    def find_profile(self, snapshot_id: str, slice: str = "") -> dict[str, Any] | None:
        """The profile of a snapshot (``slice=""``) or of one of its slices; None when none is
        stored (one read: for callers that expect most to be missing)."""
        with self._read() as session:
            row = session.get(Profile, (snapshot_id, slice))
            return None if row is None else dict(row.payload)

    def get_profile(self, snapshot_id: str, slice: str = "") -> dict[str, Any]:
        """The profile of a snapshot (``slice=""``) or of one of its slices."""
        with self._read() as session:
            row = session.get(Profile, (snapshot_id, slice))
            if row is not None:
                return dict(row.payload)
            if session.get(Snapshot, snapshot_id) is None:
                raise NotFound("snapshot", snapshot_id, hint="pass a full snapshot id")
            stored = session.scalars(
                sa.select(Profile.slice).where(Profile.snapshot_id == snapshot_id)
            )
            listed = ", ".join(repr(s) for s in sorted(stored))
            raise NotFound(
                "profile slice",
                slice,
                hint=f"snapshot {snapshot_id[:12]} has profiles for {listed}",
            )


def _column_specs(spec: Mapping[str, Any], names: Sequence[str]) -> list[Mapping[str, Any]]:
    """The column entries of a stored schema spec (regrow's list form, or a name → dtype map)."""
    columns = spec.get("columns")
    if isinstance(columns, Mapping):
        return [{"name": n, "dtype": d} for n, d in columns.items()]
    if isinstance(columns, list):
        return [c for c in columns if isinstance(c, Mapping)]
    return [{"name": n} for n in names]


def _column_summary(spec: Mapping[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """One column of :meth:`DatasetsMixin.describe_snapshot`: schema and profile side by side."""
    summary = {
        "name": spec.get("name"),
        "dtype": spec.get("dtype"),
        "nullable": spec.get("nullable", True),
        "nulls": stats.get("nulls"),
        "null_rate": stats.get("null_rate"),
    }
    if "top" in stats:
        summary["distinct"] = stats.get("distinct")
        summary["top"] = list(stats["top"][:_TOP_SHOWN])
    else:
        summary["min"], summary["max"] = stats.get("min"), stats.get("max")
        if "mean" in stats:
            summary["mean"] = stats["mean"]
    return summary
