"""Workspaces log in as their own role: its password, sealed; no temporary tables for anyone but the owner.

The password column is filled by provisioning, and for older workspaces by ``marid migrate`` (which also
takes the application role out of their roles: see ``app.tenants.migrate``). Workspace roles may not
create temporary tables: a tenant session needs none, and ``TEMP`` is granted to PUBLIC by default.

Revision ID: p0009
Revises: p0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p0009"
down_revision: str | None = "p0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("db_password_enc", sa.Text()), schema="public")
    # Only the database's owner can change its privileges; elsewhere this is a warning, not an error.
    op.execute("DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$")


def downgrade() -> None:
    op.execute("DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END $$")
    op.drop_column("workspaces", "db_password_enc", schema="public")
