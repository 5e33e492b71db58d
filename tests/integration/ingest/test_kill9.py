"""`kill -9` of the ingest process mid-stream, then a restart: no accepted event is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from services.common.settings import KafkaSettings
from services.localrun.broker import free_port
from tests.support.kafka import Sent, create_topics, produce, read_topic, topic_partitions

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DOSSIERS = 300
CHANGES = 10
ROOT = Path(__file__).resolve().parents[3]


def events() -> list[Sent]:
    sent = []
    for change in range(CHANGES):
        for d in range(DOSSIERS):
            code = f"K9-{d:05d}"
            event = {
                "specversion": "1.0",
                "id": f"{code}-{change}",
                "source": "urn:vn:gov:dvc:test",
                "type": "vn.gov.dvc.dossier.v1",
                "time": f"2026-11-{change + 2:02d}T08:00:00+07:00",
                "agency": "000.00.00.G22",
                "data": {"MaHoSo": code, "TrangThaiHoSo": 2 + change % 3, "GhiChu": f"c{change}"},
            }
            sent.append(Sent(json.dumps(event).encode(), code.encode()))
    return sent


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services", "ingest"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for_records(settings: KafkaSettings, topic: str, count: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, topic, within=60)
        async with asyncio.timeout(60):
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            seen = 0
            while seen < count:
                batch = await consumer.getmany(timeout_ms=200)
                seen += sum(len(m) for m in batch.values())
    finally:
        await consumer.stop()


async def test_kill_9_loses_nothing(kafka_settings: KafkaSettings, unique: str) -> None:
    topics = {
        "GOVSYNC_TOPIC_DOSSIER": f"k9-in-{unique}",
        "GOVSYNC_TOPIC_DOSSIER_NORMALIZED": f"k9-out-{unique}",
        "GOVSYNC_TOPIC_DLQ": f"k9-dlq-{unique}",
        "GOVSYNC_TOPIC_STATE": f"k9-state-{unique}",
    }
    env = {
        **os.environ,
        **topics,
        "GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "GOVSYNC_HTTP_PORT": str(free_port()),
        "GOVSYNC_HTTP_HOST": "127.0.0.1",
        "GOVSYNC_CONSUMER_GROUP": f"k9-{unique}",
        "GOVSYNC_TOPIC_PARTITIONS": "3",
        "GOVSYNC_MAX_BATCH_EVENTS": "50",
    }
    sent = events()
    await create_topics(kafka_settings, *topics.values(), partitions=3)
    await produce(kafka_settings, topics["GOVSYNC_TOPIC_DOSSIER"], sent)

    kills = 0
    for fraction in (0.2, 0.5):
        process = start(env)
        try:
            await wait_for_records(
                kafka_settings,
                topics["GOVSYNC_TOPIC_DOSSIER_NORMALIZED"],
                int(len(sent) * fraction),
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    survivor = start(env)
    try:
        records = await read_topic(
            kafka_settings,
            topics["GOVSYNC_TOPIC_DOSSIER_NORMALIZED"],
            at_least=len(sent),
            within=120,
            idle=2.0,
        )
    finally:
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) == 0, "ingest did not stop cleanly on SIGTERM"

    decoded = [orjson.loads(r.value or b"") for r in records]
    ids = Counter(r["event_id"] for r in decoded)
    assert set(ids) == {orjson.loads(s.value or b"")["id"] for s in sent}, "an event was lost"
    revisions: dict[str, set[int]] = defaultdict(set)
    for record in decoded:
        revisions[record["dossier_code"]].add(record["revision"])
    assert all(r == set(range(1, CHANGES + 1)) for r in revisions.values())
    repeats = sum(ids.values()) - len(ids)
    print(f"\nkill -9: {kills} crashes, 0 lost, {repeats} repeated records of {len(sent)}")  # noqa: T201
