"""A restore reads a compacted topic to its true end, whatever end offset the broker reports.

The embedded Tansu reports a partition's end as its last batch's base offset + 1. Ingest's
restore stopped there: with a last batch longer than one fetch (500 records), the states of its
tail were read from older records or not at all, and a restart after kill -9 gave revisions
twice (the fault suite saw it in three dossiers of one run).
"""

from __future__ import annotations

import asyncio

import pytest

from services.common.kafka import make_consumer, make_producer
from services.common.settings import KafkaSettings
from services.ingest.worker import read_compacted
from tests.support.kafka import create_topics

pytestmark = pytest.mark.kafka

RECORDS = 1_200
"""More than two fetches (500 records each) in what the producer sends as one batch."""


async def test_the_whole_of_a_long_last_batch_is_restored(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    topic = f"restore-{unique}"
    await create_topics(kafka_settings, topic, partitions=1)
    producer = make_producer(kafka_settings, linger_ms=500)
    await producer.start()
    try:
        # Every key written twice, the second time as the last of one long batch; every tenth
        # deleted after that, so a reader that stops early keeps it.
        expected: dict[str, bytes] = {}
        sends = []
        for round_ in (1, 2):
            for n in range(RECORDS // 2):
                key, value = f"D-{n:05d}", f"{round_}-{n}".encode()
                sends.append(await producer.send(topic, key=key.encode(), value=value, partition=0))
                expected[key] = value
        for n in range(0, RECORDS // 2, 10):
            key = f"D-{n:05d}"
            sends.append(await producer.send(topic, key=key.encode(), value=None, partition=0))
            del expected[key]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    consumer = make_consumer(kafka_settings, group_id=None)
    await consumer.start()
    try:
        restored = await read_compacted(consumer, topic, {0})
    finally:
        await consumer.stop()
    assert restored == {0: expected}
