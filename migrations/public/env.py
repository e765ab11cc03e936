"""Alembic environment for the platform tables in ``public``.

``marid migrate`` passes an open connection in ``config.attributes["connection"]``; nothing here opens one.
"""

from alembic import context

from app.models import PublicBase

config = context.config

if context.is_offline_mode():
    context.configure(
        dialect_name="postgresql",
        target_metadata=PublicBase.metadata,
        literal_binds=True,
        version_table_schema="public",
    )
else:
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=PublicBase.metadata,
        version_table_schema="public",
    )

with context.begin_transaction():
    context.run_migrations()
