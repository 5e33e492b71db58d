"""Credentials and secrets: API keys bound to sources, the admin credential, failed-attempt
counting and limiting, constant-time comparison, and secrets that are never printed."""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.common import auth
from services.common.auth import KeyRing
from services.common.kafka import make_producer
from services.common.settings import KafkaSettings, SaslMechanism, SecurityProtocol
from services.ingest.settings import IngestSettings
from services.localrun.broker import free_port
from services.sync import api as sync_api
from services.sync.api import create_app as create_sync_app
from services.sync.settings import NdxpSettings, PortalSettings, SyncSettings
from tests.reliability.conftest import Intake, build_intake

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

KEY_A, KEY_B, REVOKED = "key-a-0123456789abcdef", "key-b-0123456789abcdef", "key-revoked-0000"
SOURCE_A, SOURCE_B = "urn:vn:gov:dvc:a", "urn:vn:gov:dvc:b"
ADMIN = "admin-credential-1f2e3d4c"
CE = "application/cloudevents+json"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "api_keys": {digest(KEY_A): [SOURCE_A], digest(KEY_B): [SOURCE_B]},
        "auth_failure_limit": 5,
        "admin_token": SecretStr(ADMIN),
    }
    return IngestSettings(**(values | overrides))


def event(source: str, event_id: str = "e-1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "vn.gov.dvc.dossier.v1",
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": "H-1", "TrangThaiHoSo": 2, "NgayTiepNhan": "20260301080000"},
    }


@pytest.fixture
async def intake() -> AsyncIterator[tuple[Intake, httpx.AsyncClient]]:
    built = build_intake(settings())
    transport = httpx.ASGITransport(app=built.app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield built, client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    return body


# --- API keys ------------------------------------------------------------------------------------


async def test_a_key_publishes_only_its_own_sources(
    intake: tuple[Intake, httpx.AsyncClient],
) -> None:
    built, client = intake
    own = await client.post(
        "/v1/events", json=event(SOURCE_A), headers={"X-API-Key": KEY_A, "content-type": CE}
    )
    assert own.status_code == 202, own.text
    other = await client.post(
        "/v1/events",
        json=event(SOURCE_B, "e-2"),
        headers={"Authorization": f"Bearer {KEY_A}", "content-type": CE},
    )
    assert_problem(other, 403)
    # A batch with one foreign event is refused whole: nothing of it is written.
    mixed = await client.post(
        "/v1/events",
        json=[event(SOURCE_A, "e-3"), event(SOURCE_B, "e-4")],
        headers={"X-API-Key": KEY_A, "content-type": "application/cloudevents-batch+json"},
    )
    assert_problem(mixed, 403)
    assert [o.key for o in built.sink.published] == [b"H-1"]
    assert built.metric("govsync_intake_auth_failures_total", reason="source_not_allowed") == 2


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({}, "missing", id="missing"),
        pytest.param({"Authorization": "Bearer "}, "missing", id="empty-bearer"),
        pytest.param({"Authorization": f"Basic {KEY_A}"}, "missing", id="not-bearer"),
        pytest.param({"X-API-Key": "wrong-key"}, "unknown", id="wrong"),
        pytest.param({"X-API-Key": REVOKED}, "unknown", id="revoked"),
        pytest.param({"X-API-Key": digest(KEY_A)}, "unknown", id="the-stored-hash-itself"),
        pytest.param({"X-API-Key": KEY_A.upper()}, "unknown", id="case-changed"),
        pytest.param({"X-API-Key": KEY_A + " "}, "unknown", id="trailing-space"),
        pytest.param({"X-API-Key": ADMIN}, "unknown", id="admin-credential"),
    ],
)
async def test_wrong_missing_and_revoked_keys_are_401(
    intake: tuple[Intake, httpx.AsyncClient], headers: dict[str, str], reason: str
) -> None:
    built, client = intake
    response = await client.post(
        "/v1/events", json=event(SOURCE_A), headers={**headers, "content-type": CE}
    )
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert built.sink.published == []
    assert built.metric("govsync_intake_auth_failures_total", reason=reason) == 1


