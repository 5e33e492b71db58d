"""Runs the ingest service in-process for a test, on unique topics and a free port."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.common.settings import KafkaSettings
from services.ingest.main import run
from services.ingest.settings import IngestSettings
from services.localrun.broker import free_port

API_KEY = "test-key-0123456789"
API_SOURCES = ["urn:vn:gov:dvc:test"]


def ingest_settings(kafka: KafkaSettings, unique: str, **overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "kafka": kafka,
        "http_host": "127.0.0.1",
        "http_port": free_port(),
        "topic_dossier": f"dossier-{unique}",
        "topic_dossier_normalized": f"normalized-{unique}",
        "topic_dlq": f"dlq-{unique}",
        "topic_state": f"state-{unique}",
        "topic_edocument": f"edoc-{unique}",
        "topic_edocument_normalized": f"edoc-normalized-{unique}",
        "topic_edocument_ledger": f"edoc-ledger-{unique}",
        "consumer_group": f"ingest-{unique}",
        "topic_partitions": 3,
        "api_keys": {hashlib.sha256(API_KEY.encode()).hexdigest(): API_SOURCES},
        "max_event_bytes": 64 * 1024,
        "max_request_bytes": 256 * 1024,
    }
    return IngestSettings(**(values | overrides))


async def wait_ready(base_url: str, within: float = 30.0) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client, asyncio.timeout(within):
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@asynccontextmanager
async def running_ingest(settings: IngestSettings) -> AsyncIterator[str]:
    """Run the service until the block ends; yields its base URL once it is ready."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    base_url = f"http://127.0.0.1:{settings.http_port}"
    try:
        ready = asyncio.create_task(wait_ready(base_url))
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()
            raise AssertionError("ingest stopped before it was ready")
        ready.result()
        yield base_url
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` with exactly `labels` in Prometheus text (0 when absent).

    Read with prometheus_client's own parser, as the local run's and the benchmarks' scrapes are.
    """
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
