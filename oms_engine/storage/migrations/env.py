"""Alembic environment: the connection comes from the OMS (see oms_engine.storage.migrate)."""

from __future__ import annotations

from alembic import context

from oms_engine.storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through 'oms init' (oms_engine.storage.migrate.upgrade)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
