"""Decides which Kafka-protocol broker the tests use and starts it once per session.

Order: `GOVSYNC_TEST_KAFKA` (an address to use as it is), then testcontainers' Kafka where a
Docker engine answers, then the embedded Tansu broker that `services.embedded` also runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from services.embedded import EmbeddedBroker


def _docker_available() -> bool:
    try:
        import docker  # noqa: PLC0415 - only needed where Docker might run

        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False
    return True


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """Yield a bootstrap address of a running broker; stop it afterwards if we started it."""
    external = os.environ.get("GOVSYNC_TEST_KAFKA")
    if external:
        yield external
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
