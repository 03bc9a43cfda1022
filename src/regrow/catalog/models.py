"""SQLAlchemy models of the catalog's tables.

These are the catalog's private storage layout; callers get the frozen records of
:mod:`regrow.catalog.records`, never these ORM objects. The Alembic migrations under
``catalog/migrations/versions`` create exactly these tables (a test compares them).

Conventions: string ids are ``String(64)``, names ``String(255)``, every timestamp is a
timezone-aware UTC ``datetime`` (:class:`UTCDateTime`), and JSON columns use ``sa.JSON`` so
the same models run on SQLite and PostgreSQL. Constraint and index names follow
:data:`NAMING_CONVENTION`, so they are identical on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "Alias",
    "AliasMove",
    "Approval",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Component",
    "ComponentVersion",
    "Evaluation",
    "Experiment",
    "FitLease",
    "Identity",
    "MemberOutput",
    "MonitorReport",
    "Plan",
    "PolicyRecord",
    "PredictionFeedback",
    "PredictionFile",
    "Profile",
    "Rollout",
    "Run",
    "Schema",
    "Snapshot",
    "SystemVersion",
    "Token",
    "UTCDateTime",
    "WatchCycle",
    "WatchLease",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = sa.String(64)
NAME = sa.String(255)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC).

    SQLite has no time zones: values are stored as naive UTC text and get ``tzinfo=UTC``
    attached on the way out. PostgreSQL stores ``timestamptz`` and the value is converted to UTC.
    Naive datetimes are refused: they are ambiguous.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every catalog table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
        list[Any]: sa.JSON(),
    }


class Schema(Base):
    """A version of a dataset's schema; ``id`` is the hash of ``spec``.

    Keyed by (name, version): two datasets may share an identical spec, and so an id.
    """

    __tablename__ = "schemas"
    __table_args__ = (sa.UniqueConstraint("name", "id"), sa.Index(None, "id"))

    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(ID)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Snapshot(Base):
    """An immutable, content-addressed dataset."""

    __tablename__ = "snapshots"
    __table_args__ = (sa.Index(None, "name", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    schema_id: Mapped[str] = mapped_column(ID)  # schemas.id is not unique: checked by the catalog
    rows: Mapped[int] = mapped_column(sa.BigInteger)
    columns: Mapped[list[Any]]
    column_hashes: Mapped[dict[str, Any]]
    artifact: Mapped[str] = mapped_column(NAME)
    time_column: Mapped[str | None] = mapped_column(NAME)
    slices: Mapped[dict[str, Any]]
    parent_ids: Mapped[list[Any]]
    created_at: Mapped[datetime]


class Profile(Base):
    """The statistical profile of a snapshot, or of one of its slices (``slice == ""``: all)."""

    __tablename__ = "profiles"

    snapshot_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    slice: Mapped[str] = mapped_column(NAME, primary_key=True)
    payload: Mapped[dict[str, Any]]


class Component(Base):
    """One row per component name seen in a system."""

    __tablename__ = "components"

    system: Mapped[str] = mapped_column(NAME, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]


class ComponentVersion(Base):
    """An immutable fitted component, unique per (system, component, fingerprint)."""

    __tablename__ = "component_versions"
    __table_args__ = (
        sa.UniqueConstraint("system", "component", "fingerprint"),
        sa.Index(None, "system", "component"),
        sa.ForeignKeyConstraint(
            ["system", "component"],
            ["components.system", "components.name"],
            name="fk_component_versions_component_components",
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    component: Mapped[str] = mapped_column(NAME)
    kind: Mapped[str] = mapped_column(sa.String(32))
    fingerprint: Mapped[str] = mapped_column(ID)
    parts: Mapped[dict[str, Any]]
    artifact: Mapped[str | None] = mapped_column(NAME)
    run_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("runs.id"))
    snapshot_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("snapshots.id"))
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    train_seconds: Mapped[float] = mapped_column(sa.Float)
    info: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class SystemVersion(Base):
    """A manifest (component name -> component version id) with its system spec."""

    __tablename__ = "system_versions"
    __table_args__ = (sa.UniqueConstraint("system", "number"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    number: Mapped[int] = mapped_column(sa.Integer)
    parent_id: Mapped[str | None] = mapped_column(
        ID, sa.ForeignKey("system_versions.id"), index=True
    )
    manifest: Mapped[dict[str, Any]]
    spec: Mapped[dict[str, Any]]
    run_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("runs.id"))
    snapshot_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("snapshots.id"))
    note: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]


class Run(Base):
    """One execution of a task graph.

    ``version_id`` has no foreign key: runs and system versions point at each other, and a
    cycle of foreign keys cannot be created table by table. The catalog checks it instead.
    """

    __tablename__ = "runs"
    __table_args__ = (sa.Index(None, "system", "started_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    kind: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    environment: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    version_id: Mapped[str | None] = mapped_column(ID)
    heartbeat_at: Mapped[datetime | None]
    lease_seconds: Mapped[int | None]
    holder: Mapped[dict[str, Any] | None]


class FitLease(Base):
    """A component fingerprint being fitted by a live run: others wait instead of fitting it.

    The lease lasts until ``expires_at``; the holding run's heartbeat moves it forward, and a
    run that died stops moving it, so the lease lapses and another run may take it over.
    """

    __tablename__ = "fit_leases"

    fingerprint: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    component: Mapped[str] = mapped_column(NAME)
    run_id: Mapped[str] = mapped_column(ID, index=True)
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class MemberOutput(Base):
    """A stored table of a member's outputs on rows of a snapshot: a cache, never a record.

    ``key`` names what the outputs depend on besides the rows (the member's artifact, the
    transforms it reads through, the classes; see :mod:`regrow.components.outputs`);
    ``artifact`` holds the table (rows keyed by their content). Several tables may hold rows
    of one member on one snapshot, each written by the command that predicted them.
    """

    __tablename__ = "member_outputs"

    key: Mapped[str] = mapped_column(ID, primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    artifact: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    rows: Mapped[int]
    created_at: Mapped[datetime]


class Evaluation(Base):
    """A candidate system version compared with a baseline on one snapshot."""

    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    candidate_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"), index=True)
    baseline_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    snapshot_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("snapshots.id"))
    metric: Mapped[str] = mapped_column(NAME)
    results: Mapped[dict[str, Any]]
    verdict: Mapped[str] = mapped_column(sa.String(16))
    reasons: Mapped[list[Any]]
    created_at: Mapped[datetime]


class MonitorReport(Base):
    """A monitoring report: a version checked against a window of data."""

    __tablename__ = "monitor_reports"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    version_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"), index=True)
    snapshot_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("snapshots.id"))
    summary: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Plan(Base):
    """A plan: the actions proposed for a version on a window, and what became of it.

    The id is the hash of the plan's content, so planning twice on the same inputs gives the
    same plan. ``status`` moves by compare-and-set: proposed -> running -> executed / failed.
    """

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME, index=True)
    version_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    window_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("snapshots.id"))
    body: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String(16))
    run_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("runs.id"))
    result_version_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    outcome: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Alias(Base):
    """A named pointer to a system version, moved by compare-and-set on ``revision``."""

    __tablename__ = "aliases"

    system: Mapped[str] = mapped_column(NAME, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    version_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    revision: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime]


class AliasMove(Base):
    """One move of an alias (the full history is kept)."""

    __tablename__ = "alias_moves"
    __table_args__ = (sa.Index(None, "system", "alias"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(NAME)
    alias: Mapped[str] = mapped_column(NAME)
    from_version_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    to_version_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    revision: Mapped[int] = mapped_column(sa.Integer)
    actor: Mapped[str] = mapped_column(NAME)
    reason: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[datetime]
    #: "move" (a promotion), "rollback" (back one step in the alias's history) or "force"
    #: (an admin's promotion past the policy's gates and approvals)
    kind: Mapped[str] = mapped_column(sa.String(16), server_default="move")


class AuditEvent(Base):
    """One event of the hash-chained audit log; ``seq`` is assigned from :class:`AuditHead`."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(NAME)
    action: Mapped[str] = mapped_column(sa.String(64))
    subject: Mapped[str] = mapped_column(NAME, index=True)
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(ID)
    hash: Mapped[str] = mapped_column(ID)


