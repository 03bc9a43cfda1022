"""Plans in the catalog: proposed, then run, with the outcome next to the estimate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import Plan
from regrow.catalog.records import PlanRecord
from regrow.catalog.rows import plan_record
from regrow.errors import CatalogError

__all__ = ["PLAN_STATUSES", "PlansMixin"]

#: proposed -> running -> executed | failed; a failed plan may be run again.
PLAN_STATUSES = ("proposed", "running", "executed", "failed")


class PlansMixin(CatalogCore):
    """Catalog methods for plans."""

    def add_plan(
        self,
        *,
        id: str,
        system: str,
        version_id: str,
        window_id: str,
        body: Mapping[str, Any],
        actor: str | None = None,
    ) -> PlanRecord:
        """Store plan ``id`` (its content hash) as ``proposed``; an equal plan is returned as is.

        Audit event ``plan.create``.
        """
        data = audit.normalize(checks.mapping("body", body))
        who = self._who(actor)

        def write(session: Session) -> PlanRecord:
            existing = session.get(Plan, id)
            if existing is not None:
                return plan_record(existing)
            version = lookup.version_by_id(session, version_id)
            self._check_refs(session, run_id=None, snapshot_id=window_id)
            stamp = now()
            row = Plan(
                id=id,
                system=system,
                version_id=version_id,
                window_id=window_id,
                body=data,
                status="proposed",
                run_id=None,
                result_version_id=None,
                outcome={},
                created_at=stamp,
                updated_at=stamp,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="plan.create",
                subject=f"version:{version.system}:v{version.number}",
                rows=[("plans", id)],
                payload={"plan": id, "window": window_id, "actions": data.get("summary", {})},
            )
            return plan_record(row)

        return self._write(write, retry_on=("plans",))

    def get_plan(self, ref: str) -> PlanRecord:
        """The plan with this id or unique id prefix (at least 6 characters)."""
        with self._read() as session:
            return plan_record(_plan(session, ref))

    def list_plans(self, system: str | None = None, limit: int = 50) -> list[PlanRecord]:
        """The latest ``limit`` plans (of ``system``, if given), newest first."""
        query = (
            sa.select(Plan)
            .order_by(Plan.created_at.desc(), Plan.id)
            .limit(checks.integer("limit", limit))
        )
        if system is not None:
            query = query.where(Plan.system == system)
        with self._read() as session:
            return [plan_record(row) for row in session.scalars(query)]

    def move_plan(
        self,
        plan_id: str,
        *,
        expected: str | tuple[str, ...],
        status: str,
        run_id: str | None = None,
        result_version_id: str | None = None,
        outcome: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> PlanRecord:
        """Move plan ``plan_id`` from status ``expected`` to ``status`` (compare-and-set).

        Two runners cannot both start a plan: the second finds it no longer ``proposed`` and
        gets a :class:`~regrow.errors.CatalogError`. Audit event ``plan.<status>``.
        """
        checks.choice("status", status, PLAN_STATUSES)
        allowed = (expected,) if isinstance(expected, str) else tuple(expected)
        data = audit.normalize(checks.mapping("outcome", outcome or {}))
        who = self._who(actor)

        def write(session: Session) -> PlanRecord:
            row = _plan(session, plan_id)
            values: dict[str, Any] = {"status": status, "updated_at": now()}
            if run_id is not None:
                values["run_id"] = run_id
            if result_version_id is not None:
                values["result_version_id"] = result_version_id
            if outcome is not None:
                values["outcome"] = data
            result = session.execute(
                sa.update(Plan)
                .where(Plan.id == row.id, Plan.status.in_(allowed))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise CatalogError(
                    f"plan {row.id[:12]} is {row.status!r}, not {' or '.join(allowed)}",
                    hint=f"another run may have taken it; see `regrow plans show {row.id[:12]}`",
                )
            audit.append(
                session,
                actor=who,
                action=f"plan.{status}",
                subject=f"plan:{row.id}",
                rows=[("plans", row.id)],
                payload={"run_id": run_id, "result_version_id": result_version_id},
            )
            session.refresh(row)
            return plan_record(row)

        return self._write(write)


def _plan(session: Session, ref: str) -> Plan:
    ref = checks.text("plan", ref, max_length=64)
    return lookup.by_id(session, Plan, "plan", ref, listed="`regrow plans list`")
