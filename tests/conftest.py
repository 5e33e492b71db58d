"""Session-wide fixtures: the one Kafka broker every Kafka test uses, and fresh topic names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.common.settings import KafkaSettings
from tests.support.broker import kafka_bootstrap


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
