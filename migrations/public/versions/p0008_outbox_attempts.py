"""The outbox retries each message on its own schedule (backoff) and gives up on it after too many tries; account
events (sign-ins, resets, 2FA changes) get a log of their own, per person, instead of every workspace's audit log.

Revision ID: p0008
Revises: p0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "p0008"
down_revision: str | None = "p0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.add_column(
        "email_outbox", sa.Column("next_attempt_at", TZ, nullable=False, server_default=sa.func.now()), schema="public"
    )
    op.add_column("email_outbox", sa.Column("dead_at", TZ), schema="public")
    op.create_index(
        "ix_email_outbox_due",
        "email_outbox",
        ["next_attempt_at"],
        schema="public",
        postgresql_where=sa.text("sent_at IS NULL AND dead_at IS NULL"),
    )
    # The old sender stopped trying after 8 attempts without saying so: those messages are dead.
    op.execute("UPDATE public.email_outbox SET dead_at = now() WHERE sent_at IS NULL AND attempts >= 8")

    op.create_table(
        "account_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(400), nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_events"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["public.users.id"], name="fk_account_events_user_id_users", ondelete="CASCADE"
        ),
        schema="public",
    )
    op.create_index("ix_account_events_user_id_id", "account_events", ["user_id", "id"], schema="public")


def downgrade() -> None:
    op.drop_table("account_events", schema="public")
    op.drop_index("ix_email_outbox_due", "email_outbox", schema="public")
    op.drop_column("email_outbox", "dead_at", schema="public")
    op.drop_column("email_outbox", "next_attempt_at", schema="public")
