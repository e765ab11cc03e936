"""Single sign-on: a workspace's OpenID Connect provider, and identities linked by (issuer, subject).

Revision ID: p0003
Revises: p0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "p0003"
down_revision: str | None = "p0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "sso_connections",
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_enc", sa.Text, nullable=False),
        sa.Column(
            "allowed_domains",
            postgresql.ARRAY(sa.String(253)),
            nullable=False,
            server_default=sa.text("'{}'::varchar[]"),
        ),
        sa.Column("default_role", sa.String(16), nullable=False, server_default="member"),
        sa.Column("enforce_sso", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("last_tested_at", TZ),
        sa.Column("last_test_ok", sa.Boolean),
        sa.Column("last_test_error", sa.String(500)),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_sso_connections"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["public.workspaces.id"],
            name="fk_sso_connections_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        schema="public",
    )
    op.create_index(
        "ix_sso_connections_allowed_domains",
        "sso_connections",
        ["allowed_domains"],
        schema="public",
        postgresql_using="gin",
    )

    op.create_table(
        "sso_identities",
        sa.Column("id", UUID, nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("email_at_link", sa.String(320), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("last_login_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_sso_identities"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["public.users.id"], name="fk_sso_identities_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["public.workspaces.id"],
            name="fk_sso_identities_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("issuer", "subject", name="uq_sso_identities_issuer_subject"),
        schema="public",
    )
    op.create_index("ix_sso_identities_user_id", "sso_identities", ["user_id"], schema="public")
    op.create_index("ix_sso_identities_workspace_id", "sso_identities", ["workspace_id"], schema="public")


def downgrade() -> None:
    op.drop_table("sso_identities", schema="public")
    op.drop_table("sso_connections", schema="public")
