"""The tamper-evident audit log: a hash chain over the ``audit_events`` table.

Event ``n`` stores ``hash = sha256(prev_hash + canonical_json(fields))`` where ``prev_hash`` is
the hash of event ``n - 1`` (64 zeros for the first event) and ``fields`` are its seq, time
(ISO 8601), actor, action, subject and payload. Editing or deleting any event breaks the chain
from that event on, which :func:`verify` reports.

The chain also covers the rows the events record. An event that records a write carries, in
its payload under ``"covers"``, ``{"table", "key", "hash"}`` for each row written (the tables
and the hashed form are in :mod:`regrow.catalog.coverage`; ``"hash": null`` records a
deletion). :func:`verify` then checks every covered table in one ordered pass each: every row
must hash to what its newest covering event says, and every row an event covers must still
exist. So an altered, deleted, inserted or swapped row is reported, naming the table, the row
and the event, even though no event was touched. Catalogs written before rows were covered get
one ``audit.baseline`` event covering their rows when first opened (:func:`baseline`).

Appending reads and updates the single ``audit_head`` row inside the caller's write
transaction. On PostgreSQL the row is locked (``SELECT ... FOR UPDATE``); on SQLite the write
transaction already holds the database's write lock (``BEGIN IMMEDIATE``). Either way two
writers can never both extend the chain from the same head.

>>> event_hash(GENESIS_HASH, seq=1, at=datetime(2024, 1, 1, tzinfo=UTC), actor="ana",
...            action="alias.move", subject="alias:churn@champion", payload={})[:16]
'07c20cc6cabf99df'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow._hashing import canonical_json, sha256_hex
from regrow.catalog import checks, coverage
from regrow.catalog.core import ROWS_COVERED_SINCE, CatalogCore
from regrow.catalog.models import AuditEvent, AuditHead
from regrow.catalog.records import AuditEventRecord
from regrow.errors import AuditChainBroken, CatalogError

__all__ = [
    "BASELINE_SUBJECT",
    "COVERS",
    "GENESIS_HASH",
    "AuditMixin",
    "append",
    "baseline",
    "event_hash",
    "normalize",
    "to_record",
    "verify",
]

GENESIS_HASH = "0" * 64
COVERS = "covers"  # the payload key listing the rows an event covers
BASELINE_SUBJECT = "audit:baseline"

# Appending runs inside most writes: its statements are built once.
_EVENTS = cast(sa.Table, AuditEvent.__table__)
_HEADS = cast(sa.Table, AuditHead.__table__)
_HEAD = sa.select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.id == 1).with_for_update()
_INSERT_EVENT = sa.insert(_EVENTS)
_SET_HEAD = sa.update(_HEADS).where(_HEADS.c.id == 1)
_BATCH = 1000


class AuditMixin(CatalogCore):
    """Catalog methods for the audit log."""

    def audit(
        self, action: str, subject: str, payload: Mapping[str, Any], *, actor: str | None = None
    ) -> AuditEventRecord:
        """Append an event to the audit log (e.g. an approval) and return it."""
        action = checks.text("action", action, max_length=64)
        subject = checks.text("subject", subject)
        data = checks.mapping("payload", payload)
        who = self._who(actor)
        return self._write(
            lambda session: append(session, actor=who, action=action, subject=subject, payload=data)
        )

    def audit_events(
        self, *, subject: str | None = None, limit: int = 100
    ) -> list[AuditEventRecord]:
        """The latest ``limit`` audit events (about ``subject``, if given), newest first."""
        query = (
            sa.select(AuditEvent)
            .order_by(AuditEvent.seq.desc())
            .limit(checks.integer("limit", limit))
        )
        if subject is not None:
            query = query.where(AuditEvent.subject == subject)
        with self._read() as session:
            return [to_record(row) for row in session.scalars(query)]

    def verify_audit(self) -> int:
        """Check the audit log's hash chain and every row it covers; return the number of
        events verified.

        Raises :class:`~regrow.errors.AuditChainBroken` naming the first event that fails, or
        else the first covered row (table, key, and the event that recorded it) that was
        altered, deleted, inserted or swapped outside regrow.
        """
        with self._read() as session:
            return verify(session)


def normalize(value: Any) -> Any:
    """``value`` as plain JSON types, exactly as it will read back from the database."""
    return json.loads(canonical_json(value))


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    payload: Any,
) -> str:
    """The chain hash of one event (see the module docstring)."""
    content = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
    }
    return sha256_hex((prev_hash + coverage.fast_canonical_json(content)).encode())


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    payload: Any,
    rows: Iterable[tuple[str, Any] | tuple[str, Any, None]] = (),
) -> AuditEventRecord:
    """Append one event inside the caller's write transaction and return it.

    ``rows`` names the rows this event records, as ``(table, primary_key)`` pairs (a scalar
    key, or a tuple in the table's primary-key column order): each is read back as written
    in this transaction and its hash (:func:`regrow.catalog.coverage.row_hash`) goes into the
    payload under ``"covers"``, so the chain covers the row. ``(table, key, None)`` records
    that the row was deleted. A table that is not covered, or a row that does not exist (or
    still exists, for a deletion), raises :class:`ValueError`: that is a programming error.

    Call it last in the transaction, after every other write: the head row stays locked
    (on PostgreSQL) from here to the commit, so the lock is held as briefly as possible.
    """
    session.flush()  # the caller's pending writes go first
    conn = session.connection()
    data = normalize(payload)
    entries = [_cover_entry(conn, entry) for entry in rows]
    if entries:
        if not isinstance(data, dict) or COVERS in data:
            raise ValueError(
                f"audit payload of {action!r} must be a mapping without a {COVERS!r} key "
                "when rows are covered"
            )
        data[COVERS] = entries
    head = conn.execute(_HEAD).one_or_none()
    if head is None:
        raise CatalogError(
            "the catalog has no audit_head row",
            hint="the schema was not created by regrow's migrations; open the catalog with "
            "upgrade=True on an empty database",
        )
    at = datetime.now(UTC)
    seq = head.seq + 1
    digest = event_hash(
        head.hash, seq=seq, at=at, actor=actor, action=action, subject=subject, payload=data
    )
    event = AuditEventRecord(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        payload=data,
        prev_hash=head.hash,
        hash=digest,
    )
    conn.execute(_INSERT_EVENT, {f.name: getattr(event, f.name) for f in fields(event)})
    conn.execute(_SET_HEAD, {"seq": seq, "hash": digest})
    return event


def _cover_entry(conn: sa.Connection, entry: tuple[Any, ...]) -> dict[str, Any]:
    """The ``covers`` entry of one ``(table, key)`` (or ``(table, key, None)``) pair."""
    if len(entry) == 3 and entry[2] is None:
        table, key, deleted = entry[0], entry[1], True
    elif len(entry) == 2:
        table, key, deleted = entry[0], entry[1], False
    else:
        raise ValueError(f"a covered row is (table, key) or (table, key, None), not {entry!r}")
    cover = coverage.coverage(table)
    values = tuple(key) if isinstance(key, tuple | list) else (key,)
    if len(values) != len(cover.key):
        raise ValueError(f"{table} keys are ({', '.join(cover.key)}), got {key!r}")
    where = [cover.table.c[c] == v for c, v in zip(cover.key, values, strict=True)]
    row = conn.execute(cover.select().where(*where)).mappings().one_or_none()
    stored = normalize(values[0] if len(values) == 1 else list(values))
    if deleted:
        if row is not None:
            raise ValueError(f"{table} row {key!r} is recorded as deleted but still exists")
        return {"table": table, "key": stored, "hash": None}
    if row is None:
        raise ValueError(f"{table} row {key!r} does not exist: nothing to cover")
    return {"table": table, "key": stored, "hash": coverage.row_hash(table, stored, row)}


def verify(session: Session) -> int:
    """Check the whole chain, and every covered row against it; return the number of events.

    Raises :class:`~regrow.errors.AuditChainBroken` naming the first event that does not
    verify (a changed field, a missing or reordered event, a head that does not match), else
    the first covered row that does not match its newest covering event: altered, deleted,
    inserted without an event, or swapped with another. On PostgreSQL a session on an engine
    that has not started its transaction reads one REPEATABLE READ snapshot, so writes
    committed meanwhile cannot look like tampering (SQLite's read transaction is one snapshot).
    """
    bind = session.get_bind()
    pg = isinstance(bind, sa.Engine) and bind.dialect.name == "postgresql"
    if pg and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    conn = session.connection()
    # The head first: under READ COMMITTED (PostgreSQL) events appended after this read are
    # simply not checked, instead of looking like a head that disagrees with the events.
    head = conn.execute(sa.select(_HEADS.c.seq, _HEADS.c.hash)).one_or_none()
    if head is None:
        _broken(1, "cannot be checked: the audit_head row is missing")
    query = (
        sa.select(_EVENTS).where(_EVENTS.c.seq <= head.seq).order_by(_EVENTS.c.seq)
    ).execution_options(yield_per=_BATCH)
    ledger = coverage.Ledger()
    prev_hash, expected_seq = GENESIS_HASH, 1
    with conn.execute(query) as rows:  # closes the (server-side) cursor on a failure too
        for row in rows:
            prev_hash, expected_seq = _check(row, prev_hash, expected_seq)
            covers = row.payload.get(COVERS) if isinstance(row.payload, dict) else None
            if covers is not None and (bad := ledger.record(row.seq, row.action, covers)):
                _broken(row.seq, bad)
    count = expected_seq - 1
    if head.seq != count:
        _broken(count + 1, "is missing (the chain's head is at a later seq)")
    if head.hash != prev_hash:
        _broken(count, "was altered (the chain's head holds another hash)")
    problem, found = ledger.check(conn, _BATCH)
    if problem is not None:
        more = f" ({found - 1} more problem{'s' * (found > 2)} after it)" if found > 1 else ""
        raise AuditChainBroken(
            f"{problem}{more}",
            hint="a covered row was changed outside regrow; keep the database for "
            "investigation and restore the catalog from a backup",
        )
    return count


def baseline(session: Session, *, actor: str = "regrow") -> AuditEventRecord | None:
    """Cover every existing row with one ``audit.baseline`` event, once per catalog and
    :data:`~regrow.catalog.core.ROWS_COVERED_SINCE`.

    For catalogs written before the chain covered rows as it does now (an older schema
    revision): their rows have no covering event, or hash differently. Returns None (writing
    nothing) when that baseline exists already or no covered table holds a row. Run it in a
    write transaction: the head row is locked (on PostgreSQL; SQLite serializes writers)
    before looking for a baseline, so two processes opening the catalog at once write one.
    """
    conn = session.connection()
    conn.execute(_HEAD).one_or_none()  # lock the head first: concurrent baseliners queue here
    earlier = conn.execute(
        sa.select(_EVENTS.c.payload).where(_EVENTS.c.subject == BASELINE_SUBJECT)
    ).scalars()
    done = any(isinstance(p, dict) and p.get("since") == ROWS_COVERED_SINCE for p in earlier)
    if done or not coverage.any_rows(conn):
        return None
    rows = coverage.entries(conn, _BATCH)
    tables = {name: sum(e["table"] == name for e in rows) for name in coverage.COVERED}
    return append(
        session,
        actor=actor,
        action="audit.baseline",
        subject=BASELINE_SUBJECT,
        payload={
            "since": ROWS_COVERED_SINCE,
            "rows": {t: n for t, n in tables.items() if n},
            COVERS: rows,
        },
    )


def to_record(event: AuditEvent) -> AuditEventRecord:
    """The immutable record of an ORM audit event."""
    return AuditEventRecord(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        payload=dict(event.payload),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def _check(row: Any, prev_hash: str, expected_seq: int) -> tuple[str, int]:
    """Check one event against its predecessor; return its hash and the next expected seq."""
    if row.seq != expected_seq:
        _broken(expected_seq, "is missing")
    if row.prev_hash != prev_hash:
        _broken(row.seq, "does not follow the event before it (prev_hash differs)")
    digest = event_hash(
        row.prev_hash,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        payload=row.payload,
    )
    if digest != row.hash:
        _broken(row.seq, "was altered (its content no longer matches its hash)")
    return row.hash, row.seq + 1


def _broken(seq: int, what: str) -> NoReturn:
    raise AuditChainBroken(
        f"audit event seq {seq} {what}",
        hint="the audit log was tampered with; keep the database for investigation and "
        "restore the catalog from a backup",
    )
