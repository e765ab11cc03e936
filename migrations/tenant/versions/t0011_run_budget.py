"""Each run's (and swarm's) LLM budget: a cap next to the monthly one.

Revision ID: t0011
Revises: t0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import TENANT_SCHEMA

revision: str = "t0011"
down_revision: str | None = "t0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("llm_budget", sa.Column("run_cap", sa.Numeric(12, 2)), schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_column("llm_budget", "run_cap", schema=TENANT_SCHEMA)
