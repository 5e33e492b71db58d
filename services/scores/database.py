"""The scores database: the engine for a URL (SQLite file or PostgreSQL through psycopg 3) and
the Alembic migrations, run on start or by `govsync scores migrate`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(url: str, password: str | None = None) -> URL:
    """`postgresql://` means psycopg 3; a password from a Secret replaces the URL's own."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if password is not None and parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(password=password)
    return parsed


def make_engine(url: str | URL, *, pool_size: int = 5) -> Engine:
    """An engine; SQLite files get WAL (readers do not wait for the writer) and a busy timeout."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=False
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with NORMAL is durable against a crash of the process (not of the OS); the Kafka
        # offsets are committed after the transaction, so a lost tail is replayed, never skipped.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


# Alembic's `context` is one module global for the process: two scores services migrating at
# once in one process (local runs in one test session) would share it.
_MIGRATING = threading.Lock()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    with _MIGRATING:
        command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
