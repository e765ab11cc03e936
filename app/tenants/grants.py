"""What a workspace role may do in its own schema: the whole grant set, applied after every DDL change.

The application role owns each workspace schema and everything in it, so the workspace role holds only the
privileges listed here (an owner's rights could not be taken away from it: it could drop triggers, disable
them, or alter its tables). Applied in full after provisioning and after every tenant migration, in the same
transaction, so a new table is never left without (or with too many) privileges.
"""

from __future__ import annotations

from app.db import quote_ident, schema_for

# Tables the workspace may add to and read, never change: history. Mark the model too
# (``__table_args__ = {"info": {"append_only": True}}``); a test checks the two agree.
APPEND_ONLY_TABLES: frozenset[str] = frozenset({"audit_events"})
# Alembic's bookkeeping: readable (the app compares revisions), changed only by migrations.
READ_ONLY_TABLES: frozenset[str] = frozenset({"alembic_version"})


def grants_sql(workspace_id: str) -> str:
    schema = quote_ident(schema_for(workspace_id))
    role = schema  # the role has the schema's name
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    ]
    for table in sorted(APPEND_ONLY_TABLES):
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{quote_ident(table)} FROM {role}")
    for table in sorted(READ_ONLY_TABLES):
        statements.append(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.{quote_ident(table)} FROM {role}")
    return ";".join(statements) + ";"
