"""Swarms, their tasks, and the workspace's swarm limits.

Revision ID: t0010
Revises: t0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import TENANT_SCHEMA

revision: str = "t0010"
down_revision: str | None = "t0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "swarm_settings",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("max_tasks", sa.Integer(), nullable=False, server_default="500"),
        sa.Column("max_concurrent", sa.Integer(), nullable=False, server_default="32"),
        sa.Column("workspace_concurrency", sa.Integer(), nullable=False, server_default="32"),
        sa.PrimaryKeyConstraint("id", name="pk_swarm_settings"),
        schema=TENANT_SCHEMA,
    )
    op.create_table(
        "swarms",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False, server_default=""),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("global_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("deviation_rules", sa.Text(), nullable=False, server_default=""),
        sa.Column("origin", sa.String(16), nullable=False, server_default="ui"),
        sa.Column("created_by_label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", postgresql.JSONB(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default="false"),
        sa.PrimaryKeyConstraint("id", name="pk_swarms"),
        schema=TENANT_SCHEMA,
    )
    op.create_table(
        "swarm_tasks",
        sa.Column("swarm_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("execution_prompt", sa.Text(), nullable=False),
        sa.Column("dependencies", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("dependents", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("waiting_on", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sandbox_id", sa.String(64), nullable=True),
        sa.Column("output", sa.Text(), nullable=False, server_default=""),
        sa.Column("outputs", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False, server_default="0"),
        sa.Column("input_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["swarm_id"], [f"{TENANT_SCHEMA}.swarms.id"], name="fk_swarm_tasks_swarm_id_swarms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("swarm_id", "key", name="pk_swarm_tasks"),
        schema=TENANT_SCHEMA,
    )
    op.create_index("ix_swarm_tasks_status", "swarm_tasks", ["status"], schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_table("swarm_tasks", schema=TENANT_SCHEMA)
    op.drop_table("swarms", schema=TENANT_SCHEMA)
    op.drop_table("swarm_settings", schema=TENANT_SCHEMA)
