"""Where members' outputs on snapshot rows are stored: ``catalog.outputs``, a cache.

A command that predicts a member on rows of a snapshot (the monitor, the probes, an
evaluation) stores the outputs as one artifact (a table keyed by row content, see
:mod:`regrow.components.outputs`) and records it here under the member's output key and the
snapshot. A later command on the same rows reads them back instead of predicting again: the
run of a plan fits the stack on the members' outputs the plan already computed. These rows
are a cache, not a record: no audit event, and a table lost from the store only means its
rows are predicted again. ``regrow doctor`` leaves the tables listed here alone.

=============  ================================================================
``add``        record a stored table (idempotent)
``find``       the tables of some output keys on some snapshots
``artifacts``  every artifact key listed (what ``regrow doctor`` keeps)
``holds``      whether an artifact is listed
=============  ================================================================

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> schema = catalog.register_schema("w", {"columns": {}})
>>> snap = catalog.add_snapshot(id="s" * 64, name="w", schema_id=schema.id, rows=3, columns=(),
...     column_hashes={}, artifact="a" * 64, time_column=None, slices={}, profile={})
>>> catalog.outputs.add(key="k" * 64, snapshot_id=snap.id, artifact="b" * 64, rows=3)
>>> catalog.outputs.find(["k" * 64], [snap.id]) == {"k" * 64: ["b" * 64]}
True
>>> catalog.close()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import checks
from regrow.catalog.core import now
from regrow.catalog.models import MemberOutput, Snapshot
from regrow.errors import NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["Outputs"]


class Outputs:
    """Stored tables of members' outputs (see the module docs), as ``catalog.outputs``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def add(self, *, key: str, snapshot_id: str, artifact: str, rows: int) -> None:
        """Record that ``artifact`` holds ``rows`` outputs of ``key`` on ``snapshot_id``."""
        checks.text("key", key)
        checks.text("artifact", artifact)

        def write(session: Session) -> None:
            if session.get(Snapshot, snapshot_id) is None:
                raise NotFound("snapshot", snapshot_id, hint="store the snapshot first")
            if session.get(MemberOutput, (key, snapshot_id, artifact)) is None:
                session.add(
                    MemberOutput(
                        key=key,
                        snapshot_id=snapshot_id,
                        artifact=artifact,
                        rows=int(rows),
                        created_at=now(),
                    )
                )

        self._catalog._write(write, retry_on=("pk_member_outputs",))

    def find(self, keys: Iterable[str], snapshot_ids: Iterable[str]) -> dict[str, list[str]]:
        """Output key -> the artifacts of its tables on any of ``snapshot_ids``, oldest first."""
        keys, snaps = list(dict.fromkeys(keys)), list(dict.fromkeys(snapshot_ids))
        if not keys or not snaps:
            return {}
        c = MemberOutput.__table__.c
        query = (
            sa.select(c.key, c.artifact)
            .where(self._catalog._id_in(MemberOutput.key, keys))
            .where(self._catalog._id_in(MemberOutput.snapshot_id, snaps))
            .order_by(c.created_at, c.artifact)
        )
        found: dict[str, list[str]] = {}
        with self._catalog._read() as session:
            for row in session.execute(query):
                found.setdefault(row.key, []).append(row.artifact)
        return found

    def artifacts(self) -> set[str]:
        """Every artifact a stored table is in."""
        with self._catalog._read() as session:
            return set(session.scalars(sa.select(MemberOutput.artifact).distinct()))

    def holds(self, artifact: str) -> bool:
        """Whether ``artifact`` is listed as a stored table."""
        query = sa.select(MemberOutput.key).where(MemberOutput.artifact == artifact).limit(1)
        with self._catalog._read() as session:
            return session.execute(query).first() is not None
