"""Session-wide fixtures: the one Kafka broker every Kafka test uses, fresh topic names, and
the databases (SQLite and a real PostgreSQL) the scores tests run on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.settings import KafkaSettings
from tests.support.broker import kafka_bootstrap
from tests.support.database import fresh_database, postgres_server


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """The bootstrap address of the session's broker (see `tests/support/broker.py`)."""
    with kafka_bootstrap() as bootstrap:
        yield bootstrap


@pytest.fixture
def kafka_settings(kafka_broker: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_broker, request_timeout_ms=10_000)


@pytest.fixture
def unique() -> str:
    """A suffix that makes this test's topics and groups its own."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session (see `tests/support/database.py`), started lazily."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then the same test on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scores.sqlite3'}"
        return
    server: str = request.getfixturevalue("postgres_url")
    with fresh_database(server) as url:
        yield url
