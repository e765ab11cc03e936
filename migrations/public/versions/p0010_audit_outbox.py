"""The audit outbox: entries of platform changes, written in the change's own transaction, on their way to the
workspace's audit log (``app.audit.relay`` moves them).

Revision ID: p0010
Revises: p0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "p0010"
down_revision: str | None = "p0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64)),
        sa.Column("actor_label", sa.String(200), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_outbox"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["public.workspaces.id"],
            name="fk_audit_outbox_workspace_id_workspaces",
            ondelete="CASCADE",
        ),  # fmt: skip
        schema="public",
    )
    op.create_index("ix_audit_outbox_workspace_id", "audit_outbox", ["workspace_id"], schema="public")


def downgrade() -> None:
    op.drop_table("audit_outbox", schema="public")
