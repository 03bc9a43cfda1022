"""The prediction log's index and the labels sent back for served rows: ``catalog.predictions``.

A server logs what it predicted in Parquet files in the artifact store, one per system and
hour per flush (see :mod:`regrow.serve.predlog`), and indexes each file here: its system, hour,
rows, first and last prediction time, and rows per system version. Labels arrive later (or
earlier: before the prediction is flushed) by the request's id and the row's number in it; a
later label for the same row replaces the earlier one. :mod:`regrow.logged` joins the two
into a window that monitoring, planning and evaluation take like any snapshot.

=================  ================================================================
``add_file``       index a logged file (idempotent: the key is its content hash)
``files``          the files of a system whose rows overlap a time range, oldest first
``span``           the first and last prediction time of a system's log, rows, files
``add_feedback``   upsert labels; one audit event ``feedback.add`` per call
``labels``         the labels of some request ids: ``(request_id, row) -> label``
``artifacts``      every logged file's key (what ``regrow doctor`` keeps)
``holds``          whether an artifact is a logged file
=================  ================================================================

Neither table is covered row by row by the audit chain (:mod:`regrow.catalog.coverage`):
logged files are serving data written at request rates, and feedback is audited per call
(count and a digest of the labels), not per label.

>>> from datetime import datetime, UTC
>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> at = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
>>> _ = catalog.predictions.add_file(system="churn", hour=at.replace(minute=0), artifact="a" * 64,
...     rows=3, first_at=at, last_at=at, versions={"churn:v1": 3})
>>> [f.rows for f in catalog.predictions.files("churn", since=at)]
[3]
>>> catalog.close()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow._hashing import hash_json
from regrow.catalog import audit, checks
from regrow.catalog.core import now
from regrow.catalog.models import PredictionFeedback, PredictionFile, SystemVersion, UTCDateTime
from regrow.catalog.records import PredictionFileRecord
from regrow.errors import DataError, NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["LABEL_TYPES", "Predictions"]

#: The JSON values a label may be: a class or a number (never null, a list or an object).
LABEL_TYPES = (bool, int, float, str)
_HOUR = timedelta(hours=1)
_CHUNK = 5000  # request ids per lookup on SQLite (its statements take at most 32,766 values)


class Predictions:
    """The prediction log's index and feedback labels (see the module docs), as
    ``catalog.predictions``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    # -- logged files -----------------------------------------------------------------------

    def add_file(
        self,
        *,
        system: str,
        hour: datetime,
        artifact: str,
        rows: int,
        first_at: datetime,
        last_at: datetime,
        versions: Mapping[str, int],
    ) -> PredictionFileRecord:
        """Index a logged file; indexing the same ``artifact`` again returns the first record."""
        checks.text("system", system)
        checks.identifier("artifact", artifact)
        counts = {checks.text("version", v): checks.integer("rows", n) for v, n in versions.items()}

        def write(session: Session) -> PredictionFileRecord:
            row = session.get(PredictionFile, artifact)
            if row is None:
                row = PredictionFile(
                    artifact=artifact,
                    system=system,
                    hour=hour,
                    rows=checks.integer("rows", rows),
                    first_at=first_at,
                    last_at=last_at,
                    versions=counts,
                    created_at=now(),
                )
                session.add(row)
                session.flush()
            return _file_record(row)

        return self._catalog._write(write, retry_on=("pk_prediction_files",))

    def files(
        self, system: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[PredictionFileRecord]:
        """The files of ``system`` holding rows served in ``[since, until)``, oldest first."""
        c = PredictionFile.__table__.c
        query = sa.select(PredictionFile).where(c.system == system)
        if since is not None:  # the hour narrows the index scan; first/last decide
            query = query.where(c.hour > since - _HOUR, c.last_at >= since)
        if until is not None:
            query = query.where(c.hour < until, c.first_at < until)
        query = query.order_by(c.first_at, c.artifact)
        with self._catalog._read() as session:
            return [_file_record(row) for row in session.scalars(query)]

    def span(self, system: str) -> tuple[datetime, datetime, int, int] | None:
        """The first and last prediction time logged for ``system``, its rows and files
        (None when nothing is logged)."""
        c = PredictionFile.__table__.c
        query = sa.select(
            sa.func.min(c.first_at, type_=UTCDateTime()),
            sa.func.max(c.last_at, type_=UTCDateTime()),
            sa.func.sum(c.rows),
            sa.func.count(),
        ).where(c.system == system)
        with self._catalog._read() as session:
            first, last, rows, files = session.execute(query).one()
        return None if not files else (first, last, int(rows), int(files))

    def artifacts(self) -> set[str]:
        """Every logged file's key."""
        with self._catalog._read() as session:
            return set(session.scalars(sa.select(PredictionFile.artifact)))

    def holds(self, artifact: str) -> bool:
        """Whether ``artifact`` is an indexed logged file."""
        query = sa.select(PredictionFile.artifact).where(PredictionFile.artifact == artifact)
        with self._catalog._read() as session:
            return session.execute(query.limit(1)).first() is not None

    # -- feedback ---------------------------------------------------------------------------

    def add_feedback(
        self,
        system: str,
        items: Iterable[tuple[str, int, Any]],
        *,
        actor: str | None = None,
    ) -> int:
        """Store labels ``(request_id, row, label)`` of served rows of ``system``; return how
        many were received.

        A label for a row that has one replaces it (also within one call: the last wins).
        Labels may come before the prediction is in the log. One audit event
        ``feedback.add`` records the call: the count and a digest of the labels. A system
        with no version raises :class:`~regrow.errors.NotFound`; a malformed item raises
        :class:`~regrow.errors.DataError` naming it, and nothing is stored.
        """
        checks.text("system", system)
        who = self._catalog._who(actor)
        labels: dict[tuple[str, int], Any] = {}
        for n, item in enumerate(items):
            request_id, row, label = _item(n, item)
            labels[(request_id, row)] = label
        if not labels:
            return 0
        received = now()
        values = [
            {"system": system, "request_id": r, "row": n, "label": label,
             "received_at": received, "actor": who}
            for (r, n), label in labels.items()
        ]  # fmt: skip
        digest = hash_json([[r, n, label] for (r, n), label in sorted(labels.items())])

        def write(session: Session) -> int:
            known = sa.select(SystemVersion.id).where(SystemVersion.system == system).limit(1)
            if session.execute(known).first() is None:
                raise NotFound(
                    "system",
                    system,
                    hint="send labels for a system that has a version: list them with "
                    "`regrow versions`",
                )
            insert = self._catalog._insert(PredictionFeedback)
            upsert = insert.on_conflict_do_update(
                index_elements=["system", "request_id", "row"],
                set_={
                    "label": insert.excluded.label,
                    "received_at": insert.excluded.received_at,
                    "actor": insert.excluded.actor,
                },
            )
            for start in range(0, len(values), _CHUNK):
                session.execute(upsert, values[start : start + _CHUNK])
            audit.append(
                session,
                actor=who,
                action="feedback.add",
                subject=f"feedback:{system}",
                payload={"system": system, "labels": len(values), "digest": digest},
            )
            return len(values)

        return self._catalog._write(write)

    def labels(self, system: str, request_ids: Iterable[str]) -> dict[tuple[str, int], Any]:
        """The labels of ``system``'s rows served to ``request_ids``: ``(id, row) -> label``."""
        ids = list(dict.fromkeys(request_ids))
        found: dict[tuple[str, int], Any] = {}
        c = PredictionFeedback.__table__.c
        step = max(len(ids), 1) if self._catalog.dialect == "postgresql" else _CHUNK
        with self._catalog._read() as session:
            for start in range(0, len(ids), step):
                chunk = ids[start : start + step]
                query = sa.select(c.request_id, c.row, c.label).where(
                    c.system == system,
                    self._catalog._id_in(PredictionFeedback.request_id, chunk),
                )
                for row in session.execute(query):
                    found[(row.request_id, row.row)] = row.label
        return found


def _item(n: int, item: Any) -> tuple[str, int, Any]:
    """One ``(request_id, row, label)`` checked, numpy scalars made plain."""
    if isinstance(item, str | bytes) or not isinstance(item, tuple | list) or len(item) != 3:
        raise DataError(
            f"label #{n} is {item!r:.80}, not a (request_id, row, label) triple",
            hint="pass triples such as ('r1', 0, 1)",
        )
    request_id, row, label = (_plain(v) for v in item)
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 255:
        raise DataError(
            f"label #{n} has request id {request_id!r:.80}",
            hint="a request id is the non-empty string (at most 255 characters) the server "
            "answered with",
        )
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < 2**31:
        raise DataError(
            f"label #{n} (request {request_id!r}) has row {row!r:.40}",
            hint="a row is the 0-based number of the row in its request (default 0)",
        )
    bad = label is None or not isinstance(label, LABEL_TYPES)
    if not bad and isinstance(label, float) and not math.isfinite(label):
        bad = True
    if bad or (isinstance(label, str) and len(label) > 10_000):
        raise DataError(
            f"label #{n} (request {request_id!r}, row {row}) is {label!r:.80}",
            hint="a label is a class or a number: a JSON string, number or boolean",
        )
    return request_id, row, label


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else as it is."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _file_record(row: PredictionFile) -> PredictionFileRecord:
    return PredictionFileRecord(
        artifact=row.artifact,
        system=row.system,
        hour=row.hour,
        rows=row.rows,
        first_at=row.first_at,
        last_at=row.last_at,
        versions={str(k): int(v) for k, v in row.versions.items()},
        created_at=row.created_at,
    )
