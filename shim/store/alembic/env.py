"""Alembic's entry point: online on the connection shim.store.migrate hands it, or offline SQL."""

from __future__ import annotations

from alembic import context

from shim.store.models import Base

config = context.config
# SQLite alters tables by copying them: batch mode makes later revisions work on both databases.
options = {"target_metadata": Base.metadata, "render_as_batch": True, "compare_type": True}

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
else:
    # shim.store.migrate hands over the connection it holds the migration lock on.
    context.configure(connection=config.attributes["connection"], **options)

with context.begin_transaction():
    context.run_migrations()
