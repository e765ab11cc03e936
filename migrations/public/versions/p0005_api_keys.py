"""API keys: personal and service keys of a workspace, stored as a SHA-256 next to a public lookup id.

Revision ID: p0005
Revises: p0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "p0005"
down_revision: str | None = "p0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", UUID, nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("lookup_id", sa.String(8), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("user_id", UUID),
        sa.Column("created_by", UUID),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ),
        sa.Column("last_used_at", TZ),
        sa.Column("last_used_ip", sa.String(64)),
        sa.Column("revoked_at", TZ),
        sa.Column("revoked_by", UUID),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["public.workspaces.id"], name="fk_api_keys_workspace_id_workspaces", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["public.users.id"], name="fk_api_keys_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["public.users.id"], name="fk_api_keys_created_by_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["public.users.id"], name="fk_api_keys_revoked_by_users", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("lookup_id", name="uq_api_keys_lookup_id"),
        sa.CheckConstraint("kind IN ('personal', 'service')", name=op.f("ck_api_keys_kind")),
        sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name=op.f("ck_api_keys_scope")),
        sa.CheckConstraint("(kind = 'personal') = (user_id IS NOT NULL)", name=op.f("ck_api_keys_owner")),
        schema="public",
    )
    op.create_index("ix_api_keys_workspace_id", "api_keys", ["workspace_id"], schema="public")
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"], schema="public")


def downgrade() -> None:
    op.drop_table("api_keys", schema="public")
