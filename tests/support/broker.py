"""Decides which Kafka-protocol broker the tests use and starts it once per session.

Order: `GOVSYNC_TEST_KAFKA` (an address to use as it is), then testcontainers' Kafka where a
Docker engine answers, then the embedded Tansu broker that `services.localrun.broker` also runs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from services.localrun.broker import EmbeddedBroker


def _docker_available() -> bool:
    """A Docker engine answers on its socket (or DOCKER_HOST is set, trusted as given)."""
    if os.environ.get("DOCKER_HOST"):
        return True
    path = "/var/run/docker.sock"
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return sock.recv(64).split(b" ")[1:2] == [b"200"]
        except OSError:
            return False


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """Yield a bootstrap address of a running broker; stop it afterwards if we started it."""
    external = os.environ.get("GOVSYNC_TEST_KAFKA")
    if external:
        yield external
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
