"""Finished dossiers leave memory for the archive by govsync's own clock, and come back as
themselves; open ones stay, across a restart (issue 12, finding 2).

On main, eviction compared the source's time of the last change with the clock, so a dossier
backfilled from January was evicted within a minute however recently it arrived, and any later
event started it again at revision 1 (counted again, dropped as stale by sync).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import orjson
import pytest

from services.common.settings import KafkaSettings
from services.ingest.dossiers.state import DossierState
from tests.support.ingest import ingest_settings, metric_value, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.kafka


def event(code: str, status: int, event_id: str, time: str = "2026-01-02T08:00:00+07:00") -> Sent:
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:vn:gov:dvc:test",
        "type": "vn.gov.dvc.dossier.v1",
        "time": time,
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": code, "TrangThaiHoSo": status},
    }
    return Sent(json.dumps(body).encode(), code.encode())


async def metrics_when(base_url: str, name: str, at_least: float) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client, asyncio.timeout(20):
        while True:
            metrics = (await client.get("/metrics")).text
            if metric_value(metrics, name) >= at_least:
                return metrics
            await asyncio.sleep(0.2)


async def test_backfilled_dossiers_stay_for_the_retention_by_govsyncs_clock(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = ingest_settings(
        kafka_settings,
        unique,
        finished_retention=timedelta(seconds=30),
        eviction_interval_seconds=0.5,
    )
    await create_topics(kafka_settings, settings.topic_dossier, partitions=3)
    # Finished in January: on main these were evicted at the first pass.
    await produce(kafka_settings, settings.topic_dossier, [event("BF-1", 10, "b1")])
    async with running_ingest(settings) as base_url:
        await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=1)
        await asyncio.sleep(1.5)  # three eviction passes
        async with httpx.AsyncClient(base_url=base_url) as client:
            metrics = (await client.get("/metrics")).text
    assert metric_value(metrics, "govsync_ingest_dossiers_evicted_total") == 0
    assert metric_value(metrics, "govsync_ingest_dossiers_tracked") == 1


async def test_finished_dossiers_are_archived_and_come_back_as_themselves(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = ingest_settings(
        kafka_settings,
        unique,
        finished_retention=timedelta(seconds=1),
        eviction_interval_seconds=0.5,
    )
    await create_topics(kafka_settings, settings.topic_dossier, partitions=3)
    stream = [event(f"EV-{i}", 10 if i % 2 else 4, f"e{i}") for i in range(20)]
    await produce(kafka_settings, settings.topic_dossier, stream)
    async with running_ingest(settings) as base_url:
        await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=20)
        metrics = await metrics_when(base_url, "govsync_ingest_dossiers_evicted_total", 10)
    assert metric_value(metrics, "govsync_ingest_dossiers_evicted_total") == 10
    assert metric_value(metrics, "govsync_ingest_dossiers_tracked") == 10
    assert metric_value(metrics, "govsync_ingest_dossiers_archived") == 10
    # The state topic holds archive entries (not tombstones) for the evicted.
    states = await read_topic(kafka_settings, settings.topic_state, at_least=30)
    latest = {r.key: r.value for r in states}
    archived = {
        k for k, v in latest.items() if v is not None and DossierState.from_bytes(v).archived
    }
    assert archived == {f"EV-{i}".encode() for i in range(1, 20, 2)}

    # After a restart: the archive is restored; the same snapshot again is a duplicate, a
    # replay of the first event too, and a new change continues at revision 2.
    again = [
        event("EV-1", 10, "replayed-with-a-new-id"),
        stream[1],
        event("EV-3", 9, "e3-reopened", time="2026-01-03T08:00:00+07:00"),
    ]
    await produce(kafka_settings, settings.topic_dossier, again)
    async with running_ingest(settings) as base_url:
        restored = await metrics_when(base_url, "govsync_events_total", 0)
        records = await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=21)
        metrics = await metrics_when(base_url, "govsync_ingest_dossiers_evicted_total", 1)
    assert metric_value(restored, "govsync_ingest_dossiers_archived") >= 9
    returned = [orjson.loads(r.value or b"") for r in records if r.key == b"EV-3"]
    assert [(r["revision"], r["status"]) for r in returned] == [(1, 10), (2, 9)]
    assert not [r for r in records[20:] if r.key == b"EV-1"]
    outcomes = {
        o: metric_value(metrics, "govsync_events_total", type="vn.gov.dvc.dossier.v1", outcome=o)
        for o in ("accepted", "duplicate", "stale")
    }
    assert outcomes == {"accepted": 1, "duplicate": 2, "stale": 0}
