"""Monitoring reports: a version checked against a window snapshot.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitor_reports",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.String(64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_reports"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["system_versions.id"],
            name="fk_monitor_reports_version_id_system_versions",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name="fk_monitor_reports_snapshot_id_snapshots"
        ),
    )
    op.create_index("ix_monitor_reports_version_id", "monitor_reports", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_monitor_reports_version_id", table_name="monitor_reports")
    op.drop_table("monitor_reports")
