"""What a person chooses and Marid remembers for them: their time zone (times are shown in it), the workspace they
last used (sign-in goes back there); and mail gets an HTML part next to its text.

Revision ID: p0012
Revises: p0011
Create Date: 2026-12-15
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p0012"
down_revision: str | None = "p0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "" means "the browser's zone" (and UTC without one).
    op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=False, server_default=""), schema="public")
    op.add_column("users", sa.Column("last_workspace_id", sa.String(12)), schema="public")
    op.create_foreign_key(
        "fk_users_last_workspace_id_workspaces",
        "users",
        "workspaces",
        ["last_workspace_id"],
        ["id"],
        source_schema="public",
        referent_schema="public",
        ondelete="SET NULL",
    )
    op.add_column("email_outbox", sa.Column("body_html", sa.Text()), schema="public")


def downgrade() -> None:
    op.drop_column("email_outbox", "body_html", schema="public")
    op.drop_constraint("fk_users_last_workspace_id_workspaces", "users", schema="public", type_="foreignkey")
    op.drop_column("users", "last_workspace_id", schema="public")
    op.drop_column("users", "time_zone", schema="public")
