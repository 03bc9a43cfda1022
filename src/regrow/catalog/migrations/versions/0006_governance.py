"""Governance: identities and tokens, approvals, registered policies, experiment records.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alias_moves") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="move"))
    _mark_rollbacks()
    op.create_table(
        "identities",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_identities"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("identity", sa.String(255), nullable=False),
        sa.Column("hash", sa.String(255), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.ForeignKeyConstraint(
            ["identity"], ["identities.name"], name="fk_tokens_identity_identities"
        ),
    )
    op.create_index("ix_tokens_identity", "tokens", ["identity"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(255), nullable=False),
        sa.Column("holder_id", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["system_versions.id"], name="fk_approvals_version_id_system_versions"
        ),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=True),
        sa.Column("candidate_id", sa.String(64), nullable=True),
        sa.Column("evaluation_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("rationale", sa.JSON(), nullable=False),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("contingency", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_system", "experiments", ["system"])
    op.create_index("ix_experiments_subject_id", "experiments", ["subject_id"])


def _mark_rollbacks() -> None:
    """Moves made by a rollback before this revision: their ``alias.rollback`` audit events
    name the alias and the revision they moved it to (a rollback pops the alias's history of
    holders; replayed as a move, it would push)."""
    conn = op.get_bind()
    events = sa.table(
        "audit_events", sa.column("action", sa.String), sa.column("subject", sa.String),
        sa.column("payload", sa.JSON),
    )  # fmt: skip
    moves = sa.table(
        "alias_moves", sa.column("system", sa.String), sa.column("alias", sa.String),
        sa.column("revision", sa.Integer), sa.column("kind", sa.String),
    )  # fmt: skip
    query = sa.select(events.c.subject, events.c.payload).where(events.c.action == "alias.rollback")
    for subject, payload in conn.execute(query).all():
        system, _, alias = str(subject).removeprefix("alias:").partition("@")
        revision = (payload or {}).get("revision")
        if alias and isinstance(revision, int):
            conn.execute(
                moves.update()
                .where(
                    moves.c.system == system,
                    moves.c.alias == alias,
                    moves.c.revision == revision,
                )
                .values(kind="rollback")
            )


def downgrade() -> None:
    op.drop_index("ix_experiments_subject_id", table_name="experiments")
    op.drop_index("ix_experiments_system", table_name="experiments")
    op.drop_table("experiments")
    op.drop_table("policies")
    op.drop_table("approvals")
    op.drop_index("ix_tokens_identity", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("identities")
    with op.batch_alter_table("alias_moves") as batch:
        batch.drop_column("kind")
