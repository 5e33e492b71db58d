"""Portal and NDXP clients against the simulator served by uvicorn: sessions, tokens, answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from schemas.dossier import DossierRecord, DossierStatus, RecordKind
from services.simulator.server import RunningSimulator, running_simulator
from services.simulator.simulator import Simulator
from services.sync.errors import (
    AuthenticationError,
    DestinationUnavailableError,
    RateLimitedError,
    RejectedError,
)
from services.sync.metrics import SyncMetrics
from services.sync.ndxp import NdxpClient
from services.sync.portal import PortalClient
from services.sync.settings import NdxpSettings, PortalSettings
from services.sync.transport import make_client
from tests.support.records import record

AGENCY = "000.00.10.H29"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(Simulator(seed=1)) as running:
        yield running


def _portal(
    running: RunningSimulator, **overrides: object
) -> tuple[PortalClient, httpx.AsyncClient]:
    options: dict[str, object] = {
        "url": running.portal_url,
        "password": SecretStr("secret"),
        "dstcode": "DVCQG",
        "madonvi": AGENCY,
        "linger_ms": 5,
    }
    settings = PortalSettings.model_validate(options | overrides)
    http = make_client(settings.url, timeout=5, max_connections=8)
    return PortalClient(settings, http, SyncMetrics(CollectorRegistry(), "portal")), http


def _ndxp(
    running: RunningSimulator,
    secret: str = "secret",  # noqa: S107
) -> tuple[NdxpClient, httpx.AsyncClient]:
    settings = NdxpSettings(url=running.ndxp_url, client_secret=SecretStr(secret))
    http = make_client(settings.url, timeout=5, max_connections=8)
    return NdxpClient(settings, http, SyncMetrics(CollectorRegistry(), "ndxp")), http


def _dossier(
    code: str, revision: int = 1, status: DossierStatus = DossierStatus.ACCEPTED
) -> DossierRecord:
    return record(code, revision, RecordKind.DOSSIER, status, n=1, agency=AGENCY)


async def test_portal_logs_in_once_and_shares_the_session(sim: RunningSimulator) -> None:
    client, http = _portal(sim)
    async with http:
        for n in range(5):
            await client.send(_dossier(f"HS-A{n}"), known=False)
    assert sim.simulator.state.logins == 1
    assert set(sim.simulator.state.portal) == {f"HS-A{n}" for n in range(5)}


async def test_portal_batches_concurrent_sends(sim: RunningSimulator) -> None:
    client, http = _portal(sim, linger_ms=50, batch_size=10)
    async with http:
        await asyncio.gather(*(client.send(_dossier(f"HS-B{n}"), known=False) for n in range(20)))
    calls = [c for c in sim.simulator.state.calls if c.service == "DongBoHoSoMC"]
    assert [len(c.dossiers) for c in calls] == [10, 10]


async def test_portal_refreshes_an_expired_session_once(sim: RunningSimulator) -> None:
    client, http = _portal(sim)
    async with http:
        await client.send(_dossier("HS-C1"), known=False)
        sim.simulator.expire_sessions()
        await client.send(_dossier("HS-C2"), known=False)
    assert sim.simulator.state.logins == 2
    assert "HS-C2" in sim.simulator.state.portal


async def test_portal_turns_exists_into_an_update(sim: RunningSimulator) -> None:
    sim.simulator.faults.existing_dossiers = {"HS-D1"}
    client, http = _portal(sim)
    async with http:
        assert await client.exists("HS-D1")
        assert not await client.exists("HS-D2")
        # After a restart the worker cannot know the dossier exists: "đã tồn tại" -> update.
        await client.send(_dossier("HS-D1", status=DossierStatus.IN_PROCESS), known=False)
        # Revision 2 of a dossier whose revision 1 never arrived: "không tồn tại" -> create.
        await client.send(_dossier("HS-D2", revision=2), known=True)
    assert sim.simulator.state.portal["HS-D1"].status == DossierStatus.IN_PROCESS
    assert sim.simulator.state.portal["HS-D2"].revision == 2


async def test_portal_rejection_names_only_the_bad_dossier_in_a_batch(
    sim: RunningSimulator,
) -> None:
    sim.simulator.faults.reject_dossiers = {"HS-E3"}
    client, http = _portal(sim, linger_ms=50)
    async with http:
        results = await asyncio.gather(
            *(client.send(_dossier(f"HS-E{n}"), known=False) for n in range(5)),
            return_exceptions=True,
        )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["RejectedError", "NoneType"]
    assert isinstance(results[3], RejectedError)
    assert "HS-E3" in results[3].answer


async def test_portal_wrong_password_is_an_authentication_error(sim: RunningSimulator) -> None:
    client, http = _portal(sim, password=SecretStr("wrong"))
    async with http:
        with pytest.raises(AuthenticationError):
            await client.send(_dossier("HS-F1"), known=False)


async def test_portal_429_and_outage_are_transient(sim: RunningSimulator) -> None:
    client, http = _portal(sim)
    async with http:
        sim.simulator.faults.rate_limit_rate = 1.0
        sim.simulator.faults.retry_after_seconds = 7
        with pytest.raises(RateLimitedError) as limited:
            await client.send(_dossier("HS-G1"), known=False)
        assert limited.value.retry_after == 7
        sim.simulator.faults.rate_limit_rate = 0
        sim.simulator.start_outage(5)
        with pytest.raises(DestinationUnavailableError):
            await client.send(_dossier("HS-G1"), known=False)


async def test_ndxp_caches_the_token_and_refreshes_it_once_on_401(sim: RunningSimulator) -> None:
    client, http = _ndxp(sim)
    async with http:
        await client.send(_dossier("HS-H1"), known=False)
        await client.send(_dossier("HS-H1", revision=2), known=True)
        assert sim.simulator.state.tokens_issued == 1
        sim.simulator.expire_tokens()
        await client.send(_dossier("HS-H1", revision=3), known=True)
        assert sim.simulator.state.tokens_issued == 2
    stored = sim.simulator.state.ndxp["HS-H1"]
    assert stored["revision"] == 3
    assert "applicant" not in stored["header"]


async def test_ndxp_refreshes_a_token_near_expiry(sim: RunningSimulator) -> None:
    sim.simulator.faults.token_ttl_seconds = 2  # the margin is capped at half the lifetime
    now = [0.0]
    settings = NdxpSettings(url=sim.ndxp_url, client_secret=SecretStr("secret"))
    async with make_client(settings.url, timeout=5, max_connections=2) as http:
        client = NdxpClient(
            settings, http, SyncMetrics(CollectorRegistry(), "ndxp"), clock=lambda: now[0]
        )
        await client.send(_dossier("HS-I1"), known=False)
        now[0] = 0.9
        await client.send(_dossier("HS-I1", revision=2), known=True)
        now[0] = 1.1
        await client.send(_dossier("HS-I1", revision=3), known=True)
    assert sim.simulator.state.tokens_issued == 2


async def test_ndxp_bad_secret_and_rejected_record(sim: RunningSimulator) -> None:
    sim.simulator.faults.reject_dossiers = {"HS-J2"}
    bad, http = _ndxp(sim, secret="nope")
    async with http:
        with pytest.raises(AuthenticationError):
            await bad.send(_dossier("HS-J1"), known=False)
    good, http = _ndxp(sim)
    async with http:
        with pytest.raises(RejectedError) as rejected:
            await good.send(_dossier("HS-J2"), known=False)
    assert "500" in str(rejected.value)
