"""Alembic environment: always called programmatically with an open connection (guard.audit.store)."""

from __future__ import annotations

from alembic import context

from guard.audit.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
