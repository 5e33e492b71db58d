"""A worker's writes for one fetched batch, grouped per partition into producer batches.

aiokafka's `send` costs about 15 µs a record in Python (a future, the partitioner, the
accumulator's bookkeeping); appending to a `BatchBuilder` costs about 1 µs (C). A worker that
writes a fetched batch's outputs together queues them here and submits one producer batch per
partition with `send_batch`: one delivery future per batch. Within a partition the records keep
the order they were queued in; a key's partition is the one `send` would give it (the
producer's partitioner over the same partition list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from services.common.partitioner import partition_for_key

Headers = Sequence[tuple[str, bytes]]


class PartitionBatches:
    """Records queued for `flush`, which hands them to the producer."""

    def __init__(self, producer: AIOKafkaProducer, *, max_batch_bytes: int) -> None:
        self._producer = producer
        self._max_batch_bytes = max_batch_bytes
        self._queued: list[
            tuple[str, int | None, bytes | None, bytes | None, list[tuple[str, bytes]]]
        ] = []

    def __len__(self) -> int:
        return len(self._queued)

    def add(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        partition: int | None = None,
        headers: Headers = (),
    ) -> None:
        """Queue one record: to `partition`, or to its key's."""
        # A list: the C batch builder takes nothing else.
        self._queued.append((topic, partition, key, value, list(headers)))

    async def flush(self) -> list[asyncio.Future[Any]]:
        """Submit every queued record; the futures that resolve once the broker has them all."""
        queued, self._queued = self._queued, []
        partitions: dict[str, list[int]] = {}
        builders: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for topic, partition, key, value, headers in queued:
            if partition is None:
                known = partitions.get(topic)
                if known is None:
                    # The producer's own order of them, so the partitioner picks as in `send`.
                    known = partitions[topic] = list(await self._producer.partitions_for(topic))
                partition = partition_for_key(key, known, known)
            size = len(value or b"") + len(key or b"")
            if size * 2 > self._max_batch_bytes:
                # A large record (an edXML package) goes on its own, with `send`'s size checks,
                # after what its partition already holds.
                await self._submit(
                    builders.pop((topic, partition), None), topic, partition, futures
                )
                futures.append(
                    await self._producer.send(
                        topic, value=value, key=key, partition=partition, headers=headers
                    )
                )
                continue
            builder = builders.get((topic, partition))
            if builder is None:
                builder = builders[(topic, partition)] = self._producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                await self._submit(builder, topic, partition, futures)  # full: the next one
                builder = builders[(topic, partition)] = self._producer.create_batch()
                builder.append(timestamp=None, key=key, value=value, headers=headers)
        for (topic, partition), builder in builders.items():
            await self._submit(builder, topic, partition, futures)
        return futures

    async def _submit(
        self, builder: Any, topic: str, partition: int, futures: list[asyncio.Future[Any]]
    ) -> None:
        if builder is not None and builder.record_count():
            futures.append(await self._producer.send_batch(builder, topic, partition=partition))
