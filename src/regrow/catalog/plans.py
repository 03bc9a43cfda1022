"""Plans in the catalog: proposed, then run, with the outcome next to the estimate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import Plan, Run
from regrow.catalog.records import PlanRecord, RunRecord
from regrow.catalog.rows import plan_record, run_record
from regrow.errors import CatalogError

__all__ = ["PLAN_STATUSES", "PlansMixin", "release_plan"]

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
            moved = _set_status(
                session, row.id, allowed, values, actor=who,
                payload={"run_id": run_id, "result_version_id": result_version_id},
            )  # fmt: skip
            if not moved:
                gone = _abandoned_run(session, row) if row.status == "running" else None
                if gone is not None:
                    holder = gone.holder or {}
                    raise CatalogError(
                        f"plan {row.id[:12]} is 'running', but its run {gone.id[:12]} stopped "
                        f"renewing its lease at {gone.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC (it "
                        f"ran on {holder.get('host', '?')}, pid {holder.get('pid', '?')}): "
                        "the run is abandoned",
                        hint="`regrow doctor --repair` marks the run abandoned and the plan "
                        "interrupted; then run the plan again: finished components are kept",
                    )
                raise CatalogError(
                    f"plan {row.id[:12]} is {row.status!r}, not {' or '.join(allowed)}",
                    hint=f"another run may have taken it; see `regrow plans show {row.id[:12]}`",
                )
            session.refresh(row)
            return plan_record(row)

        return self._write(write)


def release_plan(session: Session, plan_id: str, *, run_id: str, reason: str, actor: str) -> bool:
    """Mark plan ``plan_id`` ``failed`` as interrupted if it is still ``running``, because
    its run ``run_id`` was abandoned (its process is gone; ``reason`` says how it was found).

    Called in the transaction that abandons the run. Running the plan again then resumes it,
    as after Ctrl-C. Audit ``plan.failed``. False when the plan was not running.
    """
    outcome = {
        "error": f"abandoned: {reason}",
        "interrupted": True,
        "abandoned": True,
        "run_id": run_id,
    }
    values = {"status": "failed", "outcome": audit.normalize(outcome), "updated_at": now()}
    return _set_status(
        session, plan_id, ("running",), values, actor=actor,
        payload={"run_id": run_id, "result_version_id": None, "abandoned": True},
    )  # fmt: skip


def _set_status(
    session: Session,
    plan_id: str,
    allowed: tuple[str, ...],
    values: dict[str, Any],
    *,
    actor: str,
    payload: dict[str, Any],
) -> bool:
    """Set ``values`` (``status`` among them) on plan ``plan_id`` if its status is one of
    ``allowed`` (compare-and-set), with its audit event ``plan.<status>``; False if it was not.
    """
    result = session.execute(
        sa.update(Plan)
        .where(Plan.id == plan_id, Plan.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    audit.append(
        session,
        actor=actor,
        action=f"plan.{values['status']}",
        subject=f"plan:{plan_id}",
        rows=[("plans", plan_id)],
        payload=payload,
    )
    return True


def _abandoned_run(session: Session, plan: Plan) -> RunRecord | None:
    """The run of ``plan`` still marked running whose lease lapsed, if there is one."""
    query = sa.select(Run).where(Run.system == plan.system, Run.status == "running")
    for row in session.scalars(query):
        record = run_record(row)
        if (row.params or {}).get("plan") == plan.id and record.state() == "abandoned":
            return record
    return None


def _plan(session: Session, ref: str) -> Plan:
    ref = checks.text("plan", ref, max_length=64)
    return lookup.by_id(session, Plan, "plan", ref, listed="`regrow plans list`")
