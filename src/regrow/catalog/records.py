"""Plain, immutable records the catalog returns.

The catalog never hands out ORM objects: sessions stay short and callers cannot mutate
stored state by accident. Every record is a frozen dataclass of JSON-friendly values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AliasMoveRecord",
    "AliasRecord",
    "AuditEventRecord",
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

JSON = dict[str, Any]


def stopped_by_signal(record: JSON | None) -> bool:
    """Whether a run's summary or a plan run's outcome says it was stopped by Ctrl-C or SIGTERM
    (the catalog keeps it ``failed``; run again, it resumes): ``interrupted`` is True.

    Records made before 2026-12-01 named the exception there instead, for every failure
    (``KeyboardInterrupt`` or the watcher's ``_Terminated`` for a stop), or began a plan's
    ``error`` with it.

    >>> stopped_by_signal({"interrupted": True}), stopped_by_signal({"interrupted": False})
    (True, False)
    >>> stopped_by_signal({"interrupted": "KeyboardInterrupt"}), stopped_by_signal(
    ...     {"interrupted": "ValueError"})
    (True, False)
    """
    if not record:
        return False
    flag = record.get("interrupted")
    if isinstance(flag, bool):
        return flag
    named = str(flag or record.get("error") or "")
    return named.startswith(("KeyboardInterrupt", "_Terminated"))


@dataclass(frozen=True)
class SchemaRecord:
    """A versioned schema: ``name`` is the dataset name, ``version`` counts from 1.

    ``id`` is the sha256 of the canonical JSON of ``spec``; registering the same spec under the
    same name twice returns the existing record.
    """

    id: str
    name: str
    version: int
    spec: JSON
    created_at: datetime


@dataclass(frozen=True)
class SnapshotRecord:
    """An immutable dataset. ``id`` is its content hash (sha256 over the column hashes).

    ``column_hashes`` maps each column to the sha256 of its values, so a component's
    fingerprint can depend on only the columns it reads. ``artifact`` is the store key of the
    Parquet file. ``slices`` maps slice names to row filters (pandas ``query`` expressions).
    """

    id: str
    name: str
    schema_id: str
    rows: int
    columns: tuple[str, ...]
    column_hashes: dict[str, str]
    artifact: str
    time_column: str | None
    slices: dict[str, str]
    created_at: datetime
    parent_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComponentVersionRecord:
    """An immutable fitted component.

    ``fingerprint`` is unique per (system, component); ``parts`` holds what went into it
    (recipe, code, deps, data, upstream, seed) so staleness can be explained part by part.
    ``artifact`` is the store key of the serialized fitted component (None for components with
    nothing fitted, such as an ensemble with explicit weights).
    """

    id: str
    system: str
    component: str
    kind: str
    fingerprint: str
    parts: JSON
    artifact: str | None
    run_id: str | None
    snapshot_id: str | None
    seed: int
    train_seconds: float
    created_at: datetime
    info: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class SystemVersionRecord:
    """A manifest: component name -> component version id, plus the system's spec.

    ``number`` counts from 1 within a system; users refer to it as ``"<system>:v<number>"``.
    """

    id: str
    system: str
    number: int
    parent_id: str | None
    manifest: dict[str, str]
    spec: JSON
    run_id: str | None
    snapshot_id: str | None
    created_at: datetime
    note: str = ""

    @property
    def ref(self) -> str:
        """The user-facing reference, e.g. ``churn:v2``."""
        return f"{self.system}:v{self.number}"


@dataclass(frozen=True)
class RunRecord:
    """One execution of a task graph (a training run, an update, ...)."""

    id: str
    system: str
    kind: str
    status: str  # "running" | "succeeded" | "failed" | "abandoned"
    seed: int
    environment: JSON
    params: JSON
    summary: JSON
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    version_id: str | None
    heartbeat_at: datetime | None = None
    lease_seconds: int | None = None
    holder: JSON | None = None  # where it runs: host, pid, user

    def state(self, at: datetime | None = None) -> str:
        """``status``, except that a ``running`` run whose lease lapsed is ``abandoned``.

        A live run renews its lease (a heartbeat) every third of ``lease_seconds``; a run whose
        process died stops renewing it. Runs recorded before leases existed stay ``running``.
        """
        if self.status != "running" or self.heartbeat_at is None or not self.lease_seconds:
            return self.status
        at = at or datetime.now(UTC)
        lapsed = (at - self.heartbeat_at).total_seconds() > self.lease_seconds
        return "abandoned" if lapsed else "running"


@dataclass(frozen=True)
class FitLeaseRecord:
    """A component fingerprint that a run is fitting now; see :mod:`regrow.catalog.leases`."""

    fingerprint: str
    system: str
    component: str
    run_id: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class EvaluationRecord:
    """A candidate compared with a baseline on one snapshot."""

    id: str
    candidate_id: str
    baseline_id: str | None
    snapshot_id: str
    metric: str
    results: JSON
    verdict: str  # "blessed" | "rejected" | "none"
    reasons: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class MonitorReportRecord:
    """A version monitored on a window snapshot: the summary and the full report."""

    id: str
    version_id: str
    snapshot_id: str
    summary: JSON
    report: JSON
    created_at: datetime


@dataclass(frozen=True)
class PlanRecord:
    """A stored plan: its body (actions, reasons, costs), status and outcome."""

    id: str
    system: str
    version_id: str
    window_id: str
    body: JSON
    status: str
    run_id: str | None
    result_version_id: str | None
    outcome: JSON
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AliasRecord:
    """A named pointer to a system version; ``revision`` increases on every move."""

    system: str
    name: str
    version_id: str
    revision: int
    updated_at: datetime


@dataclass(frozen=True)
class AliasMoveRecord:
    """One move of an alias: who moved it, when, why, from where to where."""

    id: int
    system: str
    alias: str
    from_version_id: str | None
    to_version_id: str
    revision: int
    actor: str
    reason: str
    at: datetime
    kind: str = "move"  # "move", "rollback" or "force"


@dataclass(frozen=True)
class AuditEventRecord:
    """One event of the tamper-evident audit log.

    ``hash`` is sha256 over ``prev_hash`` and the canonical JSON of the event's fields, so any
    edit or deletion breaks the chain from that event on.
    """

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    payload: JSON
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class PredictionFileRecord:
    """One indexed file of the prediction log: ``rows`` rows of ``system`` served in the hour
    starting at ``hour`` (UTC), from ``first_at`` to ``last_at``; ``versions`` counts them per
    system version. ``artifact`` is the store key of the Parquet file."""

    artifact: str
    system: str
    hour: datetime
    rows: int
    first_at: datetime
    last_at: datetime
    versions: dict[str, int]
    created_at: datetime
