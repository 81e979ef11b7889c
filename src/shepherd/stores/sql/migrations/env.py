"""Alembic environment: migrations run on a connection handed in by ``engine.migrate``.

There is no URL here: the caller owns the engine (SQLite or PostgreSQL, async) and passes a
synchronous connection through ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from shepherd.stores.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
