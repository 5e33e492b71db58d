"""Alembic's environment for the scores database: the engine comes from the caller
(`services.scores.database.migrate`), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from services.scores.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):  # pragma: no cover - only ever run through migrate()
    raise RuntimeError("run the scores migrations through services.scores.database.migrate")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
