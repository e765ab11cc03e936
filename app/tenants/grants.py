"""What a workspace role may do in its own schema.

The application role owns each workspace schema and everything in it, so the workspace role holds only the
privileges given here (an owner's rights could not be taken away from it: it could drop or disable
triggers, or alter its tables). Default privileges, set when the schema is made, give the workspace role
read and write access to every table and sequence the application role creates in it later; tables that
must not be changed lose those rights again by name after every migration.

Why default privileges rather than ``GRANT ... ON ALL TABLES IN SCHEMA``: that form finds the tables with a
sequential scan of ``pg_class``, whose size grows with every workspace, so provisioning would cost O(N).
"""

from __future__ import annotations

from app.db import quote_ident, schema_for

# Tables the workspace may add to and read, never change: history. Mark the model too
# (``__table_args__ = {"info": {"append_only": True}}``); a test checks the two agree.
APPEND_ONLY_TABLES: frozenset[str] = frozenset({"audit_events", "llm_calls"})
# Alembic's bookkeeping: readable (the app compares revisions), changed only by migrations.
READ_ONLY_TABLES: frozenset[str] = frozenset({"alembic_version"})

_WRITE = "SELECT, INSERT, UPDATE, DELETE"


def _names(workspace_id: str) -> tuple[str, str]:
    schema = quote_ident(schema_for(workspace_id))
    return schema, schema  # the role has the schema's name


def default_privileges_sql(workspace_id: str) -> str:
    """Run right after ``CREATE SCHEMA``, as the application role that will create the tables."""
    schema, role = _names(workspace_id)
    return (
        f"GRANT USAGE ON SCHEMA {schema} TO {role};"
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {_WRITE} ON TABLES TO {role};"
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role};"
    )


def existing_objects_sql(workspace_id: str) -> str:
    """Grants on what already exists (a schema converted from the first design). Scans pg_class: run rarely."""
    schema, role = _names(workspace_id)
    return (
        f"GRANT {_WRITE} ON ALL TABLES IN SCHEMA {schema} TO {role};"
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};"
    )


def restrictions_sql(workspace_id: str) -> str:
    """Take back what the default privileges gave on history and bookkeeping; after every DDL change."""
    schema, role = _names(workspace_id)
    statements = [
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{quote_ident(table)} FROM {role}"
        for table in sorted(APPEND_ONLY_TABLES)
    ] + [
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.{quote_ident(table)} FROM {role}"
        for table in sorted(READ_ONLY_TABLES)
    ]
    return "".join(statement + ";" for statement in statements)