async def test_failed_attempts_are_counted_then_limited_with_429(
    intake: tuple[Intake, httpx.AsyncClient], figures: Figures
) -> None:
    built, client = intake
    for i in range(5):
        assert_problem(
            await client.post(
                "/v1/events", json=event(SOURCE_A), headers={"X-API-Key": f"{i}-wrong-key"}
            ),
            401,
        )
    # Blocked now: a further failing attempt is 429, whatever key it guesses.
    blocked = await client.post(
        "/v1/events", json=event(SOURCE_A), headers={"X-API-Key": "another-guess"}
    )
    assert_problem(blocked, 429)
    assert int(blocked.headers["retry-after"]) > 0
    assert built.metric("govsync_intake_auth_failures_total", reason="unknown") == 5
    assert built.metric("govsync_intake_auth_failures_total", reason="rate_limited") == 1
    # A valid key is never refused because of failures from its address (issue 13: behind a
    # proxy every caller shares one), and other addresses are not punished either.
    accepted = await client.post(
        "/v1/events", json=event(SOURCE_A), headers={"X-API-Key": KEY_A, "content-type": CE}
    )
    assert accepted.status_code == 202
    other = httpx.ASGITransport(app=built.app, client=("192.0.2.99", 40000))
    async with httpx.AsyncClient(transport=other, base_url="http://ingest") as neighbour:
        wrong = await neighbour.post(
            "/v1/events", json=event(SOURCE_A), headers={"X-API-Key": "neighbour-guess"}
        )
    assert wrong.status_code == 401
    figures("5 failed attempts -> 401 each, the 6th failing one -> 429; the valid key 202")


def _function(module: object, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(module)))  # type: ignore[arg-type]
    name = qualname.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    raise AssertionError(f"{qualname} not found")


def _calls(node: ast.AST, dotted: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and ast.unparse(n.func) == dotted]


def test_keyring_compares_every_entry_in_constant_time() -> None:
    """Structural: a timing test would be flaky on a shared CI machine, so the code is read.

    `sources_for` must call `hmac.compare_digest` inside a loop over every entry, and nothing in
    that loop may leave it early (no return or break): the time taken does not depend on which
    entry matched or how many characters of a wrong key were right.
    """
    function = _function(auth, "KeyRing.sources_for")
    loops = [n for n in ast.walk(function) if isinstance(n, ast.For)]
    assert len(loops) == 1
    (loop,) = loops
    assert ast.unparse(loop.iter) == "self._entries"
    assert _calls(loop, "hmac.compare_digest")
    assert not [n for n in ast.walk(loop) if isinstance(n, ast.Return | ast.Break)]
    # No other comparison of the presented key exists outside the loop.
    assert not [n for n in ast.walk(function) if isinstance(n, ast.Compare)]
    # Behaviour over many entries: the match is found wherever it sits.
    many = {digest(f"k{i}"): [f"urn:s{i}"] for i in range(500)}
    ring = KeyRing(many)
    assert ring.sources_for("k0") == frozenset({"urn:s0"})
    assert ring.sources_for("k499") == frozenset({"urn:s499"})
    assert ring.sources_for("k500") is None
    # Hashes configured in upper case still match (hex is case-insensitive).
    assert KeyRing({digest("k").upper(): ["urn:s"]}).sources_for("k") == frozenset({"urn:s"})


def test_admin_credentials_are_compared_in_constant_time() -> None:
    assert _calls(_function(auth, "token_matches"), "hmac.compare_digest")
    guard = _function(sync_api, "_admin_guard")
    assert _calls(guard, "token_matches")
    assert not [
        n for n in ast.walk(guard) if isinstance(n, ast.Compare) and "given" in ast.unparse(n)
    ]


# --- the sync admin API --------------------------------------------------------------------------


