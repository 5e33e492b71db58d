"""Finished dossiers leave memory and the state topic; open ones stay, across a restart."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest

from services.common.settings import KafkaSettings
from tests.support.ingest import ingest_settings, metric_value, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.kafka


def event(code: str, status: int, event_id: str) -> Sent:
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:vn:gov:dvc:test",
        "type": "vn.gov.dvc.dossier.v1",
        "time": "2026-01-02T08:00:00+07:00",
        "data": {"MaHoSo": code, "TrangThaiHoSo": status},
    }
    return Sent(json.dumps(body).encode(), code.encode())


async def test_finished_dossiers_are_evicted(kafka_settings: KafkaSettings, unique: str) -> None:
    settings = ingest_settings(
        kafka_settings,
        unique,
        finished_retention=timedelta(seconds=1),
        eviction_interval_seconds=0.5,
    )
    await create_topics(kafka_settings, settings.topic_dossier, partitions=3)
    # Events from January: long past the one-second retention by the time they are processed.
    stream = [event(f"EV-{i}", 10 if i % 2 else 4, f"e{i}") for i in range(20)]
    await produce(kafka_settings, settings.topic_dossier, stream)
    async with running_ingest(settings) as base_url:
        await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=20)
        async with httpx.AsyncClient(base_url=base_url) as client:
            for _ in range(50):
                metrics = (await client.get("/metrics")).text
                if metric_value(metrics, "govsync_ingest_dossiers_evicted_total") >= 10:
                    break
                await asyncio.sleep(0.2)
    assert metric_value(metrics, "govsync_ingest_dossiers_evicted_total") == 10
    assert metric_value(metrics, "govsync_ingest_dossiers_tracked") == 10
    # The state topic holds tombstones for the evicted: a restart restores only the open ones.
    states = await read_topic(kafka_settings, settings.topic_state, at_least=30)
    tombstones = {r.key for r in states if r.value is None}
    assert tombstones == {f"EV-{i}".encode() for i in range(1, 20, 2)}
    async with running_ingest(settings) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        metrics = (await client.get("/metrics")).text
    assert metric_value(metrics, "govsync_ingest_dossiers_tracked") == 10
