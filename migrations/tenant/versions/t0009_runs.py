"""Pipeline runs: runs, each visit of a step (attempts, outputs, lease), loop items.

Revision ID: t0009
Revises: t0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from app.db import TENANT_SCHEMA

revision: str = "t0009"
down_revision: str | None = "t0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPTY_OBJECT = sa.text("'{}'::jsonb")
_EMPTY_LIST = sa.text("'[]'::jsonb")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline_id", sa.String(64), nullable=False),
        sa.Column("pipeline_version", sa.Integer(), nullable=False),
        sa.Column("pipeline_name", sa.String(200), nullable=False),
        sa.Column("pipeline_yaml", sa.Text(), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("outputs", JSONB(), nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("active_loop", sa.String(64), nullable=True),
        sa.Column("model_override", sa.String(200), nullable=True),
        sa.Column("created_by_label", sa.String(200), nullable=False, server_default=""),
        sa.Column("restarted_from", sa.String(32), nullable=True),
        sa.Column("announced_status", sa.String(16), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        schema=TENANT_SCHEMA,
    )
    op.create_index("ix_runs_pipeline_id", "runs", ["pipeline_id"], schema=TENANT_SCHEMA)
    op.create_index("ix_runs_status", "runs", ["status"], schema=TENANT_SCHEMA)
    op.create_index("ix_runs_created_at", "runs", ["created_at"], schema=TENANT_SCHEMA)
    op.create_table(
        "run_steps",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("via", sa.String(32), nullable=False, server_default=""),
        sa.Column("loop_item", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("max_retries", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("human_context", sa.Text(), nullable=False, server_default=""),
        sa.Column("injections", JSONB(), nullable=False, server_default=_EMPTY_LIST),
        sa.Column("input", sa.Text(), nullable=False, server_default=""),
        sa.Column("outputs", JSONB(), nullable=False, server_default=_EMPTY_OBJECT),
        sa.Column("summary", sa.Text(), nullable=False, server_default=""),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.Column("model", sa.String(200), nullable=False, server_default=""),
        sa.Column("input_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("output_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("cost", sa.Numeric(14, 6), nullable=False, server_default=sa.text("0")),
        sa.Column("attempts", JSONB(), nullable=False, server_default=_EMPTY_LIST),
        sa.Column("routed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_generation", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("takeovers", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], [f"{TENANT_SCHEMA}.runs.id"], name="fk_run_steps_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_run_steps"),
        sa.UniqueConstraint("run_id", "seq", name="uq_run_steps_run_id_seq"),
        schema=TENANT_SCHEMA,
    )
    op.create_index("ix_run_steps_run_id", "run_steps", ["run_id"], schema=TENANT_SCHEMA)
    op.create_index("ix_run_steps_lease_expires_at", "run_steps", ["lease_expires_at"], schema=TENANT_SCHEMA)
    op.create_table(
        "run_loop_items",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("loop_step", sa.String(64), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], [f"{TENANT_SCHEMA}.runs.id"], name="fk_run_loop_items_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "loop_step", "index", name="pk_run_loop_items"),
        schema=TENANT_SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("run_loop_items", schema=TENANT_SCHEMA)
    op.drop_table("run_steps", schema=TENANT_SCHEMA)
    op.drop_table("runs", schema=TENANT_SCHEMA)
