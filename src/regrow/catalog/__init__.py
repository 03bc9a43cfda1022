"""The catalog: regrow's metadata database (SQLite or PostgreSQL) and its records.

>>> from regrow.catalog import Catalog
>>> with Catalog("sqlite://") as catalog:
...     catalog.list_systems()
[]
"""

from __future__ import annotations

from regrow.catalog.catalog import Catalog
from regrow.catalog.records import (
    AliasMoveRecord,
    AliasRecord,
    AuditEventRecord,
    ComponentVersionRecord,
    EvaluationRecord,
    FitLeaseRecord,
    MonitorReportRecord,
    PlanRecord,
    PredictionFileRecord,
    RunRecord,
    SchemaRecord,
    SnapshotRecord,
    SystemVersionRecord,
    stopped_by_signal,
)

__all__ = [
    "AliasMoveRecord",
    "AliasRecord",
    "AuditEventRecord",
    "Catalog",
    "ComponentVersionRecord",
    "EvaluationRecord",
    "FitLeaseRecord",
    "MonitorReportRecord",
    "PlanRecord",
    "PredictionFileRecord",
    "RunRecord",
    "SchemaRecord",
    "SnapshotRecord",
    "SystemVersionRecord",
    "stopped_by_signal",
]
