"""SSO: verified e-mail domains replace allowed_domains; how identities were linked; per-session step-ups.

A workspace's listed domains become unverified domains (each with a fresh verification token): they count
again only once their owner publishes the DNS TXT record. Identities linked before this revision are marked
``legacy`` and hold only while their address's domain is verified by the workspace that linked them.

Revision ID: p0007
Revises: p0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "p0007"
down_revision: str | None = "p0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "sso_domains",
        sa.Column("id", UUID, nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("verified_at", TZ),
        sa.Column("last_checked_at", TZ),
        sa.Column("last_error", sa.String(500)),
        sa.PrimaryKeyConstraint("id", name="pk_sso_domains"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["public.workspaces.id"],
            name="fk_sso_domains_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("workspace_id", "domain", name="uq_sso_domains_workspace_id_domain"),
        sa.UniqueConstraint("token", name="uq_sso_domains_token"),
        schema="public",
    )
    op.create_index(
        "uq_sso_domains_verified_domain",
        "sso_domains",
        ["domain"],
        unique=True,
        schema="public",
        postgresql_where=sa.text("verified_at IS NOT NULL"),
    )
    # gen_random_uuid() is random (122 bits) and built in: a token nobody else has.
    op.execute(
        "INSERT INTO public.sso_domains (workspace_id, domain, token) "
        "SELECT c.workspace_id, d.domain, replace(gen_random_uuid()::text, '-', '') "
        "FROM public.sso_connections c CROSS JOIN LATERAL unnest(c.allowed_domains) AS d(domain) "
        "ON CONFLICT DO NOTHING"
    )
    op.drop_index("ix_sso_connections_allowed_domains", table_name="sso_connections", schema="public")
    op.drop_column("sso_connections", "allowed_domains", schema="public")
    op.add_column(
        "sso_connections",
        sa.Column("managed_accounts", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="public",
    )
    op.add_column(
        "sso_identities",
        sa.Column("link_method", sa.String(16), nullable=False, server_default="legacy"),
        schema="public",
    )

    op.create_table(
        "sso_step_ups",
        sa.Column("session_id", UUID, nullable=False),
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("identity_id", UUID, nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("session_id", "workspace_id", name="pk_sso_step_ups"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["public.user_sessions.id"], name="fk_sso_step_ups_session_id_user_sessions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["public.workspaces.id"], name="fk_sso_step_ups_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["public.sso_identities.id"], name="fk_sso_step_ups_identity_id_sso_identities",
            ondelete="CASCADE",
        ),
        schema="public",
    )  # fmt: skip
    op.create_index("ix_sso_step_ups_identity_id", "sso_step_ups", ["identity_id"], schema="public")


def downgrade() -> None:
    op.drop_table("sso_step_ups", schema="public")
    op.drop_column("sso_identities", "link_method", schema="public")
    op.drop_column("sso_connections", "managed_accounts", schema="public")
    op.add_column(
        "sso_connections",
        sa.Column(
            "allowed_domains",
            postgresql.ARRAY(sa.String(253)),
            nullable=False,
            server_default=sa.text("'{}'::varchar[]"),
        ),
        schema="public",
    )
    # Every domain goes back on the list, verified or not: that is what the list meant before.
    op.execute(
        "UPDATE public.sso_connections c SET allowed_domains = ARRAY("
        "SELECT d.domain FROM public.sso_domains d WHERE d.workspace_id = c.workspace_id ORDER BY d.domain)"
    )
    op.create_index(
        "ix_sso_connections_allowed_domains",
        "sso_connections",
        ["allowed_domains"],
        schema="public",
        postgresql_using="gin",
    )
    op.drop_table("sso_domains", schema="public")
