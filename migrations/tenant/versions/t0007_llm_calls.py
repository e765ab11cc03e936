"""The LLM gateway's tokens and its call log (append-only: the workspace role may only insert and read it).

Revision ID: t0007
Revises: t0006
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import TENANT_SCHEMA

revision: str = "t0007"
down_revision: str | None = "t0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "llm_tokens",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("step_id", sa.String(64)),
        sa.Column("session_id", sa.String(64)),
        sa.Column("run_cap", sa.Numeric(12, 4)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_llm_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_llm_tokens_token_hash"),
        schema=TENANT_SCHEMA,
    )
    for column in ("run_id", "step_id", "session_id"):
        op.create_index(f"ix_llm_tokens_{column}", "llm_tokens", [column], schema=TENANT_SCHEMA)
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("call_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", postgresql.UUID(as_uuid=True)),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("step_id", sa.String(64)),
        sa.Column("session_id", sa.String(64)),
        sa.Column("model", sa.String(250), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("provider_kind", sa.String(16), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.SmallInteger, nullable=False),
        sa.Column("error", sa.String(1000), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cache_read_tokens", sa.Integer, nullable=False),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Numeric(20, 9), nullable=False),
        sa.Column("cost_approximate", sa.Boolean, nullable=False),
        sa.Column("first_token_ms", sa.Integer),
        sa.Column("total_ms", sa.Integer, nullable=False),
        sa.Column("stop_reason", sa.String(32)),
        sa.Column("tool_calls", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_llm_calls"),
        sa.UniqueConstraint("call_id", name="uq_llm_calls_call_id"),
        sa.CheckConstraint("status IN ('ok', 'error', 'refused')", name="ck_llm_calls_status"),
        schema=TENANT_SCHEMA,
    )
    for column in ("at", "agent_id", "run_id", "model"):
        op.create_index(f"ix_llm_calls_{column}", "llm_calls", [column], schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_table("llm_calls", schema=TENANT_SCHEMA)
    op.drop_table("llm_tokens", schema=TENANT_SCHEMA)
