"""Monitoring reports in the catalog: a version checked against a window of data."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import MonitorReport
from regrow.catalog.records import MonitorReportRecord
from regrow.catalog.rows import monitor_report_record

__all__ = ["MonitoringMixin"]


class MonitoringMixin(CatalogCore):
    """Catalog methods for monitoring reports."""

    def add_monitor_report(
        self,
        *,
        version_id: str,
        snapshot_id: str,
        summary: Mapping[str, Any],
        report: Mapping[str, Any],
        actor: str | None = None,
    ) -> MonitorReportRecord:
        """Record a monitoring report of ``version_id`` on window ``snapshot_id``.

        ``summary`` is the short form (drifted columns, candidate components); ``report`` the
        full one. Audit event ``monitor.report``.
        """
        row = MonitorReport(
            id=uuid.uuid4().hex,
            version_id=version_id,
            snapshot_id=snapshot_id,
            summary=audit.normalize(checks.mapping("summary", summary)),
            report=audit.normalize(checks.mapping("report", report)),
            created_at=now(),
        )
        who = self._who(actor)

        def write(session: Session) -> MonitorReportRecord:
            version = lookup.version_by_id(session, version_id)
            self._check_refs(session, run_id=None, snapshot_id=snapshot_id)
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="monitor.report",
                subject=f"version:{version.system}:v{version.number}",
                rows=[("monitor_reports", row.id)],
                payload={"id": row.id, "snapshot_id": snapshot_id, "summary": row.summary},
            )
            return monitor_report_record(row)

        return self._write(write)

    def get_monitor_report(self, id: str) -> MonitorReportRecord:
        """The monitoring report with this id (or an unambiguous prefix of it);
        :class:`~regrow.errors.NotFound` if none."""
        with self._read() as session:
            row = lookup.by_id(
                session, MonitorReport, "monitoring report", id, listed="regrow monitor list"
            )
            return monitor_report_record(row)

    def list_monitor_reports(
        self, version_id: str | None = None, limit: int = 50
    ) -> list[MonitorReportRecord]:
        """The latest ``limit`` monitoring reports (of ``version_id``, if given), newest first."""
        query = (
            sa.select(MonitorReport)
            .order_by(MonitorReport.created_at.desc(), MonitorReport.id)
            .limit(checks.integer("limit", limit))
        )
        if version_id is not None:
            query = query.where(MonitorReport.version_id == version_id)
        with self._read() as session:
            return [monitor_report_record(row) for row in session.scalars(query)]
