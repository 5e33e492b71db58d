"""Small helpers for tests (and benchmarks) on a real broker: unique names, produce, read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import TopicSpec, client_options, ensure_topics
from services.common.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Sent:
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic and group name of one test or benchmark run, unique to it."""

    dossier: str
    normalized: str
    dlq: str
    state: str
    edocument: str
    edocument_normalized: str
    edocument_ledger: str
    acked_template: str
    ingest_group: str
    sync_group_prefix: str

    @classmethod
    def unique(cls, prefix: str, unique: str) -> Topics:
        return cls(
            dossier=f"{prefix}.dossier.{unique}",
            normalized=f"{prefix}.normalized.{unique}",
            dlq=f"{prefix}.dlq.{unique}",
            state=f"{prefix}.state.{unique}",
            edocument=f"{prefix}.edoc.{unique}",
            edocument_normalized=f"{prefix}.edoc-normalized.{unique}",
            edocument_ledger=f"{prefix}.edoc-ledger.{unique}",
            acked_template=f"{prefix}.sync.{{target}}.acked.{unique}",
            ingest_group=f"{prefix}-ingest-{unique}",
            sync_group_prefix=f"{prefix}-sync-{unique}-",
        )

    def acked(self, target: str) -> str:
        return self.acked_template.format(target=target)

    def ingest_env(self) -> dict[str, str]:
        """The environment that puts `govsync ingest` on these topics and its group."""
        return {
            "GOVSYNC_TOPIC_DOSSIER": self.dossier,
            "GOVSYNC_TOPIC_DOSSIER_NORMALIZED": self.normalized,
            "GOVSYNC_TOPIC_DLQ": self.dlq,
            "GOVSYNC_TOPIC_STATE": self.state,
            "GOVSYNC_TOPIC_EDOCUMENT": self.edocument,
            "GOVSYNC_TOPIC_EDOCUMENT_NORMALIZED": self.edocument_normalized,
            "GOVSYNC_TOPIC_EDOCUMENT_LEDGER": self.edocument_ledger,
            "GOVSYNC_CONSUMER_GROUP": self.ingest_group,
        }

    def sync_env(self) -> dict[str, str]:
        """The environment that puts `govsync sync` on these topics and its groups."""
        return {
            "GOVSYNC_TOPIC_DOSSIER_NORMALIZED": self.normalized,
            "GOVSYNC_TOPIC_DLQ": self.dlq,
            "GOVSYNC_ACKED_TOPIC_TEMPLATE": self.acked_template,
            "GOVSYNC_GROUP_PREFIX": self.sync_group_prefix,
        }


async def create_topics(settings: KafkaSettings, *names: str, partitions: int = 3) -> None:
    await ensure_topics(settings, [TopicSpec(n, partitions) for n in names])


async def produce(settings: KafkaSettings, topic: str, records: Iterable[Sent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers))
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    settings: KafkaSettings, topic: str, *, at_least: int, within: float = 30.0, idle: float = 0.5
) -> list[Received]:
    """Read a topic from the beginning until `at_least` records arrived, then until idle.

    Records are counted, not compared with end offsets: the embedded broker reports a
    partition's end as its last batch's base offset + 1.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    received: list[Received] = []
    try:
        partitions = await topic_partitions(settings, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(within):
            while True:
                batch = await consumer.getmany(timeout_ms=int(idle * 1000))
                for tp, messages in batch.items():
                    received.extend(
                        Received(tp.topic, tp.partition, m.offset, m.key, m.value, dict(m.headers))
                        for m in messages
                    )
                if not batch and len(received) >= at_least:
                    return received
    except TimeoutError:
        raise AssertionError(
            f"{topic}: {len(received)} records after {within}s, expected at least {at_least}"
        ) from None
    finally:
        await consumer.stop()


async def topic_partitions(
    settings: KafkaSettings, topic: str, within: float = 30.0
) -> list[TopicPartition]:
    """The topic's partitions, waiting for the topic to exist (a service may create it).

    Asked of the cluster each time: a consumer's own metadata does not learn of topics that
    were created after it started.
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        async with asyncio.timeout(within):
            while True:
                if topic in await admin.list_topics():
                    described = await admin.describe_topics([topic])
                    found = [p["partition"] for p in described[0].get("partitions", [])]
                    if found:
                        return [TopicPartition(topic, p) for p in sorted(found)]
                await asyncio.sleep(0.1)
    finally:
        await admin.close()
