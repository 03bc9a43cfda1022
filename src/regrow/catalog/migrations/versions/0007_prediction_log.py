"""Prediction log: the index of logged prediction files, and feedback labels.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_files",
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("artifact", name="pk_prediction_files"),
    )
    op.create_index("ix_prediction_files_system_hour", "prediction_files", ["system", "hour"])
    op.create_table(
        "prediction_feedback",
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("row", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("system", "request_id", "row", name="pk_prediction_feedback"),
    )


def downgrade() -> None:
    op.drop_table("prediction_feedback")
    op.drop_index("ix_prediction_files_system_hour", table_name="prediction_files")
    op.drop_table("prediction_files")
