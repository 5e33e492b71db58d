"""Two portal adapters, unchanged, pointed at govsync's `/dvcqg` instead of the portal: the
simulator's portal ends up holding exactly what the same adapters leave on it directly.

Direct: adapters → simulator. Through govsync: adapters → ingest `/dvcqg` → Kafka → ingest worker
→ sync (portal, NDXP) → simulator. Only the URL differs. The portal's holdings (agency, status,
header, steps, number of header updates) must be equal; NDXP, which the adapters never reach
directly, must hold each dossier at the status the portal holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.common.settings import KafkaSettings
from services.ingest.dvcqg.accounts import hash_password
from services.ingest.settings import DvcqgAccount
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator
from services.sync.main import prepare_topics
from services.sync.main import run as run_sync
from services.sync.settings import (
    DeliverySettings,
    NdxpSettings,
    PortalSettings,
    SyncSettings,
    Target,
)
from tests.integration.sync.helpers import wait_until
from tests.support.adapters import (
    ChunkedProgressAdapter,
    OpenCpsLikeAdapter,
    PortalAccess,
    dossier_lives,
)
from tests.support.ingest import ingest_settings, running_ingest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USERNAME, PASSWORD = "govsync", "secret"  # the simulator's own credentials
HUE, HANOI = "000.00.20.H57", "000.00.10.H29"
DOSSIERS = 10


def lives(base: datetime) -> dict[str, list[Any]]:
    return {
        HUE: dossier_lives("H57.20-OPENCPS", DOSSIERS, base),
        HANOI: dossier_lives("H29.10-CHUNKED", DOSSIERS, base),
    }


async def drive(url: str, plan: dict[str, list[Any]]) -> list[str]:
    """Both adapters through every change, round by round; returns what they saw fail."""
    access = PortalAccess(url, USERNAME, PASSWORD)
    async with httpx.AsyncClient(timeout=15) as http:
        opencps = OpenCpsLikeAdapter(access, http, HUE)
        chunked = ChunkedProgressAdapter(access, http, HANOI)
        rounds = max(len(life) for life in [*plan[HUE], *plan[HANOI]])
        for r in range(rounds):
            for life in plan[HUE]:
                if r < len(life):
                    opencps.record(life[r])
            for life in plan[HANOI]:
                if r < len(life):
                    chunked.record(life[r])
            await opencps.run_once()
            await chunked.poll()
    return opencps.failures + chunked.failures


def holdings(sim: Simulator) -> dict[str, tuple[Any, ...]]:
    return {
        code: (d.madonvi, d.status, d.header, d.steps, d.updates)
        for code, d in sim.state.portal.items()
    }


def sync_settings(
    kafka: KafkaSettings, portal_url: str, ndxp_url: str, topics: tuple[str, str], unique: str
) -> SyncSettings:
    normalized, dlq = topics
    return SyncSettings(
        kafka=kafka,
        allow_http=True,
        portal=PortalSettings(
            url=portal_url, password=SecretStr(PASSWORD), dstcode="000.00.00.G22", linger_ms=10
        ),
        ndxp=NdxpSettings(url=ndxp_url, client_secret=SecretStr("secret")),
        delivery=DeliverySettings(commit_interval_seconds=0.2, backoff_max_seconds=0.5),
        topic_dossier_normalized=normalized,
        topic_dlq=dlq,
        acked_topic_template=f"test.sync.{{target}}.acked.{unique}",
        group_prefix=f"test-sync-{unique}-",
        http_port=0,
        shutdown_budget_seconds=10,
    )


@contextlib.asynccontextmanager
async def govsync(kafka: KafkaSettings, unique: str, sim: Simulator) -> AsyncIterator[str]:
    """ingest (with `/dvcqg`) and both sync workers in front of `sim`; yields the /dvcqg URL."""
    account = DvcqgAccount(password_hash=hash_password(PASSWORD), agencies=frozenset({HUE, HANOI}))
    settings = ingest_settings(kafka, unique, dvcqg_accounts={USERNAME: account})
    async with running_simulator(sim) as running, running_ingest(settings) as base_url:
        sync = sync_settings(
            kafka,
            running.portal_url,
            running.ndxp_url,
            (settings.topic_dossier_normalized, settings.topic_dlq),
            unique,
        )
        stop = asyncio.Event()
        workers = []
        for target in Target:
            await prepare_topics(sync, target)
            workers.append(asyncio.create_task(run_sync(sync, target, stop, serve_http=False)))
        try:
            yield f"{base_url}/dvcqg"
        finally:
            stop.set()
            async with asyncio.timeout(20):
                results = await asyncio.gather(*workers, return_exceptions=True)
            assert [r for r in results if r is not None] == []


async def test_adapters_leave_the_same_portal_through_govsync(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    plan = lives(base)

    direct = Simulator(seed=1)
    async with running_simulator(direct) as running:
        assert await drive(running.portal_url, plan) == []
    expected = holdings(direct)
    # Independently of both runs: every dossier, with every step the plan holds.
    steps = {c.code: 0 for life in [*plan[HUE], *plan[HANOI]] for c in life}
    for life in [*plan[HUE], *plan[HANOI]]:
        for change in life:
            steps[change.code] += len(change.steps)
    assert {code: len(held[3]) for code, held in expected.items()} == steps

    via = Simulator(seed=1)
    async with govsync(kafka_settings, unique, via) as url:
        assert await drive(url, plan) == []

        async def delivered() -> bool:
            portal, ndxp = via.state.portal, via.state.ndxp
            return all(
                code in portal
                and len(portal[code].steps) == len(held[3])
                and portal[code].status == held[1]
                and ndxp.get(code, {}).get("status") == held[1]
                for code, held in expected.items()
            )

        await wait_until(delivered, within=90, interval=0.2)

    assert holdings(via) == expected
    assert {code: body["status"] for code, body in via.state.ndxp.items()} == {
        code: held[1] for code, held in expected.items()
    }
    assert via.state.regressions == []
