"""Agents: persona in four sections, model, allowed tools, pulse settings.

Revision ID: t0004
Revises: t0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import TENANT_SCHEMA

revision: str = "t0004"
down_revision: str | None = "t0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    empty_list = sa.text("'[]'::jsonb")
    op.create_table(
        "agents",
        sa.Column("id", sa.String(48), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("role", sa.String(120), nullable=False, server_default=""),
        sa.Column("emoji", sa.String(16), nullable=False, server_default=""),
        sa.Column("identity", sa.Text, nullable=False, server_default=""),
        sa.Column("personality", sa.Text, nullable=False, server_default=""),
        sa.Column("procedures", sa.Text, nullable=False, server_default=""),
        sa.Column("decision_framework", sa.Text, nullable=False, server_default=""),
        sa.Column("model", sa.String(200)),
        sa.Column("tools", postgresql.JSONB, nullable=False, server_default=empty_list),
        sa.Column("template", sa.String(48)),
        sa.Column("pulse_enabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("pulse_interval_minutes", sa.Integer, nullable=False, server_default=sa.text("30")),
        sa.Column("pulse_offset_minutes", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("pulse_blackouts", postgresql.JSONB, nullable=False, server_default=empty_list),
        sa.Column("pulse_max_consecutive_skips", sa.Integer, nullable=False, server_default=sa.text("5")),
        sa.Column("pulse_max_concurrent", sa.Integer, nullable=False, server_default=sa.text("2")),
        sa.Column("wake_cooldown_seconds", sa.Integer, nullable=False, server_default=sa.text("300")),
        sa.Column("wake_max_per_day", sa.Integer, nullable=False, server_default=sa.text("12")),
        sa.Column("wake_max_per_pair_per_day", sa.Integer, nullable=False, server_default=sa.text("5")),
        sa.Column("wake_max_session_minutes_per_day", sa.Integer, nullable=False, server_default=sa.text("120")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", postgresql.UUID(as_uuid=True)),
        sa.Column("updated_by", postgresql.UUID(as_uuid=True)),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        schema=TENANT_SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("agents", schema=TENANT_SCHEMA)
