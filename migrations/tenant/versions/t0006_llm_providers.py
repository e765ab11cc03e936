"""LLM providers, the model catalogue with its prices, and the monthly budget.

Revision ID: t0006
Revises: t0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import TENANT_SCHEMA

revision: str = "t0006"
down_revision: str | None = "t0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRICE = sa.Numeric(12, 6)


def upgrade() -> None:
    op.create_table(
        "llm_providers",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("preset", sa.String(16), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("api_key_sealed", sa.Text),
        sa.Column("key_preview", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_tested_at", sa.DateTime(timezone=True)),
        sa.Column("last_test_ok", sa.Boolean),
        sa.Column("last_test_message", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_llm_providers"),
        sa.UniqueConstraint("slug", name="uq_llm_providers_slug"),
        sa.CheckConstraint("kind IN ('openai', 'anthropic')", name="ck_llm_providers_kind"),
        schema=TENANT_SCHEMA,
    )
    op.create_table(
        "llm_models",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("provider_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("input_price", _PRICE),
        sa.Column("output_price", _PRICE),
        sa.Column("cache_read_price", _PRICE),
        sa.Column("cache_write_price", _PRICE),
        sa.Column("context_window", sa.Integer),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("prices_as_of", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_llm_models"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            [f"{TENANT_SCHEMA}.llm_providers.id"],
            name="fk_llm_models_provider_id_llm_providers",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("provider_id", "name", name="uq_llm_models_provider_id_name"),
        schema=TENANT_SCHEMA,
    )
    op.create_index("ix_llm_models_provider_id", "llm_models", ["provider_id"], schema=TENANT_SCHEMA)
    op.create_table(
        "llm_budget",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("monthly_cap", sa.Numeric(12, 2)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_llm_budget"),
        sa.CheckConstraint("id = 1", name="ck_llm_budget_single_row"),
        schema=TENANT_SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("llm_budget", schema=TENANT_SCHEMA)
    op.drop_table("llm_models", schema=TENANT_SCHEMA)
    op.drop_table("llm_providers", schema=TENANT_SCHEMA)
