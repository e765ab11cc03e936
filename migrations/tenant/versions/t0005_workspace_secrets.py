"""Workspace secrets (sealed values, masked previews) and their grants to agents.

Revision ID: t0005
Revises: t0004
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import TENANT_SCHEMA

revision: str = "t0005"
down_revision: str | None = "t0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), nullable=False, server_default=""),
        sa.Column("sealed_value", sa.Text, nullable=False),
        sa.Column("preview", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", postgresql.UUID(as_uuid=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_by", postgresql.UUID(as_uuid=True)),
        sa.Column("value_updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_secrets"),
        sa.UniqueConstraint("name", name="uq_secrets_name"),
        schema=TENANT_SCHEMA,
    )
    op.create_table(
        "secret_grants",
        sa.Column("secret_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("agent_id", sa.String(48), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", postgresql.UUID(as_uuid=True)),
        sa.PrimaryKeyConstraint("secret_id", "agent_id", name="pk_secret_grants"),
        sa.ForeignKeyConstraint(
            ["secret_id"],
            [f"{TENANT_SCHEMA}.secrets.id"],
            name="fk_secret_grants_secret_id_secrets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], [f"{TENANT_SCHEMA}.agents.id"], name="fk_secret_grants_agent_id_agents", ondelete="CASCADE"
        ),
        schema=TENANT_SCHEMA,
    )
    op.create_index("ix_secret_grants_agent_id", "secret_grants", ["agent_id"], schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_table("secret_grants", schema=TENANT_SCHEMA)
    op.drop_table("secrets", schema=TENANT_SCHEMA)
