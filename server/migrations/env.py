"""Alembic environment: migrations run on the connection `telerehab.server.db`
passes in, so SQLite and PostgreSQL go through the same code."""

from __future__ import annotations

from alembic import context

from telerehab.server.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through telerehab (`telerehab db upgrade`)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
)
with context.begin_transaction():
    context.run_migrations()