class AuditHead(Base):
    """The single row (``id == 1``) holding the chain's last seq and hash.

    Appending locks this row first, so concurrent writers extend the chain one at a time.
    """

    __tablename__ = "audit_head"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(ID)


class Identity(Base):
    """Someone (or something) that acts on the catalog, with a role; never deleted, revoked."""

    __tablename__ = "identities"

    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(NAME)
    revoked_at: Mapped[datetime | None]


class Token(Base):
    """An API token of an identity: only a salted hash of its secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    identity: Mapped[str] = mapped_column(NAME, sa.ForeignKey("identities.name"), index=True)
    hash: Mapped[str] = mapped_column(NAME)
    label: Mapped[str] = mapped_column(NAME)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(NAME)
    revoked_at: Mapped[datetime | None]


class Approval(Base):
    """An identity's approval of a version for an alias (one per identity, version, alias)."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(NAME)
    alias: Mapped[str] = mapped_column(NAME)
    version_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    approver: Mapped[str] = mapped_column(NAME)
    #: the alias's holder when approved: the approval is for replacing that version
    holder_id: Mapped[str | None] = mapped_column(ID)
    note: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[datetime]


class PolicyRecord(Base):
    """A policy as used by a command; ``id`` is its content hash (``Policy.id``)."""

    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    body: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(NAME)
    actor: Mapped[str] = mapped_column(NAME)
    created_at: Mapped[datetime]


