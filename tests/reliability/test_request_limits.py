"""Limits that used to give way (issue 13), each now holding.

- uvicorn trusted `X-Forwarded-For` from 127.0.0.1 by default: a guesser rotating addresses met
  no limit, and behind an ordinary proxy ten bad requests locked out every caller, valid keys
  included. Now the header is read only from `GOVSYNC_TRUSTED_PROXIES`, a valid key is never
  refused, and failing attempts are limited per address and per key prefix.
- Size was checked after parsing: a 24 MB batch of empty objects cost 800 MB. Now the body is
  refused from its Content-Length, as it streams in, and by its JSON values before parsing; an
  XML package by its elements and attributes as they are parsed; PDF signature checks per
  package and per request; and the worker's per-event limits at the intake (a 1.5 MB event got
  202 and was then dead-lettered). Peak memory is `test_memory_under_load.py`'s.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from schemas.cloudevents import EventType
from services.common.auth import hash_key
from services.common.httpapp import serve
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.envelope import Envelope
from services.ingest.errors import EdxmlRefusedError
from services.ingest.settings import EdxmlLimits, IngestSettings
from services.localrun.broker import free_port
from tests.reliability.conftest import Intake, build_intake
from tests.support.edxml_corpus import NOW, OWN_AGENCIES, Attachment, build_document
from tests.support.pki import make_pki, signed_pdf

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

KEY = "limits-key-0123456789abcdef"
SOURCE = "urn:vn:gov:dvc:limits"
ONE, BATCH = "application/cloudevents+json", "application/cloudevents-batch+json"
LIMIT = 5


def settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {"api_keys": {hash_key(KEY): [SOURCE]}, "auth_failure_limit": LIMIT}
    return IngestSettings(**(values | overrides))


def dossier(event_id: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": EventType.DOSSIER.value,
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": f"L-{event_id}", "TrangThaiHoSo": 2, **data},
    }


def edxml(event_id: str, package: bytes) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": EventType.EDXML.value,
        "data_base64": base64.b64encode(package).decode(),
    }


@asynccontextmanager
async def served(built: Intake) -> AsyncIterator[str]:
    """The intake app behind a real uvicorn on loopback, as `govsync ingest` serves it."""
    port = free_port()
    stop = asyncio.Event()
    trusted = getattr(getattr(built, "settings", None), "trusted_proxies", ())
    # Passed only when set, so that the test also runs (and fails) on code without the setting.
    extra = {"trusted_proxies": trusted} if trusted else {}
    task = asyncio.create_task(serve(built.app, host="127.0.0.1", port=port, stop=stop, **extra))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client, asyncio.timeout(10):
            while True:
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield base
    finally:
        stop.set()
        await task


def client_at(built: Intake, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=built.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest")


async def post(client: httpx.AsyncClient, key: str | None, body: Any, **headers: str) -> int:
    auth = {"X-API-Key": key} if key else {}
    response = await client.post(
        "/v1/events", content=orjson.dumps(body), headers={"content-type": ONE, **auth, **headers}
    )
    return response.status_code


# --- credentials ---------------------------------------------------------------------------------


async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(figures: Figures) -> None:
    """Through a real uvicorn: rotating `X-Forwarded-For` no longer escapes the limit."""
    built = build_intake(settings())
    async with served(built) as base, httpx.AsyncClient(base_url=base) as client:
        statuses = [
            await post(client, f"{i:04d}-guess", dossier("x"), **{"X-Forwarded-For": f"10.0.0.{i}"})
            for i in range(30)
        ]
    assert statuses[:LIMIT] == [401] * LIMIT
    assert statuses[LIMIT:] == [429] * (30 - LIMIT)
    # Trusted, the proxy's header names the client: each address has its own count.
    trusting = build_intake(settings(trusted_proxies="127.0.0.1/32, ::1"))
    async with served(trusting) as base, httpx.AsyncClient(base_url=base) as client:
        spread = [
            await post(client, f"{i:04d}-guess", dossier("x"), **{"X-Forwarded-For": f"10.0.1.{i}"})
            for i in range(30)
        ]
    assert spread == [401] * 30
    figures(
        f"30 guesses with rotating X-Forwarded-For: {statuses.count(429)} refused with 429 when"
        " the proxy is not trusted; with 127.0.0.1 trusted each forwarded address counts alone"
    )


def test_trusted_proxies_are_checked_addresses() -> None:
    assert settings(trusted_proxies="10.0.0.0/8,192.0.2.7").trusted_proxies == (
        "10.0.0.0/8",
        "192.0.2.7/32",
    )
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        settings(trusted_proxies="*")


async def test_a_valid_key_is_never_refused_because_of_others_failures() -> None:
    """All callers behind one proxy share its address; one guesser must not lock them out."""
    built = build_intake(settings())
    async with client_at(built, "198.51.100.1") as shared:
        for i in range(3 * LIMIT):
            assert await post(shared, f"{i:03d}-wrong", dossier("x")) in (401, 429)
        assert await post(shared, "wrong-again", dossier("x")) == 429
        assert await post(shared, None, dossier("x")) == 429
        assert await post(shared, KEY, dossier("valid")) == 202
    assert built.metric("govsync_intake_auth_failures_total", reason="rate_limited") >= 2


async def test_guessing_one_key_from_many_addresses_is_limited_by_its_prefix(
    figures: Figures,
) -> None:
    built = build_intake(settings())
    statuses = []
    for i in range(3 * LIMIT):
        async with client_at(built, f"203.0.113.{i}") as client:
            statuses.append(await post(client, KEY[:10] + f"{i:06d}", dossier("x")))
    assert statuses[:LIMIT] == [401] * LIMIT
    assert set(statuses[LIMIT:]) == {429}
    async with client_at(built, "203.0.113.250") as fresh:
        assert await post(fresh, "another-prefix", dossier("x")) == 401
        assert await post(fresh, KEY, dossier("valid")) == 202
    figures(
        f"{3 * LIMIT} guesses sharing a key prefix from {3 * LIMIT} addresses:"
        f" {statuses.count(429)} refused with 429; the valid key still 202"
    )


# --- sizes ---------------------------------------------------------------------------------------


@pytest.fixture
async def intake() -> AsyncIterator[tuple[Intake, httpx.AsyncClient]]:
    built = build_intake(settings(max_request_bytes=256 * 1024, max_json_values=10_000))
    async with client_at(built, "192.0.2.10") as client:
        yield built, client


async def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(
    intake: tuple[Intake, httpx.AsyncClient],
) -> None:
    built, client = intake
    declared = await client.post(
        "/v1/events",
        content=b"x" * 10,
        headers={"X-API-Key": KEY, "content-type": ONE, "content-length": str(10**9)},
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 65536

    streamed = await client.post(
        "/v1/events", content=chunks(), headers={"X-API-Key": KEY, "content-type": ONE}
    )
    assert streamed.status_code == 413
    assert built.sink.published == []


async def test_json_values_are_counted_before_parsing(
    intake: tuple[Intake, httpx.AsyncClient], figures: Figures
) -> None:
    _, client = intake
    empties = b"[" + b"{}," * 60_000 + b"{}]"
    started = time.perf_counter()
    response = await client.post(
        "/v1/events", content=empties, headers={"X-API-Key": KEY, "content-type": BATCH}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 413, response.text
    assert "JSON values" in response.json()["detail"]
    # The count is a bound: commas in a text raise it, and a text far below the budget passes.
    text = ",".join(["x"] * 5_000)
    assert await post(client, KEY, dossier("text", GhiChu=text)) == 202
    figures(f"{len(empties)} bytes of empty objects refused in {elapsed * 1000:.1f} ms")


async def test_the_workers_per_event_limit_holds_at_the_intake(figures: Figures) -> None:
    """A 1.5 MB event used to get 202, then a dead letter (the worker's limit is 1 MiB)."""
    built = build_intake(settings())
    event = dossier("big", GhiChu="x" * 1_500_000)
    async with client_at(built, "192.0.2.11") as client:
        response = await client.post(
            "/v1/events",
            content=orjson.dumps(event),
            headers={"X-API-Key": KEY, "content-type": ONE},
        )
    assert response.status_code == 413, response.text
    assert str(settings().max_event_bytes) in response.json()["detail"]
    assert built.sink.published == []
    figures(f"a {len(orjson.dumps(event))}-byte event: 413, {response.json()['detail']!r}")


def test_an_xml_package_is_bounded_by_its_nodes(figures: Figures) -> None:
    limits = EdxmlLimits(max_nodes=1000)
    documents = DocumentPipeline(own_agencies=OWN_AGENCIES, trust=None, limits=limits)
    flat = b"<edXML>" + b"<a/>" * 2_000_000 + b"</edXML>"
    envelope = Envelope("nodes", SOURCE, EventType.EDXML, NOW, flat, None, "bare")
    started = time.perf_counter()
    with pytest.raises(EdxmlRefusedError) as refused:
        documents.normalise(envelope, now=NOW)
    elapsed = time.perf_counter() - started
    assert refused.value.cause == "XmlTooLargeError"
    assert "elements and attributes" in str(refused.value)
    # A real package is far below the default budget.
    real = build_document(
        attachments=tuple(Attachment(f"{i}.txt", b"text", "text/plain") for i in range(50))
    )
    ok = DocumentPipeline(own_agencies=OWN_AGENCIES, trust=None, limits=EdxmlLimits())
    ok.normalise(Envelope("real", SOURCE, EventType.EDXML, NOW, real, None, "bare"), now=NOW)
    figures(f"{len(flat)} bytes of empty elements refused in {elapsed * 1000:.1f} ms")


# --- PDF signature checks ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return signed_pdf(make_pki().signer)


async def test_pdf_checks_are_bounded_per_package_and_per_request(
    pdf: bytes, figures: Figures
) -> None:
    built = build_intake(settings(edxml=EdxmlLimits(max_pdfs=4), max_pdfs_per_request=6))

    def package(number: str, pdfs: int) -> bytes:
        return build_document(
            number=number, attachments=tuple(Attachment(f"{i}.pdf", pdf) for i in range(pdfs))
        )

    async with client_at(built, "192.0.2.12") as client:
        too_many = await client.post(
            "/v1/events",
            content=orjson.dumps(edxml("five", package("5", 5))),
            headers={"X-API-Key": KEY, "content-type": ONE},
        )
        assert too_many.status_code == 422, too_many.text
        assert "more than 4 PDF" in too_many.text
        started = time.perf_counter()
        over_budget = await client.post(
            "/v1/events",
            content=orjson.dumps([edxml("a", package("a", 4)), edxml("b", package("b", 4))]),
            headers={"X-API-Key": KEY, "content-type": BATCH},
        )
        elapsed = time.perf_counter() - started
        assert over_budget.status_code == 413, over_budget.text
        assert "smaller requests" in over_budget.json()["detail"]
        within = await client.post(
            "/v1/events",
            content=orjson.dumps([edxml("c", package("c", 4)), edxml("d", package("d", 2))]),
            headers={"X-API-Key": KEY, "content-type": BATCH},
        )
        assert within.status_code == 202, within.text
    figures(
        f"a package of 5 signed PDFs (limit 4): 422; two of 4 (request budget 6): 413 after"
        f" {elapsed:.2f} s (4 checked, the second package's refused before any was)"
    )
