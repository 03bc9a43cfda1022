"""Rollout lanes: the candidate lanes of an A/B rollout (and which the analysis dropped).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # the rollouts already stored are single-candidate ones: no lanes
    op.add_column("rollouts", sa.Column("lanes", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:  # SQLite rebuilds the table
        batch.drop_column("lanes")
