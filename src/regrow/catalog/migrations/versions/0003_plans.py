"""Plans: the actions proposed for a version on a window, and their outcome.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("window_id", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("result_version_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["system_versions.id"], name="fk_plans_version_id_system_versions"
        ),
        sa.ForeignKeyConstraint(
            ["window_id"], ["snapshots.id"], name="fk_plans_window_id_snapshots"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_plans_run_id_runs"),
        sa.ForeignKeyConstraint(
            ["result_version_id"],
            ["system_versions.id"],
            name="fk_plans_result_version_id_system_versions",
        ),
    )
    op.create_index("ix_plans_system", "plans", ["system"])


def downgrade() -> None:
    op.drop_index("ix_plans_system", table_name="plans")
    op.drop_table("plans")
