"""`govsync dlq list|replay` against the broker: selection, masking, headers stripped on replay."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from services.common import deadletter
from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.settings import KafkaSettings
from services.dlq.command import DlqSettings, run
from services.dlq.store import Selection

pytestmark = pytest.mark.kafka


async def test_list_masks_and_replay_restores_the_original(
    kafka_settings: KafkaSettings, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source_topic, dlq_topic = f"dlq.src.{unique}", f"dlq.{unique}"
    await ensure_topics(kafka_settings, [TopicSpec(source_topic, 2), TopicSpec(dlq_topic, 2)])
    now = datetime.now(UTC)
    async with make_producer(kafka_settings) as producer:
        writer = DeadLetterWriter(producer, dlq_topic)
        for n, stage in enumerate(("sync-portal", "sync-ndxp", "normalize")):
            await writer.write(
                DeadLetter(
                    origin=Origin(
                        source_topic, 0, n, f"HS-{n}".encode(), b'{"x": 1}', [("trace", b"t")]
                    ),
                    reason="portal refused: phone 0912345678",
                    stage=stage,
                    error="RejectedError",
                    service="govsync-sync-portal",
                    at=now - timedelta(minutes=n),
                    source="src-a",
                )
            )
    # The source topic is one govsync reads: only those are replayed to.
    settings = DlqSettings(kafka=kafka_settings, topic_dlq=dlq_topic, topic_dossier=source_topic)

    assert await run(settings, "list", Selection(source="src-a")) == 3
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {entry["stage"] for entry in listed} == {"sync-portal", "sync-ndxp", "normalize"}
    assert all("0912345678" not in json.dumps(entry) for entry in listed)

    selection = Selection(stage="sync-portal", since=now - timedelta(seconds=30))
    assert await run(settings, "replay", selection) == 1
    consumer = make_consumer(kafka_settings, group_id=None)
    async with consumer:
        tps = [TopicPartition(source_topic, p) for p in range(2)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        replayed: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(10):
            while not replayed:
                for messages in (await consumer.getmany(*tps, timeout_ms=200)).values():
                    replayed.extend(messages)
    assert [(m.key, m.value) for m in replayed] == [(b"HS-0", b'{"x": 1}')]
    headers = dict(replayed[0].headers)
    assert headers == {"trace": b"t"}
    assert not any(key.startswith(deadletter.HEADER_PREFIX) for key in headers)
