"""Component versions in the catalog: immutable fitted components keyed by fingerprint."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow._hashing import sha256_hex
from regrow.catalog import audit, checks
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import Component, ComponentVersion
from regrow.catalog.records import ComponentVersionRecord
from regrow.catalog.refs import check_name
from regrow.catalog.rows import component_version_record
from regrow.errors import VersionNotFound

__all__ = ["ComponentsMixin", "component_version_id"]

_IN_CHUNK = 5000  # ids per IN (...) query; well under SQLite's and PostgreSQL's bind limits


def component_version_id(system: str, component: str, fingerprint: str) -> str:
    """The deterministic id of a component version: 32 hex of sha256(system/component/fp).

    >>> component_version_id("churn", "scaler", "ab" * 32)
    'ae756e6099a99a06bf69504567e3c1d1'
    """
    return sha256_hex(f"{system}/{component}/{fingerprint}".encode())[:32]


class ComponentsMixin(CatalogCore):
    """Catalog methods for component versions."""

    def add_component_version(
        self,
        *,
        system: str,
        component: str,
        kind: str,
        fingerprint: str,
        parts: Mapping[str, Any],
        artifact: str | None,
        run_id: str | None,
        snapshot_id: str | None,
        seed: int,
        train_seconds: float,
        info: Mapping[str, Any] | None = None,
    ) -> ComponentVersionRecord:
        """Record a fitted component; its id is :func:`component_version_id`.

        If that fingerprint is already stored (say two runs trained it at once), the existing
        record is returned: one writer wins, the others reuse it, and nothing is duplicated.
        """
        check_name("system", system)
        values: dict[str, Any] = {
            "id": component_version_id(system, component, fingerprint),
            "system": system,
            "component": checks.text("component", component),
            "kind": checks.text("kind", kind, max_length=32),
            "fingerprint": checks.identifier("fingerprint", fingerprint),
            "parts": audit.normalize(checks.mapping("parts", parts)),
            "artifact": None if artifact is None else checks.text("artifact", artifact),
            "run_id": run_id,
            "snapshot_id": snapshot_id,
            "seed": checks.integer("seed", seed),
            "train_seconds": checks.number("train_seconds", train_seconds),
            "info": audit.normalize(checks.mapping("info", info or {})),
        }
        with self._read() as session:
            row = session.get(ComponentVersion, values["id"])
            if row is not None:
                return component_version_record(row)

        def write(session: Session) -> ComponentVersionRecord:
            self._check_refs(session, run_id=run_id, snapshot_id=snapshot_id)
            stamp = now()
            session.execute(
                self._insert(Component)
                .values(system=system, name=component, kind=kind, created_at=stamp)
                .on_conflict_do_nothing()
            )
            inserted = session.execute(
                self._insert(ComponentVersion)
                .values(**values, created_at=stamp)
                .on_conflict_do_nothing()
                .returning(ComponentVersion.id)
            ).first()
            if inserted is not None:  # not when another writer stored it first
                audit.append(
                    session,
                    actor=self._who(None),
                    action="component.create",
                    subject=f"component-version:{values['id']}",
                    rows=[("component_versions", values["id"])],
                    payload={
                        "system": system,
                        "component": component,
                        "fingerprint": fingerprint,
                        "run_id": run_id,
                    },
                )
            return component_version_record(session.get_one(ComponentVersion, values["id"]))

        return self._write(write)

    def find_component_versions(
        self, system: str, fingerprints: Mapping[str, str]
    ) -> dict[str, ComponentVersionRecord]:
        """The stored versions among ``{component: fingerprint}``, keyed by component name.

        Components whose fingerprint has no stored version are left out. One indexed query.
        """
        wanted = {component_version_id(system, c, fp): c for c, fp in fingerprints.items()}
        found = self._component_versions_by_id(wanted)
        return {wanted[cid]: record for cid, record in found.items()}

    def get_component_version(self, id: str) -> ComponentVersionRecord:
        """The component version with this id; :class:`~regrow.errors.VersionNotFound` if none."""
        return self.get_component_versions([id])[id]

    def get_component_versions(self, ids: Iterable[str]) -> dict[str, ComponentVersionRecord]:
        """The component versions with these ids (one query), keyed by id.

        Raises :class:`~regrow.errors.VersionNotFound` naming the first id that is not stored.
        """
        wanted = list(dict.fromkeys(ids))
        found = self._component_versions_by_id(wanted)
        for cid in wanted:
            if cid not in found:
                raise VersionNotFound(
                    cid,
                    hint="component version ids come from add_component_version() or a manifest",
                )
        return found

    def component_history(self, system: str, component: str) -> list[ComponentVersionRecord]:
        """Every stored version of one component of a system, newest first."""
        # Plain rows, not ORM entities (as by id): a plan reads every component's history
        # to learn its costs, and entities cost more than the query.
        table = ComponentVersion.__table__
        query = (
            sa.select(table)
            .where(table.c.system == system, table.c.component == component)
            .order_by(table.c.created_at.desc(), table.c.id)
        )
        with self._read() as session:
            return [component_version_record(row) for row in session.execute(query)]

    def _component_versions_by_id(self, ids: Iterable[str]) -> dict[str, ComponentVersionRecord]:
        wanted = list(ids)
        found: dict[str, ComponentVersionRecord] = {}
        with self._read() as session:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                # Plain rows, not ORM entities: building 1,000 entities costs more than the query.
                table = ComponentVersion.__table__
                query = sa.select(table).where(self._id_in(ComponentVersion.id, chunk))
                found.update(
                    (row.id, component_version_record(row)) for row in session.execute(query)
                )
        return found
