"""The initial catalog schema.

Revision ID: 0001
Revises:

Every table is written out here rather than derived from the models, so later model edits
cannot silently change what this revision creates. ``tests/catalog/test_migrations.py``
checks that the result matches ``regrow.catalog.models`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def _id(name: str, *, nullable: bool) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), nullable=nullable)


def _name(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(255), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [target], name=f"fk_{table}_{column}_{target.split('.')[0]}"
    )


def upgrade() -> None:
    """Create every catalog table and the audit chain's head row."""
    op.create_table(
        "schemas",
        _name("name"),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        _id("id", nullable=False),
        _json("spec"),
        _at("created_at"),
        sa.PrimaryKeyConstraint("name", "version", name="pk_schemas"),
        sa.UniqueConstraint("name", "id", name="uq_schemas_name_id"),
    )
    op.create_index("ix_schemas_id", "schemas", ["id"])
    op.create_table(
        "runs",
        _id("id", nullable=False),
        _name("system"),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        _json("environment"),
        _json("params"),
        _json("summary"),
        _at("started_at"),
        _at("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _id("version_id", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_system_started_at", "runs", ["system", "started_at"])
    op.create_table(
        "snapshots",
        _id("id", nullable=False),
        _name("name"),
        _id("schema_id", nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        _json("columns"),
        _json("column_hashes"),
        _name("artifact"),
        _name("time_column", nullable=True),
        _json("slices"),
        _json("parent_ids"),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
    )
    op.create_index("ix_snapshots_name_created_at", "snapshots", ["name", "created_at"])
    op.create_table(
        "profiles",
        _id("snapshot_id", nullable=False),
        _name("slice"),
        _json("payload"),
        sa.PrimaryKeyConstraint("snapshot_id", "slice", name="pk_profiles"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name="fk_profiles_snapshot_id_snapshots",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "components",
        _name("system"),
        _name("name"),
        sa.Column("kind", sa.String(32), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("system", "name", name="pk_components"),
    )
    op.create_table(
        "component_versions",
        _id("id", nullable=False),
        _name("system"),
        _name("component"),
        sa.Column("kind", sa.String(32), nullable=False),
        _id("fingerprint", nullable=False),
        _json("parts"),
        _name("artifact", nullable=True),
        _id("run_id", nullable=True),
        _id("snapshot_id", nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("train_seconds", sa.Float(), nullable=False),
        _json("info"),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_component_versions"),
        sa.UniqueConstraint(
            "system",
            "component",
            "fingerprint",
            name="uq_component_versions_system_component_fingerprint",
        ),
        sa.ForeignKeyConstraint(
            ["system", "component"],
            ["components.system", "components.name"],
            name="fk_component_versions_component_components",
        ),
        _fk("run_id", "component_versions", "runs.id"),
        _fk("snapshot_id", "component_versions", "snapshots.id"),
    )
    op.create_index(
        "ix_component_versions_system_component", "component_versions", ["system", "component"]
    )
    op.create_table(
        "system_versions",
        _id("id", nullable=False),
        _name("system"),
        sa.Column("number", sa.Integer(), nullable=False),
        _id("parent_id", nullable=True),
        _json("manifest"),
        _json("spec"),
        _id("run_id", nullable=True),
        _id("snapshot_id", nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_system_versions"),
        sa.UniqueConstraint("system", "number", name="uq_system_versions_system_number"),
        _fk("parent_id", "system_versions", "system_versions.id"),
        _fk("run_id", "system_versions", "runs.id"),
        _fk("snapshot_id", "system_versions", "snapshots.id"),
    )
    op.create_index("ix_system_versions_parent_id", "system_versions", ["parent_id"])
    op.create_table(
        "evaluations",
        _id("id", nullable=False),
        _id("candidate_id", nullable=False),
        _id("baseline_id", nullable=True),
        _id("snapshot_id", nullable=False),
        _name("metric"),
        _json("results"),
        sa.Column("verdict", sa.String(16), nullable=False),
        _json("reasons"),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
        _fk("candidate_id", "evaluations", "system_versions.id"),
        _fk("baseline_id", "evaluations", "system_versions.id"),
        _fk("snapshot_id", "evaluations", "snapshots.id"),
    )
    op.create_index("ix_evaluations_candidate_id", "evaluations", ["candidate_id"])
    op.create_table(
        "aliases",
        _name("system"),
        _name("name"),
        _id("version_id", nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("system", "name", name="pk_aliases"),
        _fk("version_id", "aliases", "system_versions.id"),
    )
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _name("system"),
        _name("alias"),
        _id("from_version_id", nullable=True),
        _id("to_version_id", nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        _name("actor"),
        sa.Column("reason", sa.Text(), nullable=False),
        _at("at"),
        sa.PrimaryKeyConstraint("id", name="pk_alias_moves"),
        _fk("from_version_id", "alias_moves", "system_versions.id"),
        _fk("to_version_id", "alias_moves", "system_versions.id"),
    )
    op.create_index("ix_alias_moves_system_alias", "alias_moves", ["system", "alias"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        _at("at"),
        _name("actor"),
        sa.Column("action", sa.String(64), nullable=False),
        _name("subject"),
        _json("payload"),
        _id("prev_hash", nullable=False),
        _id("hash", nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_subject", "audit_events", ["subject"])
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _id("hash", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    assert audit_head is not None
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    """Drop every catalog table."""
    for table in (
        "audit_head",
        "audit_events",
        "alias_moves",
        "aliases",
        "evaluations",
        "system_versions",
        "component_versions",
        "components",
        "profiles",
        "snapshots",
        "runs",
        "schemas",
    ):
        op.drop_table(table)
