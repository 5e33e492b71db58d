"""The portal-compatible intake on a running ingest service: login, writes acknowledged by the
broker, TraCuuHoSo from ingest's state, every refusal in the portal's answer format, and sync's
own portal client talking to it (`GOVSYNC_PORTAL_URL=http://<ingest>/dvcqg`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from schemas.dossier import DossierStatus, RecordKind
from services.common.settings import KafkaSettings
from services.ingest.dvcqg.accounts import AccountBook, hash_password
from services.ingest.dvcqg.sessions import SessionKeys
from services.ingest.settings import DvcqgAccount, IngestSettings
from services.sync.metrics import SyncMetrics
from services.sync.portal import PortalClient
from services.sync.settings import PortalSettings
from services.sync.transport import make_client
from tests.integration.sync.helpers import wait_until
from tests.support.ingest import ingest_settings, metric_value, running_ingest
from tests.support.kafka import read_topic
from tests.support.records import record

pytestmark = pytest.mark.kafka

HUE, HANOI = "000.00.20.H57", "000.00.10.H29"
SECRET = "dvcqg-test-secret-0123456789"
PASSWORD = "opencps-password"
MAX_ITEMS = 5


@pytest.fixture(scope="module")
async def intake(kafka_broker: str) -> AsyncIterator[tuple[httpx.AsyncClient, IngestSettings]]:
    account = DvcqgAccount(password_hash=hash_password(PASSWORD), agencies=frozenset({HUE}))
    settings = ingest_settings(
        KafkaSettings(bootstrap_servers=kafka_broker),
        uuid.uuid4().hex[:10],
        dvcqg_accounts={"opencps": account},
        dvcqg_session_secret=SecretStr(SECRET),
        dvcqg_max_items=MAX_ITEMS,
    )
    async with (
        running_ingest(settings) as base_url,
        httpx.AsyncClient(base_url=f"{base_url}/dvcqg") as client,
    ):
        yield client, settings


async def login(client: httpx.AsyncClient, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/login", json={"username": "opencps", "password": password}
    )
    answer: dict[str, Any] = response.json()
    return answer


async def session(client: httpx.AsyncClient) -> str:
    answer = await login(client)
    assert answer["error_code"] == 0, answer
    return str(answer["session"])


def header(code: str, status: int = 2, **fields: Any) -> dict[str, Any]:
    return {"MaHoSo": code, "TrangThaiHoSo": status, "NgayTiepNhan": "20261102083000", **fields}


def step(code: str, at: str = "20261102090000", **fields: Any) -> dict[str, Any]:
    return {"MaHoSo": code, "ThoiDiemXuLy": at, "NoiDungXuLy": "Tiếp nhận", **fields}


async def call(
    client: httpx.AsyncClient,
    token: str,
    service: str,
    data: Any,
    *,
    madonvi: str = HUE,
    path: str = "/api/integration",
) -> tuple[int, dict[str, Any]]:
    envelope = {
        "session": token,
        "madonvi": madonvi,
        "service": service,
        "isUpdating": "False",
        "data": data,
    }
    response = await client.post(path, json=envelope)
    answer: dict[str, Any] = response.json()
    return response.status_code, answer


async def test_login_answers_like_the_portal(
    intake: tuple[httpx.AsyncClient, IngestSettings],
) -> None:
    client, _ = intake
    answer = await login(client)
    assert answer["error_code"] == 0
    assert "thành công" in answer["message"].casefold()
    assert answer["session"]
    refused = await login(client, "wrong")
    assert refused["error_code"] != 0
    assert "session" not in refused


async def test_writes_are_on_the_topic_when_0_is_answered_and_lookup_follows(
    intake: tuple[httpx.AsyncClient, IngestSettings], kafka_settings: KafkaSettings
) -> None:
    client, settings = intake
    token = await session(client)
    code = f"H57.20-OK-{uuid.uuid4().hex[:6]}"
    status, answer = await call(client, token, "DongBoHoSoMC", [header(code, MaTTHC="1.004567")])
    assert (status, answer["error_code"]) == (200, 0), answer
    assert "thành công" in answer["message"].casefold()
    status, answer = await call(client, token, "CapNhatTienDoHoSoMC", [step(code)])
    assert (status, answer["error_code"]) == (200, 0), answer

    # 0 was answered after the broker's acknowledgement: both events are already stored.
    stored = [
        orjson.loads(r.value or b"")
        for r in await read_topic(kafka_settings, settings.topic_dossier, at_least=2)
        if r.key == code.encode()
    ]
    assert [(e["type"], e["agency"], e["data"]["MaHoSo"]) for e in stored] == [
        ("vn.gov.dvc.dossier.v1", HUE, code),
        ("vn.gov.dvc.dossier.progress.v1", HUE, code),
    ]
    assert {e["source"] for e in stored} == {"urn:govsync:dvcqg:opencps"}

    async def known() -> bool:
        _, found = await call(client, token, "TraCuuHoSo", {"mahoso": code}, path="/api/share")
        return bool(found["result"])

    await wait_until(known, within=30, interval=0.1)
    _, found = await call(client, token, "TraCuuHoSo", {"mahoso": code}, path="/api/share")
    assert found["error_code"] == 0
    assert found["result"] == [
        {
            "MaHoSo": code,
            "MaDonVi": HUE,
            "TrangThaiHoSo": 2,
            "MaTTHC": "1.004567",
            "NgayTiepNhan": "20261102083000",
        }
    ]
    _, missing = await call(
        client, token, "TraCuuHoSo", {"mahoso": "H57.20-NONE"}, path="/api/share"
    )
    assert (missing["error_code"], missing["result"]) == (0, [])
    metrics = (
        await client.get(str(client.base_url).rstrip("/").removesuffix("/dvcqg") + "/metrics")
    ).text
    service = {"service": "DongBoHoSoMC"}
    assert metric_value(metrics, "govsync_dvcqg_items_total", **service) >= 1
    assert metric_value(metrics, "govsync_dvcqg_calls_total", **service, outcome="ok") >= 1


# --- every refusal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="missing"),
        pytest.param("not-a-session", id="garbage"),
        pytest.param("eyJ1IjoieCJ9.c2lnbmF0dXJl", id="forged"),
    ],
)
async def test_bad_session_is_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings], token: str | None
) -> None:
    client, _ = intake
    for service, path in (("DongBoHoSoMC", "/api/integration"), ("TraCuuHoSo", "/api/share")):
        data: Any = [header("H57.20-S1")] if service == "DongBoHoSoMC" else {"mahoso": "H57.20-S1"}
        _, answer = await call(client, token, service, data, path=path)  # type: ignore[arg-type]
        assert answer["error_code"] == -2, answer
        assert "Phiên làm việc không hợp lệ" in answer["message"]


async def test_expired_session_is_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings],
) -> None:
    client, settings = intake
    keys = SessionKeys(SECRET.encode(), timedelta(seconds=settings.dvcqg_session_ttl_seconds))
    account = AccountBook(settings.dvcqg_accounts).get("opencps")
    assert account is not None
    issued = datetime.now(UTC) - timedelta(seconds=settings.dvcqg_session_ttl_seconds + 1)
    expired = keys.issue(account, now=issued)
    _, answer = await call(client, expired, "DongBoHoSoMC", [header("H57.20-E1")])
    assert answer["error_code"] == -2
    assert "expired" in answer["message"]
    # The same account's fresh session (signed the same way) is honoured: only the expiry differs.
    fresh = keys.issue(account, now=datetime.now(UTC))
    _, answer = await call(client, fresh, "DongBoHoSoMC", [header("H57.20-E1")])
    assert answer["error_code"] == 0, answer


async def test_another_agencys_madonvi_is_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings], kafka_settings: KafkaSettings
) -> None:
    client, settings = intake
    token = await session(client)
    _, envelope = await call(client, token, "DongBoHoSoMC", [header("H29.10-F1")], madonvi=HANOI)
    assert envelope["error_code"] == 5
    assert HANOI in envelope["message"]
    # An item naming another agency inside an envelope of its own.
    own, foreign = header("H57.20-F2"), header("H29.10-F3", MaDonVi=HANOI)
    _, item = await call(client, token, "DongBoHoSoMC", [own, foreign])
    assert item["error_code"] == 5
    assert "data[1] (MaHoSo H29.10-F3)" in item["message"]
    _, lookup = await call(
        client, token, "TraCuuHoSo", {"mahoso": "H29.10-F1"}, madonvi=HANOI, path="/api/share"
    )
    assert lookup["error_code"] == 5
    stored = await read_topic(kafka_settings, settings.topic_dossier, at_least=0, idle=0.3)
    assert not {r.key for r in stored} & {b"H29.10-F1", b"H57.20-F2", b"H29.10-F3"}


@pytest.mark.parametrize(
    ("items", "named"),
    [
        pytest.param(
            [header("H57.20-M1"), header("H57.20-M2", NgayTiepNhan="20261345100000")],
            ["data[1] (MaHoSo H57.20-M2)", "NgayTiepNhan"],
            id="impossible-date",
        ),
        pytest.param(
            [{"TrangThaiHoSo": 2}], ["data[0]", "MaHoSo", "Field required"], id="no-dossier-code"
        ),
        pytest.param(
            [header("H57.20-M3", TrangThaiHoSo="pending-review")],
            ["data[0] (MaHoSo H57.20-M3)", "TrangThaiHoSo"],
            id="unknown-status",
        ),
        pytest.param(["not an object"], ["data[0]", "not an object"], id="not-an-object"),
    ],
)
async def test_malformed_item_is_refused_with_item_and_field(
    intake: tuple[httpx.AsyncClient, IngestSettings],
    kafka_settings: KafkaSettings,
    items: list[Any],
    named: list[str],
) -> None:
    client, settings = intake
    token = await session(client)
    _, answer = await call(client, token, "DongBoHoSoMC", items)
    assert answer["error_code"] == 3, answer
    for text in named:
        assert text in answer["message"]
    assert answer["errors"]
    assert "no item of the call was written" in answer["message"]
    stored = await read_topic(kafka_settings, settings.topic_dossier, at_least=0, idle=0.3)
    assert not {r.key for r in stored} & {b"H57.20-M1", b"H57.20-M2", b"H57.20-M3"}


async def test_progress_without_date_is_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings],
) -> None:
    client, _ = intake
    token = await session(client)
    _, answer = await call(
        client, token, "CapNhatTienDoHoSoMC", [{"MaHoSo": "H57.20-P1", "NoiDungXuLy": "x"}]
    )
    assert answer["error_code"] == 3
    assert "ThoiDiemXuLy" in answer["message"]


async def test_oversize_batch_and_body_are_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings],
) -> None:
    client, settings = intake
    token = await session(client)
    items = [header(f"H57.20-O{i}") for i in range(MAX_ITEMS + 1)]
    _, answer = await call(client, token, "DongBoHoSoMC", items)
    assert answer["error_code"] == 3
    assert f"at most {MAX_ITEMS}" in answer["message"]
    # Within the request's limit, but over the worker's limit on one record.
    big = [header("H57.20-O8", GhiChu="x" * settings.max_event_bytes)]
    _, answer = await call(client, token, "DongBoHoSoMC", big)
    assert answer["error_code"] == 3
    assert "data[0] (MaHoSo H57.20-O8)" in answer["message"]
    assert f"larger than {settings.max_event_bytes} bytes" in answer["message"]
    huge = [header("H57.20-O9", GhiChu="x" * settings.max_request_bytes)]
    status, answer = await call(client, token, "DongBoHoSoMC", huge)
    assert status == 413
    assert answer["error_code"] == 3
    assert str(settings.max_request_bytes) in answer["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param(b"[]", "envelope", id="not-an-envelope"),
    ],
)
async def test_malformed_envelope_is_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings], body: bytes, named: str
) -> None:
    client, _ = intake
    response = await client.post(
        "/api/integration", content=body, headers={"content-type": "application/json"}
    )
    assert response.json()["error_code"] == 3
    assert named in response.json()["message"]


async def test_malformed_madonvi_is_refused_once_the_session_is_checked(
    intake: tuple[httpx.AsyncClient, IngestSettings],
) -> None:
    client, _ = intake
    _, anonymous = await call(client, "x", "DongBoHoSoMC", [header("H57.20-A1")], madonvi="H57")
    assert anonymous["error_code"] == -2
    token = await session(client)
    _, answer = await call(client, token, "DongBoHoSoMC", [header("H57.20-A1")], madonvi="H57")
    assert answer["error_code"] == 3
    assert "madonvi is not an agency code" in answer["message"]


async def test_unknown_service_and_empty_data_are_refused(
    intake: tuple[httpx.AsyncClient, IngestSettings],
) -> None:
    client, _ = intake
    token = await session(client)
    _, unknown = await call(client, token, "DongBoDanhGia", [header("H57.20-U1")])
    assert unknown["error_code"] == 3
    assert "DongBoDanhGia" in unknown["message"]
    _, empty = await call(client, token, "DongBoHoSoMC", [])
    assert empty["error_code"] == 3
    assert "non-empty list" in empty["message"]
    _, misplaced = await call(
        client, token, "DongBoHoSoMC", [header("H57.20-U2")], path="/api/share"
    )
    assert misplaced["error_code"] == 3


# --- govsync's own portal client ----------------------------------------------------------------


async def test_sync_portal_client_talks_to_the_intake(
    intake: tuple[httpx.AsyncClient, IngestSettings], kafka_settings: KafkaSettings
) -> None:
    """What `GOVSYNC_PORTAL_URL=http://<ingest>/dvcqg` does: the default paths, login, batches."""
    client, settings = intake
    portal = PortalSettings(
        url=str(client.base_url).rstrip("/"),
        username="opencps",
        password=SecretStr(PASSWORD),
        madonvi=HUE,
        linger_ms=5,
    )
    http = make_client(portal.url, timeout=5, max_connections=4)
    sender = PortalClient(portal, http, SyncMetrics(CollectorRegistry(), "portal"))
    codes = [f"H57.20-SYNC-{uuid.uuid4().hex[:6]}-{n}" for n in range(3)]
    async with http:
        await asyncio.gather(
            *(
                sender.send(
                    record(c, 1, RecordKind.DOSSIER, DossierStatus.ACCEPTED, n=n, agency=HUE),
                    known=False,
                )
                for n, c in enumerate(codes)
            )
        )
        await sender.send(
            record(codes[0], 2, RecordKind.PROGRESS, DossierStatus.IN_PROCESS, n=0, agency=HUE),
            known=True,
        )

        async def looked_up() -> bool:
            return await sender.exists(codes[0], HUE)

        await wait_until(looked_up, within=30, interval=0.1)
    stored = await read_topic(kafka_settings, settings.topic_dossier, at_least=4)
    mine = [orjson.loads(r.value or b"") for r in stored if r.key in {c.encode() for c in codes}]
    assert sorted((e["data"]["MaHoSo"], e["type"]) for e in mine) == sorted(
        [(c, "vn.gov.dvc.dossier.v1") for c in codes]
        + [(codes[0], "vn.gov.dvc.dossier.progress.v1")]
    )
