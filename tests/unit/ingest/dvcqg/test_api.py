"""The /dvcqg routes on the real ingest app with a sink of our own: what a broker outage and
repeated failed logins look like (the Kafka tests cover the rest)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.api import Outgoing
from services.ingest.dvcqg.accounts import hash_password
from services.ingest.errors import BrokerUnavailableError
from services.ingest.main import (
    build_documents,
    build_handler,
    build_pipeline,
    intake_app,
    source_agencies,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import DvcqgAccount, IngestSettings

HUE, HANOI = "000.00.20.H57", "000.00.10.H29"


class Sink:
    def __init__(self) -> None:
        self.published: list[Outgoing] = []
        self.fail = False

    async def publish(self, items: Sequence[Outgoing]) -> None:
        if self.fail:
            raise BrokerUnavailableError("no acknowledgement")
        self.published.extend(items)


ACCOUNTS = {
    name: DvcqgAccount(password_hash=hash_password("pw"), agencies=frozenset({HUE}))
    for name in ("a", "b")
}


@pytest.fixture(params=[{}, {"urn:vn:gov:dvc:other": [HANOI]}], ids=["unbound", "bound"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[httpx.AsyncClient, Sink]]:
    """With and without a source binding (`GOVSYNC_SOURCE_AGENCIES`) for other sources."""
    settings = IngestSettings(
        dvcqg_accounts=ACCOUNTS, auth_failure_limit=3, source_agencies=request.param
    )
    registry = CollectorRegistry()

    async def ready() -> dict[str, bool]:
        return {"broker": True}

    sink = Sink()
    app = intake_app(
        settings,
        registry=registry,
        readiness=ready,
        sink=sink,
        handler=build_handler(settings, build_pipeline(settings), build_documents(settings)),
        metrics=IngestMetrics(registry),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest/dvcqg") as client:
        yield client, sink


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": user, "password": password})


def write(session: str) -> dict[str, Any]:
    item = {"MaHoSo": "H57.20-B1", "TrangThaiHoSo": 2, "NgayTiepNhan": "20261102083000"}
    return {"session": session, "madonvi": HUE, "service": "DongBoHoSoMC", "data": [item]}


async def test_a_broker_outage_is_busy_and_nothing_is_acknowledged(
    served: tuple[httpx.AsyncClient, Sink],
) -> None:
    client, sink = served
    session = (await login(client, "a", "pw")).json()["session"]
    sink.fail = True
    busy = await client.post("/api/integration", json=write(session))
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "5"
    assert busy.json()["error_code"] == -1
    assert sink.published == []
    sink.fail = False
    done = await client.post("/api/integration", json=write(session))
    assert done.json() == {"error_code": 0, "message": "Thành công"}
    assert [o.key for o in sink.published] == [b"H57.20-B1"]


async def test_failed_logins_are_limited_per_address_and_username(
    served: tuple[httpx.AsyncClient, Sink],
) -> None:
    client, _ = served
    answers = [(await login(client, "a", "wrong")).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    blocked = await login(client, "a", "pw")
    assert blocked.status_code == 429
    assert blocked.json()["error_code"] == -1
    # Another account from the same address still logs in.
    other = await login(client, "b", "pw")
    assert other.json()["error_code"] == 0


def test_accounts_are_bound_to_their_agencies_once_a_binding_is_configured() -> None:
    unbound = IngestSettings(dvcqg_accounts=ACCOUNTS)
    assert source_agencies(unbound) == {}
    bound = IngestSettings(
        dvcqg_accounts=ACCOUNTS,
        source_agencies={"urn:vn:gov:dvc:other": [HANOI], "urn:govsync:dvcqg:b": [HANOI]},
    )
    assert source_agencies(bound) == {
        "urn:vn:gov:dvc:other": [HANOI],
        "urn:govsync:dvcqg:a": [HUE],
        "urn:govsync:dvcqg:b": [HANOI, HUE],
    }
