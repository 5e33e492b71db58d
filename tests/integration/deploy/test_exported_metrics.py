"""Every metric a recording rule, an alert or the dashboard reads is one the services export.

The names come from the running services' `/metrics`, not from a list kept by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from services.common.settings import KafkaSettings
from services.localrun.broker import free_port
from services.scores.main import run as run_scores
from services.scores.settings import ScoresOptions, ScoresSettings
from services.simulator.server import RunningSimulator, running_simulator
from services.sync.main import run as run_sync
from services.sync.settings import NdxpSettings, PortalSettings, SyncSettings, Target
from tests.deploy.support import metric_names_used
from tests.support.ingest import ingest_settings, running_ingest, wait_ready

pytestmark = pytest.mark.kafka


def families(text: str) -> set[str]:
    """Family names as rules use them: counters with `_total`, histograms by family."""
    return {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(text)
    }


@asynccontextmanager
async def running_sync(
    kafka: KafkaSettings, sim: RunningSimulator, unique: str, target: Target
) -> AsyncIterator[str]:
    port = free_port()
    settings = SyncSettings(
        kafka=kafka,
        allow_http=True,
        portal=PortalSettings(url=sim.portal_url, password=SecretStr("secret"), dstcode="DVCQG"),
        ndxp=NdxpSettings(url=sim.ndxp_url, client_secret=SecretStr("secret")),
        topic_dossier_normalized=f"normalized-{unique}",
        topic_dlq=f"dlq-{unique}",
        acked_topic_template=f"acked.{{target}}.{unique}",
        group_prefix=f"metrics-{unique}-",
        http_host="127.0.0.1",
        http_port=port,
        shutdown_budget_seconds=5,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_sync(settings, target, stop))
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


@asynccontextmanager
async def running_scores(kafka: KafkaSettings, unique: str, database: Path) -> AsyncIterator[str]:
    port = free_port()
    settings = ScoresSettings(
        kafka=kafka,
        topic_dossier_normalized=f"normalized-{unique}",
        topic_edocument_normalized=f"edocuments-normalized-{unique}",
        topic_dlq=f"dlq-{unique}",
        acked_topic_template=f"acked.{{target}}.{unique}",
        consumer_group=f"metrics-{unique}-scores",
        scores=ScoresOptions(database_url=f"sqlite:///{database}"),
        http_host="127.0.0.1",
        http_port=port,
        shutdown_budget_seconds=5,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_scores(settings, stop))
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


async def test_rules_and_dashboard_read_only_exported_metrics(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    exported: set[str] = set()
    async with (
        running_simulator() as sim,
        running_ingest(ingest_settings(kafka_settings, unique)) as ingest_url,
        running_sync(kafka_settings, sim, unique, Target.PORTAL) as portal_url,
        running_sync(kafka_settings, sim, unique, Target.NDXP) as ndxp_url,
        running_scores(kafka_settings, unique, tmp_path / "scores.sqlite3") as scores_url,
        httpx.AsyncClient() as client,
    ):
        for url in (ingest_url, portal_url, ndxp_url, scores_url):
            response = await client.get(f"{url}/metrics")
            assert response.status_code == 200
            exported |= families(response.text)
    used = metric_names_used() - {"up"}
    assert used, "the rules and the dashboard read no metric at all"
    assert used <= exported, f"read but never exported: {sorted(used - exported)}"
