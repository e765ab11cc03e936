"""Mail sent on behalf of a workspace (invitations) records which one, so delivery shows in its activity.

Revision ID: p0004
Revises: p0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p0004"
down_revision: str | None = "p0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("email_outbox", sa.Column("workspace_id", sa.String(12)), schema="public")
    op.create_foreign_key(
        "fk_email_outbox_workspace_id_workspaces",
        "email_outbox",
        "workspaces",
        ["workspace_id"],
        ["id"],
        source_schema="public",
        referent_schema="public",
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint("fk_email_outbox_workspace_id_workspaces", "email_outbox", schema="public")
    op.drop_column("email_outbox", "workspace_id", schema="public")
