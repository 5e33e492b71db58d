"""The small findings of issue 13, each refused now with a clear error.

- `GET /admin/dlq?since=<a time without offset>` was a 500.
- File links (`DuongDanTaiTepTin`, `DuongDanTepTinKetQua`) went to the portal unchecked:
  `file:` and internal hosts passed.
- The portal and NDXP URLs defaulted to `http://`, and sync started with an empty password or
  client secret.
- `token_matches` compared the tokens themselves, so its time told their length.
- Replay sent a dead letter to whatever topic its header named, the state topic included.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import hashlib
import inspect
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from schemas.cloudevents import EventType
from services.common import auth
from services.common.auth import hash_key
from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.settings import KafkaSettings
from services.dlq.command import selection_from
from services.ingest.settings import IngestSettings
from services.localrun.broker import free_port
from services.sync.api import create_app
from services.sync.main import run as run_sync
from services.sync.settings import NdxpSettings, PortalSettings, SyncSettings, Target
from tests.reliability.conftest import Intake, build_intake

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

ADMIN = "admin-token-small-findings"
KEY, SOURCE = "small-key-0123456789abcdef", "urn:vn:gov:dvc:small"
NAIVE = "2026-01-01T00:00:00"


# --- the admin API's times, and what a replay may write --------------------------------------


@pytest.fixture
async def dead_letters(
    kafka_settings: KafkaSettings, unique: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A DLQ holding one letter per source topic (one govsync reads, its state topic, its
    acknowledgements, and a stranger's), and the sync admin API reading it."""
    names = {
        "dossier": f"small.dossier.{unique}",
        "state": f"small.state.{unique}",
        "acked": f"small.sync.portal.acked.{unique}",
        "other": f"small.other.{unique}",
        "dlq": f"small.dlq.{unique}",
    }
    await ensure_topics(kafka_settings, [TopicSpec(t, 1) for t in names.values()])
    settings = SyncSettings(kafka=kafka_settings, topic_dossier=names["dossier"])
    async with make_producer(kafka_settings) as producer:
        writer = DeadLetterWriter(producer, names["dlq"])
        for label in ("dossier", "state", "acked", "other"):
            await writer.write(
                DeadLetter(
                    origin=Origin(names[label], 0, 0, label.encode(), b'{"x": 1}', []),
                    reason="refused",
                    stage="validate",
                    error="ContractError",
                    service="ingest",
                    at=datetime.now(UTC),
                )
            )

        async def ready() -> dict[str, bool]:
            return {"broker": True}

        app = create_app(
            target="portal",
            registry=CollectorRegistry(),
            readiness=ready,
            admin_token=SecretStr(ADMIN),
            dlq_topic=names["dlq"],
            reader_factory=lambda: make_consumer(kafka_settings, group_id=None),
            producer=producer,
            **_replay_topics(settings),
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://sync",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as client:
            yield client, names


def _replay_topics(settings: SyncSettings) -> dict[str, Any]:
    """`replay_topics=` where the app takes it (code before the fix did not)."""
    if "replay_topics" in inspect.signature(create_app).parameters:
        return {"replay_topics": settings.replay_topics()}
    return {}


@pytest.mark.kafka
async def test_a_time_without_offset_is_400_not_500(
    dead_letters: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, _ = dead_letters
    listed = await client.get("/admin/dlq", params={"since": NAIVE})
    assert listed.status_code == 400, listed.text
    assert "offset" in listed.json()["title"]
    replay = await client.post("/admin/dlq/replay", json={"until": NAIVE})
    assert replay.status_code == 400, replay.text
    aware = await client.get("/admin/dlq", params={"since": NAIVE + "+07:00"})
    assert aware.status_code == 200
    assert len(aware.json()) == 4


def test_the_dlq_command_refuses_a_time_without_offset() -> None:
    args = argparse.Namespace(
        reason=None, stage=None, source=None, since=NAIVE, until=None, limit=10
    )
    with pytest.raises(ValueError, match="--since needs a UTC offset"):
        selection_from(args)


@pytest.mark.kafka
async def test_replay_writes_only_to_topics_govsync_reads(
    kafka_settings: KafkaSettings, dead_letters: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    client, names = dead_letters
    response = await client.post("/admin/dlq/replay", json={})
    assert response.status_code == 200, response.text
    assert response.json() == {"replayed": 1, "refused": 3}
    consumer = make_consumer(kafka_settings, group_id=None)
    async with consumer:
        counts = {}
        for label in ("dossier", "state", "acked", "other"):
            tp = TopicPartition(names[label], 0)
            counts[label] = (await consumer.end_offsets([tp]))[tp]
    assert counts == {"dossier": 1, "state": 0, "acked": 0, "other": 0}


# --- file links --------------------------------------------------------------------------------


def dossier(url: str, field: str = "TaiLieuNop") -> dict[str, Any]:
    item = (
        {"TepDinhKemId": "1", "DuongDanTaiTepTin": url}
        if field == "TaiLieuNop"
        else {"TenGiayTo": "Kết quả", "DuongDanTepTinKetQua": url}
    )
    return {
        "specversion": "1.0",
        "id": url,
        "source": SOURCE,
        "type": EventType.DOSSIER.value,
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": "URL-1", "TrangThaiHoSo": 9, field: [item]},
    }


def intake(**overrides: Any) -> Intake:
    return build_intake(IngestSettings(api_keys={hash_key(KEY): [SOURCE]}, **overrides))


async def post(built: Intake, event: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=built.app, client=("192.0.2.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        return await client.post(
            "/v1/events",
            content=orjson.dumps(event),
            headers={"X-API-Key": KEY, "content-type": "application/cloudevents+json"},
        )


REFUSED_URLS = [
    "file:///etc/passwd",
    "ftp://files.example.vn/a.pdf",
    "http://127.0.0.1:8080/admin",
    "http://localhost/a.pdf",
    "http://[::1]/a.pdf",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/share/a.pdf",
    "http://192.168.1.20/a.pdf",
    "http://fileserver/a.pdf",
    "http://nas.local/a.pdf",
    "http://db.internal/a.pdf",
    "http://2130706433/a.pdf",
    "http://127.1/a.pdf",
    "https://user:secret@files.example.vn/a.pdf",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("field", ["TaiLieuNop", "DanhSachGiayToKetQua"])
async def test_file_links_are_checked_before_they_reach_the_portal(
    field: str, figures: Figures
) -> None:
    built = intake()
    for url in REFUSED_URLS:
        response = await post(built, dossier(url, field))
        assert response.status_code == 422, (url, response.text)
        assert url not in response.text
    accepted = await post(built, dossier("https://dvc.example.vn/hoso/a.pdf", field))
    assert accepted.status_code == 202, accepted.text
    assert len(built.sink.published) == 1
    # An operator who means it lets internal hosts through.
    lenient = intake(allow_internal_file_urls=True)
    assert (await post(lenient, dossier("http://fileserver/a.pdf", field))).status_code == 202
    assert (await post(lenient, dossier("file:///etc/passwd", field))).status_code == 422
    figures(f"{len(REFUSED_URLS)} links refused in {field}, e.g. file:, loopback, metadata")


# --- the destinations --------------------------------------------------------------------------


def sync_settings(**overrides: Any) -> SyncSettings:
    # A broker nobody listens on: the checks must come before any connection.
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=1000)
    values: dict[str, Any] = {
        "kafka": kafka,
        "portal": PortalSettings(url="https://dvcqg.example.vn", password=SecretStr("p")),
        "ndxp": NdxpSettings(url="https://ndxp.example.vn", client_secret=SecretStr("s")),
    }
    return SyncSettings(**(values | overrides))


@pytest.mark.parametrize(
    ("target", "overrides", "names"),
    [
        pytest.param(
            Target.PORTAL, {"portal": PortalSettings()}, "GOVSYNC_PORTAL_URL", id="portal-default"
        ),
        pytest.param(Target.NDXP, {"ndxp": NdxpSettings()}, "GOVSYNC_NDXP_URL", id="ndxp-default"),
        pytest.param(
            Target.PORTAL,
            {"portal": PortalSettings(url="http://dvcqg.example.vn", password=SecretStr("p"))},
            "GOVSYNC_PORTAL_URL",
            id="portal-http",
        ),
        pytest.param(
            Target.NDXP,
            {"ndxp": NdxpSettings(url="http://ndxp.example.vn", client_secret=SecretStr("s"))},
            "GOVSYNC_NDXP_URL",
            id="ndxp-http",
        ),
        pytest.param(
            Target.PORTAL,
            {"portal": PortalSettings(url="https://dvcqg.example.vn")},
            "GOVSYNC_PORTAL_PASSWORD",
            id="portal-empty-password",
        ),
        pytest.param(
            Target.NDXP,
            {"ndxp": NdxpSettings(url="https://ndxp.example.vn", client_secret=SecretStr(" "))},
            "GOVSYNC_NDXP_CLIENT_SECRET",
            id="ndxp-blank-secret",
        ),
    ],
)
async def test_sync_refuses_to_start_in_clear_or_without_credentials(
    target: Target, overrides: dict[str, Any], names: str
) -> None:
    settings = sync_settings(**overrides)
    with pytest.raises(ValueError, match=names):
        async with asyncio.timeout(10):
            await run_sync(settings, target, asyncio.Event())


async def test_plain_http_is_allowed_when_a_local_run_says_so() -> None:
    """Past the destination check: it then fails on the (absent) broker, not on the URL."""
    settings = sync_settings(
        allow_http=True,
        portal=PortalSettings(url="http://127.0.0.1:8090/portal", password=SecretStr("p")),
    )
    with pytest.raises(Exception) as raised:  # noqa: PT011 - anything but the URL check
        async with asyncio.timeout(20):
            await run_sync(settings, Target.PORTAL, asyncio.Event())
    assert "GOVSYNC_PORTAL_URL" not in str(raised.value)


# --- the admin token ---------------------------------------------------------------------------


def test_token_comparison_does_not_depend_on_the_tokens_length() -> None:
    """Structural, as the key ring's test: `compare_digest` returns at once on unequal
    lengths, so it must be given fixed-length digests, never the tokens."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(auth.token_matches)))
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "hmac.compare_digest"
    ]
    assert len(calls) == 1
    for argument in calls[0].args:
        assert ast.unparse(argument).startswith("hashlib.sha256("), ast.unparse(argument)
        assert ast.unparse(argument).endswith(".digest()")
    assert auth.token_matches(ADMIN, ADMIN)
    for wrong in ("", "x", ADMIN[:-1], ADMIN + "x", ADMIN.upper(), "x" * 10_000):
        assert not auth.token_matches(wrong, ADMIN)
    assert hashlib.sha256(b"").digest_size == 32
