"""Alembic environment: migrations run on the connection the archive opened."""

from alembic import context

from host_tools.archive_db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
