"""The outbox retries each message on its own schedule (backoff) and gives up on it after too many tries.

Revision ID: p0008
Revises: p0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p0008"
down_revision: str | None = "p0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


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


def downgrade() -> None:
    op.drop_index("ix_email_outbox_due", "email_outbox", schema="public")
    op.drop_column("email_outbox", "dead_at", schema="public")
    op.drop_column("email_outbox", "next_attempt_at", schema="public")
