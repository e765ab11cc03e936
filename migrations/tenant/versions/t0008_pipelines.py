"""Pipelines and their versions (every save is a version; runs pin one).

Revision ID: t0008
Revises: t0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import TENANT_SCHEMA

revision: str = "t0008"
down_revision: str | None = "t0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        schema=TENANT_SCHEMA,
    )
    op.create_table(
        "pipeline_versions",
        sa.Column("pipeline_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("created_by_label", sa.String(200), nullable=False, server_default=""),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            [f"{TENANT_SCHEMA}.pipelines.id"],
            name="fk_pipeline_versions_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "number", name="pk_pipeline_versions"),
        schema=TENANT_SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("pipeline_versions", schema=TENANT_SCHEMA)
    op.drop_table("pipelines", schema=TENANT_SCHEMA)
