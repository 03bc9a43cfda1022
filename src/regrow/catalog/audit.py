"""The tamper-evident audit log: a hash chain over the ``audit_events`` table.

Event ``n`` stores ``hash = sha256(prev_hash + canonical_json(fields))`` where ``prev_hash`` is
the hash of event ``n - 1`` (64 zeros for the first event) and ``fields`` are its seq, time
(ISO 8601), actor, action, subject and payload. Editing or deleting any event breaks the chain
from that event on, which :func:`verify` reports.

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
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow._hashing import canonical_json, sha256_hex
from regrow.catalog import checks
from regrow.catalog.core import CatalogCore
from regrow.catalog.models import AuditEvent, AuditHead
from regrow.catalog.records import AuditEventRecord
from regrow.errors import AuditChainBroken, CatalogError

__all__ = ["GENESIS_HASH", "AuditMixin", "append", "event_hash", "normalize", "to_record", "verify"]

GENESIS_HASH = "0" * 64

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
        """Check the audit log's hash chain; return the number of events verified.

        Raises :class:`~regrow.errors.AuditChainBroken` naming the first event that fails.
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
    return sha256_hex((prev_hash + canonical_json(content)).encode())


def append(
    session: Session, *, actor: str, action: str, subject: str, payload: Any
) -> AuditEventRecord:
    """Append one event inside the caller's write transaction and return it.

    Call it last in the transaction, after every other write: the head row stays locked
    (on PostgreSQL) from here to the commit, so the lock is held as briefly as possible.
    """
    session.flush()  # the caller's pending writes go first
    conn = session.connection()
    head = conn.execute(_HEAD).one_or_none()
    if head is None:
        raise CatalogError(
            "the catalog has no audit_head row",
            hint="the schema was not created by regrow's migrations; open the catalog with "
            "upgrade=True on an empty database",
        )
    at = datetime.now(UTC)
    data = normalize(payload)
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


def verify(session: Session) -> int:
    """Check the whole chain and return the number of events verified.

    Raises :class:`~regrow.errors.AuditChainBroken` naming the first event that does not
    verify: a changed field, a missing or reordered event, or a head that does not match.
    """
    # The head first: under READ COMMITTED (PostgreSQL) events appended after this read are
    # simply not checked, instead of looking like a head that disagrees with the events.
    head = session.execute(sa.select(AuditHead.seq, AuditHead.hash)).one_or_none()
    if head is None:
        _broken(1, "cannot be checked: the audit_head row is missing")
    columns = [getattr(AuditEvent, c.key) for c in AuditEvent.__table__.columns]
    query = (
        sa.select(*columns)
        .where(AuditEvent.seq <= head.seq)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=_BATCH)
    )
    prev_hash, expected_seq = GENESIS_HASH, 1
    with session.execute(query) as rows:  # closes the (server-side) cursor on a failure too
        for row in rows:
            prev_hash, expected_seq = _check(row, prev_hash, expected_seq)
    count = expected_seq - 1
    if head.seq != count:
        _broken(count + 1, "is missing (the chain's head is at a later seq)")
    if head.hash != prev_hash:
        _broken(count, "was altered (the chain's head holds another hash)")
    return count


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
