"""Audit entries name their actor (kind and label, as they were) and the outbox row they were relayed from.

Only added columns with constant defaults: no row is rewritten (the log is append-only; its trigger refuses
UPDATE even to the owner), so entries made before keep NULL kinds and empty labels.

Revision ID: t0003
Revises: t0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import TENANT_SCHEMA

revision: str = "t0003"
down_revision: str | None = "t0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("actor_kind", sa.String(16)), schema=TENANT_SCHEMA)
    op.add_column(
        "audit_events",
        sa.Column("actor_label", sa.String(200), nullable=False, server_default=""),
        schema=TENANT_SCHEMA,
    )
    op.add_column("audit_events", sa.Column("outbox_id", sa.BigInteger), schema=TENANT_SCHEMA)
    op.create_unique_constraint("uq_audit_events_outbox_id", "audit_events", ["outbox_id"], schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_constraint("uq_audit_events_outbox_id", "audit_events", schema=TENANT_SCHEMA)
    op.drop_column("audit_events", "outbox_id", schema=TENANT_SCHEMA)
    op.drop_column("audit_events", "actor_label", schema=TENANT_SCHEMA)
    op.drop_column("audit_events", "actor_kind", schema=TENANT_SCHEMA)
