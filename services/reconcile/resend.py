"""Re-sending dossiers through the normal sync path: their records, re-published for the portal.

The records are the dossier's own `DossierRecord`s as ingest published them, found on the
normalised topic and published again to the partition they were read from (so after the
dossier's earlier records: the sync keeps its per-dossier order) with two headers:
`govsync-resend: portal` (only the portal sync delivers them; every other consumer skips them or,
like the scores service, finds them no newer than what it holds) and `govsync-resend-upto: N`,
the dossier's latest revision when the re-send was decided: the portal sync delivers a copy
although it acknowledged that revision already, but not once it has acknowledged a newer one
(the dossier moved on meanwhile, and the next sweep looks again). Retries, backoff, the circuit
breaker and the step gate stay the sync's.

Which records: for a dossier the portal does not hold, every one still on the topic, oldest
first (the portal rebuilds it from its header and steps); for one it holds differently, its
latest header and the records after it. The topic is read from its start once per re-send
round, keeping only the records of the dossiers asked for; a dossier with none left (retention)
cannot be re-sent and says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, ConfigDict, ValidationError

from services.common import topics
from services.common.kafka import read_to_end
from services.common.logging import get_logger
from services.reconcile.store import Resend

log = get_logger(__name__)

TARGET = "portal"
SCAN_TIMEOUT_SECONDS = 600.0


class _Header(BaseModel):
    """What a re-send reads of a record: which revision and kind it is."""

    model_config = ConfigDict(extra="ignore")

    revision: int
    kind: str


@dataclass(frozen=True, slots=True)
class Found:
    partition: int
    offset: int
    revision: int
    kind: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass(slots=True)
class History:
    """One dossier's records on the topic, by revision (the first copy of each)."""

    records: dict[int, Found] = field(default_factory=dict)

    def add(self, found: Found) -> None:
        self.records.setdefault(found.revision, found)

    def to_resend(self, *, missing: bool) -> list[Found]:
        """Everything (the portal holds nothing), else the latest header and what follows."""
        ordered = [self.records[r] for r in sorted(self.records)]
        if missing:
            return ordered
        headers = [i for i, f in enumerate(ordered) if f.kind == "dossier"]
        return ordered[headers[-1] :] if headers else ordered


def is_resend(headers: Iterable[tuple[str, bytes]]) -> bool:
    return any(name == topics.RESEND_HEADER for name, _ in headers)


async def read_histories(
    consumer: AIOKafkaConsumer, topic: str, codes: set[str]
) -> dict[str, History]:
    """The records of `codes` on `topic`, read from the start of every partition to its end now.

    `consumer` is started and in no group; it is assigned the partitions here. Re-sent copies
    are left out (they are the same records again).
    """
    found: dict[str, History] = {}
    if not codes:
        return found
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()  # no public refresh in aiokafka
        partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    # Records added while this reads are the dossiers' newer ones: wanted too.
    async with asyncio.timeout(SCAN_TIMEOUT_SECONDS):
        async for tp, messages in read_to_end(consumer, tps):
            for message in messages:
                _keep(found, codes, tp.partition, message)
    consumer.assign([])
    return found


def _keep(found: dict[str, History], codes: set[str], partition: int, message: Any) -> None:
    key = message.key
    if key is None or message.value is None:
        return
    code = key.decode(errors="replace")
    headers = tuple(message.headers or ())
    if code not in codes or is_resend(headers):
        return
    try:
        head = _Header.model_validate_json(message.value)
    except ValidationError:
        return  # the sync dead-letters it; nothing to re-send
    found.setdefault(code, History()).add(
        Found(partition, message.offset, head.revision, head.kind, key, message.value, headers)
    )


async def republish(
    producer: AIOKafkaProducer,
    topic: str,
    records: Iterable[Found],
    *,
    upto: int,
    reason: str,
) -> int:
    """Publish copies of `records` (one dossier's, in order) for the portal; waits until the
    broker has them all. Returns how many."""
    futures = []
    for found in records:
        headers = [
            *(h for h in found.headers if h[0] not in _OURS),
            (topics.RESEND_HEADER, TARGET.encode()),
            (topics.RESEND_UPTO_HEADER, str(upto).encode()),
            (_REASON, reason.encode()),
        ]
        futures.append(
            await producer.send(
                topic, value=found.value, key=found.key, partition=found.partition, headers=headers
            )
        )
    if futures:
        await asyncio.gather(*futures)
    return len(futures)


_REASON = "govsync-resend-reason"
_OURS = frozenset({topics.RESEND_HEADER, topics.RESEND_UPTO_HEADER, _REASON})


def plan(histories: Mapping[str, History], wanted: Mapping[str, bool]) -> dict[str, list[Found]]:
    """Per dossier code (value: whether the portal holds nothing of it) what to re-send."""
    return {
        code: histories[code].to_resend(missing=missing)
        for code, missing in wanted.items()
        if code in histories and histories[code].records
    }


class KafkaResender:
    """`sweep.Resender` on the broker: reads the normalised topic, publishes the copies."""

    def __init__(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, topic: str) -> None:
        """`consumer`: started, in no group (it is assigned partitions); `producer`: started."""
        self._consumer = consumer
        self._producer = producer
        self._topic = topic

    async def resend(self, wanted: Mapping[str, tuple[bool, int]]) -> dict[str, str]:
        histories = await read_histories(self._consumer, self._topic, set(wanted))
        chosen = plan(histories, {code: missing for code, (missing, _) in wanted.items()})
        done: dict[str, str] = {}
        for code, (missing, revision) in wanted.items():
            records = chosen.get(code)
            if not records:
                done[code] = Resend.NO_RECORD
                continue
            await republish(
                self._producer,
                self._topic,
                records,
                upto=revision,
                reason="missing" if missing else "different",
            )
            done[code] = Resend.SENT
        log.info(
            "dossiers re-sent for the portal",
            sent=sum(v == Resend.SENT for v in done.values()),
            without_record=sum(v == Resend.NO_RECORD for v in done.values()),
        )
        return done
