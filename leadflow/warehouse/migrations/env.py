"""Alembic environment: runs on the connection `leadflow.warehouse.migrate` hands it."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table_schema="ops")
with context.begin_transaction():
    context.run_migrations()
