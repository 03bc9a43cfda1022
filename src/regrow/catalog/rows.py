"""Conversion of ORM rows into the catalog's frozen records.

Each function copies the row's values into a :mod:`regrow.catalog.records` dataclass. Rows
come from sessions that close before the catalog returns, so nothing handed out is attached to
a session or shares state with one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from regrow.catalog.models import (
    Alias,
    AliasMove,
    ComponentVersion,
    Evaluation,
    MonitorReport,
    Plan,
    Run,
    Schema,
    Snapshot,
    SystemVersion,
)
from regrow.catalog.records import (
    AliasMoveRecord,
    AliasRecord,
    ComponentVersionRecord,
    EvaluationRecord,
    MonitorReportRecord,
    PlanRecord,
    RunRecord,
    SchemaRecord,
    SnapshotRecord,
    SystemVersionRecord,
)

__all__ = [
    "alias_move_record",
    "alias_record",
    "component_version_record",
    "evaluation_record",
    "monitor_report_record",
    "plan_record",
    "run_record",
    "schema_record",
    "snapshot_record",
    "system_version_record",
]


def schema_record(row: Schema) -> SchemaRecord:
    """The record of a ``schemas`` row."""
    return SchemaRecord(
        id=row.id, name=row.name, version=row.version, spec=row.spec, created_at=row.created_at
    )


def snapshot_record(row: Snapshot) -> SnapshotRecord:
    """The record of a ``snapshots`` row."""
    return SnapshotRecord(
        id=row.id,
        name=row.name,
        schema_id=row.schema_id,
        rows=row.rows,
        columns=tuple(row.columns),
        column_hashes=dict(row.column_hashes),
        artifact=row.artifact,
        time_column=row.time_column,
        slices=dict(row.slices),
        created_at=row.created_at,
        parent_ids=tuple(row.parent_ids),
    )


def component_version_record(row: ComponentVersion | sa.Row[Any]) -> ComponentVersionRecord:
    """The record of a ``component_versions`` row."""
    return ComponentVersionRecord(
        id=row.id,
        system=row.system,
        component=row.component,
        kind=row.kind,
        fingerprint=row.fingerprint,
        parts=row.parts,
        artifact=row.artifact,
        run_id=row.run_id,
        snapshot_id=row.snapshot_id,
        seed=row.seed,
        train_seconds=row.train_seconds,
        created_at=row.created_at,
        info=row.info,
    )


def system_version_record(row: SystemVersion) -> SystemVersionRecord:
    """The record of a ``system_versions`` row."""
    return SystemVersionRecord(
        id=row.id,
        system=row.system,
        number=row.number,
        parent_id=row.parent_id,
        manifest=dict(row.manifest),
        spec=row.spec,
        run_id=row.run_id,
        snapshot_id=row.snapshot_id,
        created_at=row.created_at,
        note=row.note,
    )


def run_record(row: Run) -> RunRecord:
    """The record of a ``runs`` row."""
    return RunRecord(
        id=row.id,
        system=row.system,
        kind=row.kind,
        status=row.status,
        seed=row.seed,
        environment=row.environment,
        params=row.params,
        summary=row.summary,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        version_id=row.version_id,
        heartbeat_at=row.heartbeat_at,
        lease_seconds=row.lease_seconds,
        holder=row.holder,
    )


def evaluation_record(row: Evaluation) -> EvaluationRecord:
    """The record of an ``evaluations`` row."""
    return EvaluationRecord(
        id=row.id,
        candidate_id=row.candidate_id,
        baseline_id=row.baseline_id,
        snapshot_id=row.snapshot_id,
        metric=row.metric,
        results=row.results,
        verdict=row.verdict,
        reasons=tuple(row.reasons),
        created_at=row.created_at,
    )


def alias_record(row: Alias) -> AliasRecord:
    """The record of an ``aliases`` row."""
    return AliasRecord(
        system=row.system,
        name=row.name,
        version_id=row.version_id,
        revision=row.revision,
        updated_at=row.updated_at,
    )


def alias_move_record(row: AliasMove) -> AliasMoveRecord:
    """The record of an ``alias_moves`` row."""
    return AliasMoveRecord(
        id=row.id,
        system=row.system,
        alias=row.alias,
        from_version_id=row.from_version_id,
        to_version_id=row.to_version_id,
        revision=row.revision,
        actor=row.actor,
        reason=row.reason,
        at=row.at,
        kind=row.kind,
    )


def monitor_report_record(row: MonitorReport) -> MonitorReportRecord:
    """The record of a ``monitor_reports`` row."""
    return MonitorReportRecord(
        id=row.id,
        version_id=row.version_id,
        snapshot_id=row.snapshot_id,
        summary=row.summary,
        report=row.report,
        created_at=row.created_at,
    )


def plan_record(row: Plan) -> PlanRecord:
    """The record of a ``plans`` row."""
    return PlanRecord(
        id=row.id,
        system=row.system,
        version_id=row.version_id,
        window_id=row.window_id,
        body=row.body,
        status=row.status,
        run_id=row.run_id,
        result_version_id=row.result_version_id,
        outcome=row.outcome,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
