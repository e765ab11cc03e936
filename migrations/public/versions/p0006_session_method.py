"""Sessions remember how they were signed in (password or single sign-on).

Revision ID: p0006
Revises: p0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p0006"
down_revision: str | None = "p0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "user_sessions",
        sa.Column("auth_method", sa.String(16), nullable=False, server_default="password"),
        schema="public",
    )


def downgrade() -> None:
    op.drop_column("user_sessions", "auth_method", schema="public")
