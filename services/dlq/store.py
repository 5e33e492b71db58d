"""Reading, selecting and replaying dead letters; used by `govsync dlq` and the sync admin API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common import deadletter
from services.common.masking import mask_personal_data

IDLE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters: every given condition must hold."""

    reason: str | None = None
    stage: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000

    def matches(self, letter: StoredLetter) -> bool:
        if self.reason and self.reason.casefold() not in letter.reason.casefold():
            return False
        if self.stage and letter.stage != self.stage:
            return False
        if self.source and letter.source != self.source:
            return False
        if self.since and (letter.at is None or letter.at < self.since):
            return False
        return not (self.until and (letter.at is None or letter.at >= self.until))


@dataclass(frozen=True, slots=True)
class StoredLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return ""

    @property
    def reason(self) -> str:
        return self.header(deadletter.REASON)

    @property
    def stage(self) -> str:
        return self.header(deadletter.STAGE)

    @property
    def source(self) -> str:
        return self.header(deadletter.SOURCE)

    @property
    def source_topic(self) -> str:
        return self.header(deadletter.SOURCE_TOPIC)

    @property
    def at(self) -> datetime | None:
        raw = self.header(deadletter.TIME)
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None

    def summary(self) -> dict[str, Any]:
        """What an operator may see: the dead-letter headers (already masked), never the value."""
        return {
            "partition": self.partition,
            "offset": self.offset,
            "key": mask_personal_data(self.key.decode(errors="replace")) if self.key else None,
            "reason": mask_personal_data(self.reason),
            "stage": self.stage,
            "error": self.header(deadletter.ERROR),
            "service": self.header(deadletter.SERVICE),
            "source": self.source or None,
            "source_topic": self.source_topic,
            "source_partition": self.header(deadletter.SOURCE_PARTITION),
            "source_offset": self.header(deadletter.SOURCE_OFFSET),
            "time": self.header(deadletter.TIME),
        }

    def replay_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(deadletter.HEADER_PREFIX)]


async def read_letters(
    reader_factory: Callable[[], AIOKafkaConsumer], topic: str, selection: Selection
) -> list[StoredLetter]:
    """Dead letters matching `selection`, oldest first per partition.

    Reads until every partition's reported end is reached and then nothing more arrives for a
    moment: some brokers report an end offset inside the last batch, so the end alone is no proof.
    """
    reader = reader_factory()
    await reader.start()
    try:
        partitions = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        found: list[StoredLetter] = []
        loop = asyncio.get_running_loop()
        last_data = loop.time()
        async with asyncio.timeout(120):
            while True:
                batches = await reader.getmany(*tps, timeout_ms=200)
                for tp, messages in batches.items():
                    for m in messages:
                        letter = StoredLetter(
                            tp.partition, m.offset, m.key, m.value, tuple(m.headers or ())
                        )
                        if selection.matches(letter) and len(found) < selection.limit:
                            found.append(letter)
                if batches:
                    last_data = loop.time()
                positions = [await reader.position(tp) for tp in tps]
                reached = all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True))
                if reached and loop.time() - last_data >= IDLE_SECONDS:
                    return found
    finally:
        await reader.stop()


@dataclass(frozen=True, slots=True)
class Replayed:
    replayed: int
    refused: int
    """Letters whose source topic is not one govsync reads (or is missing): left alone."""


async def replay(
    producer: AIOKafkaProducer, letters: list[StoredLetter], *, topics: frozenset[str]
) -> Replayed:
    """Re-publish each letter, untouched but for the dead-letter headers, to where it came from,
    if that is one of `topics` (`ServiceSettings.replay_topics()`): a header is anyone's word,
    and a record replayed to a state topic would be taken for govsync's memory."""
    futures = []
    refused = 0
    for letter in letters:
        if letter.source_topic not in topics:
            refused += 1
            continue
        futures.append(
            await producer.send(
                letter.source_topic,
                key=letter.key,
                value=letter.value,
                headers=letter.replay_headers(),
            )
        )
    for future in futures:
        await future
    return Replayed(replayed=len(futures), refused=refused)


def parse_time(text: str, *, name: str) -> datetime:
    """A selection bound: ISO 8601 with its offset; a time without one names no moment."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 time") from None
    return aware(moment, name=name)


def aware(moment: datetime, *, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} needs a UTC offset, e.g. 2026-01-01T00:00:00+07:00")
    return moment
