"""Kafka clients built from `KafkaSettings`: security options, producers, consumers and topics,
the one broker-reachability check the services' readiness uses, and reading partitions to their
end."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import ConsumerRecord

from services.common import topics
from services.common.partitioner import partition_for_key
from services.common.settings import KafkaSettings, SecurityProtocol


class KafkaTlsConfigError(ValueError):
    """The TLS files configured for Kafka cannot be loaded. Not retryable: fix the settings."""


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
            certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            password=(
                settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
            ),
        )
    except (ssl.SSLError, OSError) as exc:
        # OpenSSL's own message ("PEM lib") names neither the file nor the cause.
        files = ", ".join(
            f"{name}={path}"
            for name, path in (
                ("ssl_cafile", settings.ssl_cafile),
                ("ssl_certfile", settings.ssl_certfile),
                ("ssl_keyfile", settings.ssl_keyfile),
            )
            if path
        )
        raise KafkaTlsConfigError(
            f"cannot load the Kafka TLS files ({files}): a wrong ssl_key_password, a key that "
            f"does not match the certificate, or an unreadable file ({type(exc).__name__})"
        ) from exc
    context.check_hostname = settings.ssl_check_hostname
    return context


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security keyword arguments shared by every aiokafka client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol.value,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.security_protocol in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
        options["ssl_context"] = _ssl_context(settings)
    if settings.security_protocol in (SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT):
        options["sasl_mechanism"] = settings.sasl_mechanism.value
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


PRODUCER_BATCH_BYTES = 1024 * 1024
"""The producers' `max_batch_size`."""


def make_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas: nothing acknowledged can be lost."""
    options = client_options(settings) | {
        "acks": "all",
        "linger_ms": 5,
        # edXML packages carry their attachments (10 MiB by default, more if configured): the
        # topics' `max.message.bytes` must allow as much.
        "max_request_size": 32 * 1024 * 1024,
        "compression_type": None,
        # aiokafka's 16 KiB default fills after a dozen dossier records, and a full batch makes
        # the next send wait for the one in flight: a third of ingest's time in the benchmark.
        "max_batch_size": PRODUCER_BATCH_BYTES,
        "partitioner": partition_for_key,
    }
    return AIOKafkaProducer(**(options | overrides))


def make_consumer(
    settings: KafkaSettings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that never commits on its own: the worker commits what it has finished."""
    options = client_options(settings) | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_uncommitted",
        "max_poll_records": 500,
        "fetch_max_bytes": 16 * 1024 * 1024,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
    }
    return AIOKafkaConsumer(*topics, **(options | overrides))


async def broker_reachable(producer: AIOKafkaProducer, *, timeout_seconds: float = 2.0) -> bool:
    """The cluster answers a metadata request now.

    For readiness: a consumer that stops hearing from the broker sees only empty fetches, which
    cannot be told from an idle topic; a metadata round trip can.
    """
    try:
        async with asyncio.timeout(timeout_seconds):
            await producer.client.fetch_all_metadata()
    except Exception:  # noqa: BLE001 - any failure means "not reachable now"
        return False
    return True


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = topics.DEFAULT_PARTITIONS
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)

    @classmethod
    def compacted(cls, name: str, partitions: int, replication_factor: int = 1) -> TopicSpec:
        return cls(name, partitions, replication_factor, {"cleanup.policy": "compact"})


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec]) -> None:
    """Create the topics that do not exist yet; existing ones are left exactly as they are."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config or None)
            for s in specs
            if s.name not in existing
        ]
        if missing:
            # Another replica may create them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


async def partition_count(settings: KafkaSettings, topic: str) -> int:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        return len(described[0]["partitions"])
    finally:
        await admin.close()


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    *,
    timeout_ms: int = 300,
    max_records: int = 5000,
) -> AsyncIterator[tuple[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
    """Every record of `partitions` from the start to their end now, a fetched run at a time.

    Assigns `partitions` to `consumer` (started, in no group). A partition is done once its
    position reached the end offset reported at the start and then a fetch brought nothing
    more: a broker may report a partition's end as its last batch's base offset + 1 (the
    embedded Tansu does), and the rest of that batch is wanted too. Trusting the reported end
    alone restored a dossier state from the middle of its last batch: a restart after kill -9
    then gave revisions twice.
    """
    if not partitions:
        return
    consumer.assign(list(partitions))
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(list(partitions))
    reading = {tp for tp in partitions if ends[tp] > 0}
    while reading:
        fetched = await consumer.getmany(*reading, timeout_ms=timeout_ms, max_records=max_records)
        for tp, records in fetched.items():
            yield tp, records
        for tp in list(reading):
            if tp not in fetched and await consumer.position(tp) >= ends[tp]:
                reading.discard(tp)
