"""`POST /v1/events` on the running service: auth, limits, validation, and the broker's ack."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from services.common.settings import KafkaSettings
from tests.support.ingest import API_KEY, ingest_settings, running_ingest
from tests.support.kafka import read_topic

pytestmark = pytest.mark.kafka

CE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


def event(event_id: str, dossier: str = "H-1", **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:vn:gov:dvc:test",
        "type": "vn.gov.dvc.dossier.v1",
        "time": "2026-11-02T08:00:00+07:00",
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": dossier, "TrangThaiHoSo": 2, **data},
    }


@pytest.fixture(scope="module")
async def intake(kafka_broker: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """One service for the module: starting one costs a consumer-group join."""
    settings = ingest_settings(KafkaSettings(bootstrap_servers=kafka_broker), uuid.uuid4().hex[:10])
    async with running_ingest(settings) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        yield client, settings


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_accepts_single_and_batch_after_broker_ack(
    intake: tuple[httpx.AsyncClient, Any], kafka_settings: KafkaSettings
) -> None:
    client, settings = intake
    single = await client.post(
        "/v1/events", content=json.dumps(event("a-1")), headers={**auth(), "content-type": CE}
    )
    assert single.status_code == 202, single.text
    assert single.json() == {"accepted": ["a-1"]}
    batch = await client.post(
        "/v1/events",
        content=json.dumps([event("a-2", "H-2"), event("a-3", "H-3")]),
        headers={"X-API-Key": API_KEY, "content-type": BATCH},
    )
    assert batch.status_code == 202, batch.text
    assert batch.json() == {"accepted": ["a-2", "a-3"]}
    stored = [
        r
        for r in await read_topic(kafka_settings, settings.topic_dossier, at_least=3)
        if orjson.loads(r.value or b"")["id"].startswith("a-")
    ]
    assert sorted(orjson.loads(r.value or b"")["id"] for r in stored) == ["a-1", "a-2", "a-3"]
    assert {r.key for r in stored} == {b"H-1", b"H-2", b"H-3"}
    normalised = await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=3)
    ids = {orjson.loads(r.value or b"")["event_id"] for r in normalised}
    assert {"a-1", "a-2", "a-3"} <= ids


@pytest.mark.parametrize(
    ("headers", "status", "slug"),
    [
        pytest.param({}, 401, "unauthorized", id="missing-key"),
        pytest.param(auth("wrong-key"), 401, "unauthorized", id="wrong-key"),
        pytest.param({"Authorization": "Basic abc"}, 401, "unauthorized", id="not-bearer"),
    ],
)
async def test_refuses_bad_credentials(
    intake: tuple[httpx.AsyncClient, Any], headers: dict[str, str], status: int, slug: str
) -> None:
    client, _ = intake
    response = await client.post(
        "/v1/events", content=json.dumps(event("x")), headers={**headers, "content-type": CE}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].endswith(slug)


async def test_refuses_sources_the_key_may_not_publish(
    intake: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = intake
    foreign = {**event("x"), "source": "urn:vn:gov:other"}
    response = await client.post(
        "/v1/events", content=json.dumps(foreign), headers={**auth(), "content-type": CE}
    )
    assert response.status_code == 403
    assert "urn:vn:gov:other" in response.json()["detail"]


async def test_refuses_oversized_bodies(intake: tuple[httpx.AsyncClient, Any]) -> None:
    client, settings = intake
    huge = json.dumps(event("big", GhiChu="x" * (settings.max_request_bytes + 10)))
    response = await client.post("/v1/events", content=huge, headers={**auth(), "content-type": CE})
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.max_request_bytes // 1024 + 2):
            yield b" " * 1024

    streamed = await client.post(
        "/v1/events", content=chunks(), headers={**auth(), "content-type": CE}
    )
    assert streamed.status_code == 413


async def test_refuses_oversized_batches(intake: tuple[httpx.AsyncClient, Any]) -> None:
    client, settings = intake
    events = [event(f"e{i}", f"H{i}") for i in range(settings.max_batch_events + 1)]
    response = await client.post(
        "/v1/events", content=json.dumps(events), headers={**auth(), "content-type": BATCH}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(b"{not json", CE, 400, id="malformed-json"),
        pytest.param(b"[1]", CE, 400, id="array-as-single"),
        pytest.param(b"{}", BATCH, 400, id="object-as-batch"),
        pytest.param(b"[]", BATCH, 400, id="empty-batch"),
        pytest.param(b"{}", "text/plain", 415, id="wrong-media-type"),
    ],
)
async def test_refuses_malformed_requests(
    intake: tuple[httpx.AsyncClient, Any], body: bytes, content_type: str, status: int
) -> None:
    client, _ = intake
    response = await client.post(
        "/v1/events", content=body, headers={**auth(), "content-type": content_type}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_invalid_events_get_field_errors_and_nothing_is_written(
    intake: tuple[httpx.AsyncClient, Any], kafka_settings: KafkaSettings
) -> None:
    client, settings = intake
    good = event("ok-1", "H-OK")
    bad_date = event("bad-1", "H-BAD", NgayTiepNhan="20261345100000")
    no_code = event("bad-2")
    del no_code["data"]["MaHoSo"]
    response = await client.post(
        "/v1/events",
        content=json.dumps([good, bad_date, no_code]),
        headers={**auth(), "content-type": BATCH},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} >= {(1, "data"), (2, "MaHoSo")}
    assert any("NgayTiepNhan" in e["problem"] for e in errors)
    # All or nothing: the good event of the refused batch was not written either.
    probe = await client.post(
        "/v1/events", content=json.dumps(event("probe")), headers={**auth(), "content-type": CE}
    )
    assert probe.status_code == 202
    stored = await read_topic(kafka_settings, settings.topic_dossier, at_least=1)
    ids = {orjson.loads(r.value or b"")["id"] for r in stored}
    assert "probe" in ids
    assert not ids & {"ok-1", "bad-1", "bad-2"}


async def test_repeated_failures_are_rate_limited(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = ingest_settings(kafka_settings, unique, auth_failure_limit=3)
    async with running_ingest(settings) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        statuses = [
            (
                await client.post(
                    "/v1/events", content=b"{}", headers={**auth("nope"), "content-type": CE}
                )
            ).status_code
            for _ in range(5)
        ]
        # Only failing attempts are refused: a valid key from the same address still gets in
        # (behind a proxy every caller shares one address).
        valid = await client.post(
            "/v1/events", content=json.dumps(event("v")), headers={**auth(), "content-type": CE}
        )
        blocked = await client.post(
            "/v1/events", content=b"{}", headers={**auth("nope"), "content-type": CE}
        )
        metrics = (await client.get("/metrics")).text
    assert statuses == [401, 401, 401, 429, 429]
    assert valid.status_code == 202
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"]
    assert 'govsync_intake_auth_failures_total{reason="rate_limited"} 3.0' in metrics
    assert 'govsync_intake_auth_failures_total{reason="unknown"} 3.0' in metrics


async def test_openapi_describes_the_intake(intake: tuple[httpx.AsyncClient, Any]) -> None:
    client, _ = intake
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/events"]["post"]
    assert set(operation["requestBody"]["content"]) == {CE, BATCH, "application/json"}
    assert {"202", "400", "401", "403", "413", "422", "503"} <= set(operation["responses"])
