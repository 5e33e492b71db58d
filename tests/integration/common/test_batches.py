"""`PartitionBatches` on the real broker: each key on the partition a plain producer gives it,
each partition's records in the order queued, large records and full batches included."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.batches import PartitionBatches
from services.common.kafka import TopicSpec, ensure_topics, make_producer, read_to_end
from services.common.settings import KafkaSettings

pytestmark = pytest.mark.kafka

Records = dict[int, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]]

PARTITIONS = 3
BATCH_BYTES = 4096
"""Small, so that batches fill and some records count as large."""


async def _read(bootstrap: str, topic: str) -> Records:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: Records = defaultdict(list)
    try:
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        async for tp, records in read_to_end(consumer, wanted):
            for r in records:
                found[tp.partition].append((r.key, r.value, list(r.headers)))
    finally:
        await consumer.stop()
    return found


async def test_keys_partitions_and_order_as_a_plain_producer(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    batched, plain = f"batches.{unique}", f"batches.plain.{unique}"
    await ensure_topics(
        kafka_settings, [TopicSpec(batched, PARTITIONS), TopicSpec(plain, PARTITIONS)]
    )
    bootstrap = kafka_settings.bootstrap_servers
    keys = [f"H{n:05d}".encode() for n in range(40)]
    # Sizes from a few bytes to three times the batch: small ones fill builders, large ones go
    # on their own.
    values = [
        (f"{key.decode()}:{i}:".encode() + b"x" * ((i * 613 + n * 97) % (3 * BATCH_BYTES)))
        for i in range(6)
        for n, key in enumerate(keys)
    ]
    sent = [(v.split(b":")[0], v) for v in values]
    producer = make_producer(kafka_settings, max_batch_size=BATCH_BYTES)
    oracle = AIOKafkaProducer(bootstrap_servers=bootstrap)  # aiokafka's own partitioner
    await producer.start()
    await oracle.start()
    try:
        batches = PartitionBatches(producer, max_batch_bytes=BATCH_BYTES)
        for key, value in sent:
            batches.add(batched, value, key=key, headers=(("kind", b"test"),))
        batches.add(batched, b"explicit", key=b"pinned", partition=2)
        assert len(batches) == len(sent) + 1
        futures = await batches.flush()
        assert len(batches) == 0
        await asyncio.gather(*futures)
        await asyncio.gather(*[await oracle.send(plain, b"", key=key) for key in keys])
    finally:
        await producer.stop()
        await oracle.stop()

    got, expected = await _read(bootstrap, batched), await _read(bootstrap, plain)
    oracle_partition = {key: p for p, records in expected.items() for key, _, _ in records}
    assert len(oracle_partition) == len(keys)
    assert sum(len(records) for records in got.values()) == len(sent) + 1
    assert (b"pinned", b"explicit", [("kind", b"test")]) not in got[2]
    assert (b"pinned", b"explicit", []) in got[2]
    for partition, records in got.items():
        queued_here = [
            value
            for key, value in sent
            if key in oracle_partition and oracle_partition[key] == partition
        ]
        assert [value for key, value, _ in records if key != b"pinned"] == queued_here
        for key, _, headers in records:
            if key != b"pinned":
                assert oracle_partition[key] == partition
                assert headers == [("kind", b"test")]


async def test_nothing_queued_nothing_sent(kafka_settings: KafkaSettings) -> None:
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        assert await PartitionBatches(producer, max_batch_bytes=BATCH_BYTES).flush() == []
    finally:
        await producer.stop()
