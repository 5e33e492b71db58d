"""Dead letters: the original record untouched, plus headers that say why and where it came from.

Both services write the same headers, so `govsync dlq` lists and replays either's dead letters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from services.common.masking import mask_personal_data

HEADER_PREFIX = "govsync-dlq-"
REASON = f"{HEADER_PREFIX}reason"
STAGE = f"{HEADER_PREFIX}stage"
ERROR = f"{HEADER_PREFIX}error"
SERVICE = f"{HEADER_PREFIX}service"
SOURCE = f"{HEADER_PREFIX}source"
SOURCE_TOPIC = f"{HEADER_PREFIX}source-topic"
SOURCE_PARTITION = f"{HEADER_PREFIX}source-partition"
SOURCE_OFFSET = f"{HEADER_PREFIX}source-offset"
TIME = f"{HEADER_PREFIX}time"

MAX_REASON_CHARS = 1000

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record was read; enough to find it again and to replay it to the same topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class DeadLetter:
    origin: Origin
    reason: str
    stage: str
    error: str
    service: str
    at: datetime
    source: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """The original headers, then ours; our reason never carries personal data."""
        reason = mask_personal_data(self.reason)[:MAX_REASON_CHARS]
        ours = [
            (REASON, reason.encode()),
            (STAGE, self.stage.encode()),
            (ERROR, self.error.encode()),
            (SERVICE, self.service.encode()),
            (SOURCE_TOPIC, self.origin.topic.encode()),
            (SOURCE_PARTITION, str(self.origin.partition).encode()),
            (SOURCE_OFFSET, str(self.origin.offset).encode()),
            (TIME, self.at.isoformat().encode()),
        ]
        if self.source is not None:
            ours.append((SOURCE, mask_personal_data(self.source)[:1024].encode()))
        kept = [(k, v) for k, v in self.origin.headers if not k.startswith(HEADER_PREFIX)]
        return kept + ours


class DeadLetterWriter:
    """Writes dead letters to one topic; the caller awaits the broker's acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    @property
    def topic(self) -> str:
        return self._topic

    async def send(self, letter: DeadLetter) -> asyncio.Future[Any]:
        """Queue the dead letter; await the returned future for the broker's acknowledgement."""
        future: asyncio.Future[Any] = await self._producer.send(
            self._topic,
            value=letter.origin.value,
            key=letter.origin.key,
            headers=letter.headers(),
        )
        return future

    async def write(self, letter: DeadLetter) -> None:
        await (await self.send(letter))
