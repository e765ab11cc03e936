"""Accounts: e-mail verification, 2FA, recovery codes, password resets, session timeouts, invitations, outbox.

Revision ID: p0002
Revises: p0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "p0002"
down_revision: str | None = "p0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", TZ), schema="public")
    op.add_column("users", sa.Column("password_changed_at", TZ), schema="public")
    op.add_column("users", sa.Column("totp_secret_enc", sa.String(512)), schema="public")
    op.add_column("users", sa.Column("totp_enabled_at", TZ), schema="public")
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger), schema="public")

    op.add_column("user_sessions", sa.Column("expires_at", TZ, nullable=False), schema="public")
    op.add_column(
        "user_sessions",
        sa.Column("authenticated_at", TZ, nullable=False, server_default=sa.func.now()),
        schema="public",
    )

    op.add_column(
        "workspaces",
        sa.Column("require_2fa", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="public",
    )

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("used_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_recovery_codes"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["public.users.id"], name="fk_recovery_codes_user_id_users", ondelete="CASCADE"
        ),
        schema="public",
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"], schema="public")

    op.create_table(
        "password_resets",
        sa.Column("id", UUID, nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_password_resets"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["public.users.id"], name="fk_password_resets_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("token_hash", name="uq_password_resets_token_hash"),
        schema="public",
    )
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"], schema="public")

    op.create_table(
        "invitations",
        sa.Column("id", UUID, nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("workspace_id", sa.String(12), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("invited_by", UUID),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("accepted_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["public.workspaces.id"],
            name="fk_invitations_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["public.users.id"], name="fk_invitations_invited_by_users", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("token_hash", name="uq_invitations_token_hash"),
        schema="public",
    )
    op.create_index("ix_invitations_workspace_id", "invitations", ["workspace_id"], schema="public")

    op.create_table(
        "email_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", TZ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(500)),
        sa.PrimaryKeyConstraint("id", name="pk_email_outbox"),
        schema="public",
    )
    op.create_index("ix_email_outbox_to_address", "email_outbox", ["to_address"], schema="public")


def downgrade() -> None:
    op.drop_table("email_outbox", schema="public")
    op.drop_table("invitations", schema="public")
    op.drop_table("password_resets", schema="public")
    op.drop_table("recovery_codes", schema="public")
    op.drop_column("workspaces", "require_2fa", schema="public")
    op.drop_column("user_sessions", "authenticated_at", schema="public")
    op.drop_column("user_sessions", "expires_at", schema="public")
    for column in ("totp_last_step", "totp_enabled_at", "totp_secret_enc", "password_changed_at", "email_verified_at"):
        op.drop_column("users", column, schema="public")
