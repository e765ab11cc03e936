"""One data key per workspace, stored wrapped by a master key (the secrets service, ``app.security.secrets``).

Rows appear lazily, when a workspace first seals a secret; `marid keys rotate` re-wraps them.

Revision ID: p0011
Revises: p0010
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p0011"
down_revision: str | None = "p0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workspace_keys",
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=False),
        sa.Column("master_key_id", sa.String(8), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("rotated_at", TZ),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_workspace_keys"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["public.workspaces.id"],
            name="fk_workspace_keys_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        schema="public",
    )


def downgrade() -> None:
    op.drop_table("workspace_keys", schema="public")
