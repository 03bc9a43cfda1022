"""Policies as used: ``catalog.policies``.

A policy is plain data with a content id (:attr:`regrow.plan.policy.Policy.id`). The first
time a command uses a policy (to plan, evaluate or promote) its body is registered here, with
where it came from and who used it, in one transaction with an audit event (``policy.register``)
that covers the row. A changed policy file is a new id, and so a new row and event: the audit
log shows when each policy came into use, and editing a registered policy in the database
breaks the chain (``regrow audit --verify``).

An admin **pins** one of them as the workspace's policy (``regrow policy set FILE``): the one
promotions follow (its ``promotion`` section) and whose gates an evaluation must have run to
count for a promotion; evaluations, plans and runs use it when given no other.

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> first = catalog.policies.register("p1", {"gates": {}}, source="policy.yaml", actor="ana")
>>> again = catalog.policies.register("p1", {"gates": {}}, source="policy.yaml", actor="bob")
>>> again == first, [e.action for e in catalog.audit_events()]
(True, ['policy.register'])
>>> catalog.close()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks
from regrow.catalog.core import now
from regrow.catalog.models import AuditEvent, PolicyRecord
from regrow.errors import NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["PINNED", "Policies", "RegisteredPolicy"]

#: The audit subject of ``policy.pin`` events: which policy governs the workspace.
PINNED = "policy:workspace"


@dataclass(frozen=True)
class RegisteredPolicy:
    """A policy as first used: its content id, body, source, who and when."""

    id: str
    body: dict[str, Any]
    source: str
    actor: str
    created_at: datetime


class Policies:
    """The policies commands have used (see the module docstring)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def register(
        self, policy_id: str, body: Mapping[str, Any], *, source: str, actor: str | None = None
    ) -> RegisteredPolicy:
        """The registered policy ``policy_id``: registered now (audited) if it is new."""
        checks.identifier("policy_id", policy_id)
        data = audit.normalize(checks.mapping("body", body))
        source = checks.text("source", source or "the default policy")
        found = self._get(policy_id)
        if found is not None:
            return found
        who = self._catalog._who(actor)

        def write(session: Session) -> RegisteredPolicy:
            row = PolicyRecord(id=policy_id, body=data, source=source, actor=who, created_at=now())
            try:
                with session.begin_nested():  # two first uses at once: one registers it
                    session.add(row)
                    session.flush()
            except IntegrityError:
                existing = session.get(PolicyRecord, policy_id)
                assert existing is not None
                return _record(existing)
            audit.append(
                session,
                actor=who,
                action="policy.register",
                subject=f"policy:{policy_id}",
                payload={"id": policy_id, "source": source},
                rows=[("policies", policy_id)],
            )
            return _record(row)

        record: RegisteredPolicy = self._catalog._write(write)
        return record

    def pin(self, policy_id: str, *, actor: str | None = None) -> RegisteredPolicy:
        """Make registered policy ``policy_id`` the workspace's policy (audited ``policy.pin``):
        the one promotions, evaluations, plans and runs follow unless told otherwise (the
        caller checks that the actor may: an admin)."""
        found = self.get(policy_id)
        who = self._catalog._who(actor)
        self._catalog._write(
            lambda session: audit.append(
                session,
                actor=who,
                action="policy.pin",
                subject=PINNED,
                payload={"id": policy_id, "source": found.source},
                rows=[("policies", policy_id)],
            )
        )
        return found

    def pinned(self) -> RegisteredPolicy | None:
        """The workspace's policy: the newest one pinned (None: none was, the default holds).
        The pin is an audit event, so the chain covers which policy governs."""
        with self._catalog._read() as session:
            event = session.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.subject == PINNED, AuditEvent.action == "policy.pin")
                .order_by(AuditEvent.seq.desc())
                .limit(1)
            ).first()
            if event is None:
                return None
            row = session.get(PolicyRecord, str(event.payload.get("id")))
            return _record(row) if row is not None else None

    def get(self, policy_id: str) -> RegisteredPolicy:
        """A registered policy; :class:`~regrow.errors.NotFound` if none has that id."""
        found = self._get(policy_id)
        if found is None:
            raise NotFound("policy", policy_id, hint="policies are registered when first used")
        return found

    def list(self) -> list[RegisteredPolicy]:
        """Every registered policy, oldest first."""
        with self._catalog._read() as session:
            rows = session.scalars(sa.select(PolicyRecord).order_by(PolicyRecord.created_at))
            return [_record(r) for r in rows]

    def _get(self, policy_id: str) -> RegisteredPolicy | None:
        with self._catalog._read() as session:
            row = session.get(PolicyRecord, policy_id)
            return _record(row) if row is not None else None


def _record(row: PolicyRecord) -> RegisteredPolicy:
    return RegisteredPolicy(
        id=row.id,
        body=dict(row.body),
        source=row.source,
        actor=row.actor,
        created_at=row.created_at,
    )
