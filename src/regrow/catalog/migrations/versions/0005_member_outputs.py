"""Member outputs: stored tables of members' outputs on snapshot rows (a cache).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_outputs",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("snapshot_id", sa.String(64), nullable=False),
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "snapshot_id", "artifact", name="pk_member_outputs"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name="fk_member_outputs_snapshot_id_snapshots",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_member_outputs_artifact", "member_outputs", ["artifact"])


def downgrade() -> None:
    op.drop_index("ix_member_outputs_artifact", table_name="member_outputs")
    op.drop_table("member_outputs")
