"""Leases: a run's heartbeat and holder, and fit leases on component fingerprints.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("holder", sa.JSON(), nullable=True))
    op.create_table(
        "fit_leases",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("component", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_fit_leases"),
    )
    op.create_index("ix_fit_leases_run_id", "fit_leases", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_fit_leases_run_id", table_name="fit_leases")
    op.drop_table("fit_leases")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("holder")
        batch.drop_column("lease_seconds")
        batch.drop_column("heartbeat_at")