class Experiment(Base):
    """An experiment record: a plan, manual change or rollout with its rationale, the metrics
    it expected, its contingency and tags, and (after evaluation) what actually happened."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    system: Mapped[str] = mapped_column(NAME, index=True)
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    version_id: Mapped[str | None] = mapped_column(ID)
    candidate_id: Mapped[str | None] = mapped_column(ID)
    evaluation_id: Mapped[str | None] = mapped_column(ID)
    actor: Mapped[str] = mapped_column(NAME)
    rationale: Mapped[list[Any]]
    expected: Mapped[dict[str, Any]]
    contingency: Mapped[str] = mapped_column(sa.Text)
    tags: Mapped[list[Any]]
    actual: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PredictionFile(Base):
    """One Parquet file of the prediction log: rows one server logged for one system in one
    hour (``hour`` is the start of that hour, UTC), written by one flush.

    ``artifact`` holds the rows (see :mod:`regrow.serve.predlog` for its columns); ``first_at``
    and ``last_at`` are the first and last prediction time in it, ``versions`` counts its rows
    per system version (``{"churn:v2": 812}``). The file's key is its content hash, so
    indexing the same file twice is a no-op.
    """

    __tablename__ = "prediction_files"
    __table_args__ = (sa.Index(None, "system", "hour"),)

    artifact: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    hour: Mapped[datetime]
    rows: Mapped[int] = mapped_column(sa.BigInteger)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    versions: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class PredictionFeedback(Base):
    """The label of one served row, by the request's id and the row's number in it.

    A later label for the same row replaces the earlier one (``received_at`` and ``actor``
    then say who sent the one kept). ``label`` is the JSON value as sent (``1``, ``"yes"``,
    ``0.5``); it is coerced to the target's dtype when a window is built from the log.
    """

    __tablename__ = "prediction_feedback"

    system: Mapped[str] = mapped_column(NAME, primary_key=True)
    request_id: Mapped[str] = mapped_column(NAME, primary_key=True)
    row: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    label: Mapped[Any] = mapped_column(sa.JSON)
    received_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(NAME)


class Rollout(Base):
    """A rollout: the progressive exposure of ``candidate_id`` against ``stable_id`` (the
    holder of ``system@alias`` when it started), a persisted state machine.

    ``state`` is one of :data:`regrow.catalog.rollouts.STATES`; ``step`` indexes ``steps`` (the
    candidate's share at each step); ``revision`` is bumped by every transition, which moves by
    compare-and-set on it. ``params`` holds the analysis settings (tolerance, alpha, limits),
    ``evidence`` the last analysis, ``holds`` the analyses in a row that lacked data. ``lanes``
    lists an A/B rollout's candidate lanes in their fixed order, ``{"lane", "version_id",
    "dropped"}`` each (empty for the other modes, whose one candidate is ``candidate_id``; an
    A/B rollout's ``candidate_id`` is its first lane's). The transitions themselves are audit
    events (``rollout.*``, subject ``rollout:<id>``).
    """

    __tablename__ = "rollouts"
    __table_args__ = (sa.Index(None, "system", "state"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    alias: Mapped[str] = mapped_column(NAME)
    mode: Mapped[str] = mapped_column(sa.String(16))
    stable_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    candidate_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("system_versions.id"))
    state: Mapped[str] = mapped_column(sa.String(16))
    step: Mapped[int] = mapped_column(sa.Integer)
    steps: Mapped[list[Any]]
    min_requests: Mapped[int] = mapped_column(sa.Integer)
    params: Mapped[dict[str, Any]]
    evidence: Mapped[dict[str, Any] | None]
    holds: Mapped[int] = mapped_column(sa.Integer)
    revision: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(NAME)
    created_at: Mapped[datetime]
    step_started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    lanes: Mapped[list[Any]] = mapped_column(sa.JSON, server_default="[]")


class WatchLease(Base):
    """Which watcher acts for ``system``: one row per watched system, held until ``expires_at``.

    The holder's heartbeat moves ``expires_at`` forward; a watcher that died stops moving it,
    so the lease lapses and another watcher may take it over (compare-and-set on the row).
    """

    __tablename__ = "watch_leases"

    system: Mapped[str] = mapped_column(NAME, primary_key=True)
    holder: Mapped[str] = mapped_column(ID)
    process: Mapped[dict[str, Any]]
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class WatchCycle(Base):
    """One cycle of ``regrow watch`` on ``system@alias``: the window it took, what it found,
    what it decided and did (``body``), and how far it got (``step``; ``state`` running, done,
    waiting or failed). A cycle left running by a crash is resumed from ``step``."""

    __tablename__ = "watch_cycles"
    __table_args__ = (sa.UniqueConstraint("system", "number"), sa.Index(None, "system", "state"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(NAME)
    alias: Mapped[str] = mapped_column(NAME)
    number: Mapped[int] = mapped_column(sa.Integer)
    state: Mapped[str] = mapped_column(sa.String(16))
    step: Mapped[str] = mapped_column(sa.String(32))
    dry_run: Mapped[bool] = mapped_column(sa.Boolean)
    window_key: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[dict[str, Any]]
    holder: Mapped[str] = mapped_column(ID)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
