"""The audit log is append-only, enforced by Postgres.

The workspace role owns ``audit_events`` (it creates it), and an owner's rights cannot be revoked from it, so
a trigger refuses every UPDATE, DELETE and TRUNCATE instead: a query bug (or raw SQL) running as the
workspace role cannot rewrite history. Dropping the schema (deleting the workspace) fires no trigger.

Revision ID: t0002
Revises: t0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

from app.db import TENANT_SCHEMA

revision: str = "t0002"
down_revision: str | None = "t0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        f"CREATE FUNCTION {TENANT_SCHEMA}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        # No % placeholders: the rendered SQL would double them.
        "  RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',\n"
        "    MESSAGE = 'permission denied: the audit log is append-only (' || TG_OP || ' refused)';\n"
        "END;\n"
        "$$"
    )
    op.execute(
        f"CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON {TENANT_SCHEMA}.audit_events "
        f"FOR EACH ROW EXECUTE FUNCTION {TENANT_SCHEMA}.audit_append_only()"
    )
    op.execute(
        f"CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON {TENANT_SCHEMA}.audit_events "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {TENANT_SCHEMA}.audit_append_only()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_truncate ON {TENANT_SCHEMA}.audit_events")
    op.execute(f"DROP TRIGGER IF EXISTS audit_events_append_only ON {TENANT_SCHEMA}.audit_events")
    op.execute(f"DROP FUNCTION IF EXISTS {TENANT_SCHEMA}.audit_append_only()")