@pytest.fixture
async def admin() -> AsyncIterator[httpx.AsyncClient]:
    """The sync service's app; the admin guard refuses before any Kafka client is used."""
    from prometheus_client import CollectorRegistry

    async def ready() -> dict[str, bool]:
        return {"broker": True}

    producer = make_producer(KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"))
    app = create_sync_app(
        target="portal",
        registry=CollectorRegistry(),
        readiness=ready,
        admin_token=SecretStr(ADMIN),
        dlq_topic="dlq",
        reader_factory=lambda: pytest.fail("an unauthorised request reached Kafka"),
        producer=producer,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sync"
    ) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer wrong", id="wrong"),
        pytest.param(f"Bearer {ADMIN[:-1]}", id="prefix-of-the-token"),
        pytest.param(f"Bearer {ADMIN}x", id="token-plus-one"),
        pytest.param(ADMIN, id="no-bearer-scheme"),
        pytest.param(f"Bearer {KEY_A}", id="an-ingest-api-key"),
        pytest.param(f"Bearer {digest(ADMIN)}", id="hash-of-the-token"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/dlq"), ("POST", "/admin/dlq/replay")],
    ids=["list", "replay"],
)
async def test_admin_endpoints_need_the_admin_credential(
    admin: httpx.AsyncClient, authorization: str | None, method: str, path: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await admin.request(method, path, headers=headers, json={})
    assert response.status_code in (401, 403), response.text
    assert ADMIN not in response.text


async def test_admin_endpoints_are_off_without_a_configured_credential() -> None:
    from prometheus_client import CollectorRegistry

    async def ready() -> dict[str, bool]:
        return {"broker": True}

    app = create_sync_app(
        target="portal",
        registry=CollectorRegistry(),
        readiness=ready,
        admin_token=None,
        dlq_topic="dlq",
        reader_factory=lambda: pytest.fail("reached Kafka"),
        producer=make_producer(KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sync") as client:
        for authorization in ("Bearer ", "Bearer None", "Bearer null"):
            response = await client.get("/admin/dlq", headers={"Authorization": authorization})
            assert response.status_code == 404


async def test_admin_failures_are_limited_and_answered_as_problems(
    admin: httpx.AsyncClient,
) -> None:
    statuses = [
        (await admin.get("/admin/dlq", headers={"Authorization": "Bearer x"})).status_code
        for _ in range(20)
    ]
    assert statuses[-1] == 429
    response = await admin.get("/admin/dlq")
    assert response.headers["content-type"].startswith("application/problem+json")


# --- secrets are never printed -------------------------------------------------------------------

SECRETS = {
    "admin": "s3cr3t-admin-7a1b",
    "sasl": "s3cr3t-sasl-8c2d",
    "key-password": "s3cr3t-keypass-9e3f",
    "portal": "s3cr3t-portal-0a4b",
    "ndxp": "s3cr3t-ndxp-1c5d",
}


def _kafka() -> KafkaSettings:
    return KafkaSettings(
        security_protocol=SecurityProtocol.SASL_SSL,
        sasl_mechanism=SaslMechanism.SCRAM_SHA_512,
        sasl_username="govsync",
        sasl_password=SecretStr(SECRETS["sasl"]),
        ssl_key_password=SecretStr(SECRETS["key-password"]),
    )


def _renderings(value: Any) -> dict[str, str]:
    return {
        "repr": repr(value),
        "str": str(value),
        "model_dump_json": value.model_dump_json(),
        "model_dump": repr(value.model_dump()),
        "model_dump(mode=json)": repr(value.model_dump(mode="json")),
    }


def test_settings_dumps_never_show_secrets() -> None:
    ingest = IngestSettings(kafka=_kafka(), admin_token=SecretStr(SECRETS["admin"]))
    sync = SyncSettings(
        kafka=_kafka(),
        portal=PortalSettings(password=SecretStr(SECRETS["portal"])),
        ndxp=NdxpSettings(client_secret=SecretStr(SECRETS["ndxp"])),
        admin_token=SecretStr(SECRETS["admin"]),
    )
    for name, value in (("IngestSettings", ingest), ("SyncSettings", sync)):
        for how, text in _renderings(value).items():
            for label, secret in SECRETS.items():
                assert secret not in text, f"{label} shown by {how}({name})"


def test_secrets_are_read_from_files_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Top-level secrets by their variable's name; a nested section as one JSON file."""
    (tmp_path / "govsync_admin_token").write_text(SECRETS["admin"])
    (tmp_path / "govsync_kafka").write_text(f'{{"sasl_password": "{SECRETS["sasl"]}"}}')
    (tmp_path / "govsync_portal").write_text(f'{{"password": "{SECRETS["portal"]}"}}')
    monkeypatch.setenv("GOVSYNC_NDXP_CLIENT_SECRET", SECRETS["ndxp"])
    monkeypatch.setenv("GOVSYNC_PORTAL_URL", "https://portal.example")
    sync = SyncSettings(_secrets_dir=str(tmp_path))
    assert sync.admin_token is not None
    assert sync.admin_token.get_secret_value() == SECRETS["admin"]
    assert sync.kafka.sasl_password is not None
    assert sync.kafka.sasl_password.get_secret_value() == SECRETS["sasl"]
    assert sync.portal.password.get_secret_value() == SECRETS["portal"]
    # The section file and the environment merge: the URL still comes from the environment.
    assert sync.portal.url == "https://portal.example"
    assert sync.ndxp.client_secret.get_secret_value() == SECRETS["ndxp"]
    ingest = IngestSettings(_secrets_dir=str(tmp_path))
    assert ingest.admin_token is not None
    assert ingest.admin_token.get_secret_value() == SECRETS["admin"]
    for value in (sync, ingest):
        for how, text in _renderings(value).items():
            assert not any(s in text for s in SECRETS.values()), how
