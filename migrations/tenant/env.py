"""Alembic environment for workspace schemas.

Tenant revisions are rendered once as SQL (offline mode) against the placeholder schema, and that SQL is run
in every workspace schema by :mod:`app.tenants.migrate`; Alembic never replays Python per workspace.
Revisions must name the schema with ``TENANT_SCHEMA`` (``op.create_table(..., schema=TENANT_SCHEMA)``).
"""

from alembic import context

from app.db import TENANT_SCHEMA
from app.models import TenantBase

if not context.is_offline_mode():
    raise RuntimeError("tenant revisions are applied by `marid migrate`, not by alembic directly")

context.configure(
    dialect_name="postgresql",
    target_metadata=TenantBase.metadata,
    literal_binds=True,
    version_table_schema=TENANT_SCHEMA,
    # The runner wraps each workspace in its own transaction.
    transactional_ddl=False,
)

with context.begin_transaction():
    context.run_migrations()
