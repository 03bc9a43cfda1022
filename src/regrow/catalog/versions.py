"""System versions in the catalog: numbered manifests of component versions, and lineage."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import ComponentVersion, SystemVersion
from regrow.catalog.records import SystemVersionRecord
from regrow.catalog.refs import check_name
from regrow.catalog.rows import system_version_record
from regrow.errors import CatalogError, ConfigError, NotFound, VersionNotFound

__all__ = ["VersionsMixin", "same_spec"]


def same_spec(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two system specs describe the same system: where its file lives does not count.

    >>> same_spec({"name": "s", "definition_file": "/a.py"}, {"name": "s", "definition_file": None})
    True
    """
    return {k: v for k, v in a.items() if k != "definition_file"} == {
        k: v for k, v in b.items() if k != "definition_file"
    }


class VersionsMixin(CatalogCore):
    """Catalog methods for system versions and their lineage."""

    def add_system_version(
        self,
        *,
        system: str,
        manifest: Mapping[str, str],
        spec: Mapping[str, Any],
        parent_id: str | None,
        run_id: str | None,
        snapshot_id: str | None,
        note: str = "",
        actor: str | None = None,
        reuse_identical: bool = False,
    ) -> SystemVersionRecord:
        """Record a new version of ``system``: number = the system's highest number + 1.

        Every manifest entry must name a stored component version of that component of
        ``system``, and the parent must be a version of ``system``; otherwise it raises and
        writes nothing. Audit event ``version.create``.

        With ``reuse_identical``, an existing version of ``system`` with the same manifest and
        spec (:func:`same_spec`: where the system was defined does not count) is returned
        instead (its ``run_id`` tells it apart), checked in the same
        transaction as the insert: two runs that finish at once with the same result make one
        version. On PostgreSQL the check holds a transaction-scoped advisory lock on the
        system; SQLite serialises writers already.
        """
        check_name("system", system)
        entries = checks.mapping("manifest", manifest)
        if not entries:
            raise ConfigError("'manifest' must name at least one component version (got {})")
        for component, cid in entries.items():
            checks.identifier(f"manifest[{component!r}]", cid)
        data = audit.normalize(checks.mapping("spec", spec))
        note = checks.text("note", note, max_length=100_000, empty=True)
        who = self._who(actor)

        def write(session: Session) -> SystemVersionRecord:
            if reuse_identical:
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(
                        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                        {"key": f"regrow.version:{system}"},
                    )
                same = session.scalars(
                    sa.select(SystemVersion)
                    .where(SystemVersion.system == system)
                    .order_by(SystemVersion.number.desc())
                )
                for existing in same:
                    if existing.manifest == entries and same_spec(existing.spec, data):
                        return system_version_record(existing)
            self._check_refs(session, run_id=run_id, snapshot_id=snapshot_id)
            if parent_id is not None:
                parent = lookup.version_by_id(session, parent_id)
                if parent.system != system:
                    raise CatalogError(
                        f"parent {parent.system}:v{parent.number} is a version of "
                        f"{parent.system!r}, not {system!r}",
                        hint="a version's parent must be a version of the same system",
                    )
            self._check_manifest(session, system, entries)
            latest = session.scalar(
                sa.select(sa.func.max(SystemVersion.number)).where(SystemVersion.system == system)
            )
            row = SystemVersion(
                id=uuid.uuid4().hex,
                system=system,
                number=(latest or 0) + 1,
                parent_id=parent_id,
                manifest=entries,
                spec=data,
                run_id=run_id,
                snapshot_id=snapshot_id,
                note=note,
                created_at=now(),
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="version.create",
                subject=f"version:{system}:v{row.number}",
                rows=[("system_versions", row.id)],
                payload={
                    "id": row.id,
                    "parent_id": parent_id,
                    "run_id": run_id,
                    "snapshot_id": snapshot_id,
                    "components": len(entries),
                    "note": note,
                },
            )
            return system_version_record(row)

        return self._write(write, retry_on=("uq_system_versions_system_number",))

    def get_system_version(self, ref: str) -> SystemVersionRecord:
        """The system version ``ref`` names.

        Forms: ``"churn:v3"``, ``"churn:3"``, ``"churn@champion"``, ``"churn"`` (its newest
        version), or a version id or unique id prefix of >= 6 characters. Unknown references
        raise :class:`~regrow.errors.VersionNotFound` with a hint listing what exists.
        """
        with self._read() as session:
            return system_version_record(lookup.system_version(session, ref))

    def list_system_versions(self, system: str | None = None) -> list[SystemVersionRecord]:
        """Every version (of ``system``, if given), newest first."""
        query = sa.select(SystemVersion)
        if system is None:
            query = query.order_by(SystemVersion.created_at.desc(), SystemVersion.id)
        else:
            query = query.where(SystemVersion.system == system).order_by(
                SystemVersion.number.desc()
            )
        with self._read() as session:
            return [system_version_record(row) for row in session.scalars(query)]

    def list_systems(self) -> list[str]:
        """The names of every system with a version or a component, sorted."""
        with self._read() as session:
            return lookup.known_systems(session)

    def unknown_system(self, system: str) -> NotFound:
        """The error for ``system`` when it has no version, its hint naming what exists (a
        close name, or that its first training did not finish)."""
        with self._read() as session:
            return NotFound("system", system, hint=lookup.system_hint(session, system))

    def lineage(self, version_id: str, depth: int | None = None) -> list[SystemVersionRecord]:
        """The version and its chain of parents, newest first.

        ``depth`` limits how many parents are followed (``0``: the version alone; ``None``:
        back to the first version). One recursive query over the primary key.
        """
        if depth is not None and (checks.integer("depth", depth) < 0):
            raise ConfigError(f"'depth' must be >= 0 or None (got {depth!r})")
        sv = SystemVersion
        chain = (
            sa.select(sv.id, sv.parent_id, sa.literal(0).label("depth"))
            .where(sv.id == version_id)
            .cte("chain", recursive=True)
        )
        step = sa.select(sv.id, sv.parent_id, (chain.c.depth + 1).label("depth")).join(
            chain, sv.id == chain.c.parent_id
        )
        if depth is not None:
            step = step.where(chain.c.depth < depth)
        chain = chain.union_all(step)
        query = sa.select(sv).join(chain, sv.id == chain.c.id).order_by(chain.c.depth)
        with self._read() as session:
            rows = session.scalars(query).all()
            if not rows:
                lookup.version_by_id(session, version_id)  # raises VersionNotFound
            return [system_version_record(row) for row in rows]

    def _check_manifest(self, session: Session, system: str, entries: Mapping[str, str]) -> None:
        ids = list(set(entries.values()))
        stored = {
            row.id: row
            for row in session.scalars(
                sa.select(ComponentVersion).where(self._id_in(ComponentVersion.id, ids))
            )
        }
        for component, cid in sorted(entries.items()):
            row = stored.get(cid)
            if row is None:
                raise VersionNotFound(
                    cid,
                    hint=f"manifest entry {component!r} names no stored component version; "
                    "record it with add_component_version() first",
                )
            if (row.system, row.component) != (system, component):
                raise CatalogError(
                    f"manifest entry {component!r} of system {system!r} names {cid}, a version of "
                    f"component {row.component!r} of system {row.system!r}",
                    hint="each entry must map a component to one of its own versions",
                )
