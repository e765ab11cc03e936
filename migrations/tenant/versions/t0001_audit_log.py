"""Workspace audit log.

Revision ID: t0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import TENANT_SCHEMA

revision: str = "t0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_id", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("details", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        schema=TENANT_SCHEMA,
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"], schema=TENANT_SCHEMA)
    op.create_index("ix_audit_events_action", "audit_events", ["action"], schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_table("audit_events", schema=TENANT_SCHEMA)
