"""One source cannot write another agency's dossiers or documents (issue 13).

Before: any key could set any `MaDonVi`; with key A another agency's dossier was rewritten as
finished, on time and dated 9999-12-31, after which its real owner's updates were dropped as
stale; and key A could claim another agency's predictable `DocumentId` first, so the real
document counted as a duplicate. Now `GOVSYNC_SOURCE_AGENCIES` binds each source (and so each
key) to the agency codes it may write: a write naming another agency is 403 at the intake and a
dead letter on Kafka, unless the configuration binds the agency to both sources (shared).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from schemas.cloudevents import EventType
from services.common.auth import hash_key
from services.common.settings import KafkaSettings
from services.ingest.settings import IngestSettings
from tests.reliability.conftest import Intake, build_intake
from tests.support.edxml_corpus import build_document, build_status
from tests.support.ingest import ingest_settings, metric_value, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

KEY_A, KEY_B = "binding-key-a-0123456789abcdef", "binding-key-b-0123456789abcdef"
SOURCE_A, SOURCE_B = "urn:vn:gov:dvc:agency-a", "urn:vn:gov:dvc:agency-b"
AGENCY_A, AGENCY_B, SHARED = "000.00.00.G22", "000.00.10.H29", "000.00.20.H44"
BINDING = {SOURCE_A: [AGENCY_A, SHARED], SOURCE_B: [AGENCY_B, SHARED.lower()]}
CE = "application/cloudevents+json"


def dossier(
    source: str,
    event_id: str,
    code: str,
    *,
    agency: str | None = None,
    attribute: str | None = None,
    status: int = 2,
    time: str = "2026-03-01T08:00:00+07:00",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "MaHoSo": code,
        "TrangThaiHoSo": status,
        "NgayTiepNhan": "20260301080000",
        "NgayHenTra": "20260315170000",
    }
    if agency is not None:
        data["MaDonVi"] = agency
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": EventType.DOSSIER.value,
        "time": time,
        "data": data,
    }
    if attribute is not None:
        event["agency"] = attribute
    return event


def edxml(source: str, event_id: str, package: bytes, kind: EventType = EventType.EDXML) -> Any:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": kind.value,
        "data_base64": base64.b64encode(package).decode(),
    }


@pytest.fixture
async def intake() -> AsyncIterator[tuple[Intake, httpx.AsyncClient]]:
    built = build_intake(
        IngestSettings(
            api_keys={hash_key(KEY_A): [SOURCE_A], hash_key(KEY_B): [SOURCE_B]},
            source_agencies=BINDING,
        )
    )
    transport = httpx.ASGITransport(app=built.app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield built, client


async def send(client: httpx.AsyncClient, key: str, event: Any) -> httpx.Response:
    return await client.post(
        "/v1/events", content=orjson.dumps(event), headers={"X-API-Key": key, "content-type": CE}
    )


@pytest.mark.parametrize(
    ("event", "names"),
    [
        pytest.param(dossier(SOURCE_A, "1", "H29-1", agency=AGENCY_B), AGENCY_B, id="MaDonVi"),
        pytest.param(
            dossier(SOURCE_A, "2", "H29-2", attribute=AGENCY_B), AGENCY_B, id="agency-attribute"
        ),
        pytest.param(
            dossier(SOURCE_A, "3", "H29-3", agency=AGENCY_A, attribute=AGENCY_B),
            AGENCY_B,
            id="own-MaDonVi-foreign-attribute",
        ),
        pytest.param(
            edxml(SOURCE_A, "4", build_document(organ_id=AGENCY_B)), AGENCY_B, id="edxml-From"
        ),
        pytest.param(
            edxml(
                SOURCE_A,
                "5",
                build_document(organ_id=AGENCY_A, document_id=f"{AGENCY_B},2026/02/27,1/QĐ-UBND"),
            ),
            AGENCY_B,
            id="another-agencys-DocumentId",
        ),
        pytest.param(
            edxml(SOURCE_A, "6", build_status("06", responder=AGENCY_B), EventType.EDOC_STATUS),
            AGENCY_B,
            id="status-From",
        ),
        pytest.param(
            edxml(SOURCE_A, "7", build_document(organ_id="Nguyen Van A 0912345678")),
            None,
            id="edxml-From-not-a-code",
        ),
    ],
)
async def test_a_write_for_another_agency_is_403(
    intake: tuple[Intake, httpx.AsyncClient], event: Any, names: str | None
) -> None:
    built, client = intake
    response = await send(client, KEY_A, event)
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    if names is not None:
        assert names in detail
    assert "0912345678" not in response.text
    assert built.sink.published == []
    assert built.metric("govsync_intake_auth_failures_total", reason="agency_not_allowed") == 1


async def test_own_and_shared_agencies_are_accepted(
    intake: tuple[Intake, httpx.AsyncClient], figures: Figures
) -> None:
    built, client = intake
    accepted = [
        (KEY_A, dossier(SOURCE_A, "a-1", "G22-1", agency=AGENCY_A)),
        (KEY_A, dossier(SOURCE_A, "a-2", "G22-2", attribute=AGENCY_A.lower())),
        (KEY_A, dossier(SOURCE_A, "a-3", "G22-3")),  # names no agency: nothing to refuse
        (KEY_A, dossier(SOURCE_A, "a-4", "H44-1", agency=SHARED)),
        (KEY_B, dossier(SOURCE_B, "b-1", "H44-1", agency=SHARED)),
        (KEY_B, dossier(SOURCE_B, "b-2", "H29-1", agency=AGENCY_B)),
        (KEY_A, edxml(SOURCE_A, "a-5", build_document(organ_id=AGENCY_A))),
        (
            KEY_B,
            edxml(SOURCE_B, "b-3", build_status("06", responder=AGENCY_B), EventType.EDOC_STATUS),
        ),
    ]
    for key, event in accepted:
        response = await send(client, key, event)
        assert response.status_code == 202, (event["id"], response.text)
    assert len(built.sink.published) == len(accepted)
    figures(f"{len(accepted)} writes for own or shared agencies accepted, 7 foreign ones 403")


def test_a_malformed_binding_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="agency codes"):
        build_intake(IngestSettings(source_agencies={SOURCE_A: ["G22"]}))


@pytest.mark.kafka
async def test_the_takeover_of_the_issue_is_dead_lettered_on_kafka(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    """B's dossier, then A's forged "finished, on time" without any MaDonVi, then A naming B's
    agency, then B's real update: only B's two events are accepted.

    The issue's forgery was dated 9999-12-31; a future event time is now refused earlier (at
    validate, issue 12 finding 1), so the forgery here is dated in the past, where only the
    source binding can refuse it."""
    settings = ingest_settings(kafka_settings, unique, topic_partitions=1, source_agencies=BINDING)
    await create_topics(kafka_settings, settings.topic_dossier, partitions=1)
    events = [
        dossier(SOURCE_B, "b-1", "H29-TAKE", agency=AGENCY_B),
        dossier(SOURCE_A, "a-1", "H29-TAKE", status=9, time="2026-03-01T23:59:59+07:00"),
        dossier(SOURCE_A, "a-2", "H29-TAKE", agency=AGENCY_B, status=10),
        dossier(SOURCE_A, "a-3", "H29-TAKE", agency=AGENCY_A, status=10),
        dossier(
            SOURCE_B, "b-2", "H29-TAKE", agency=AGENCY_B, status=4, time="2026-03-02T08:00:00+07:00"
        ),
    ]
    async with running_ingest(settings) as base_url:
        await produce(
            kafka_settings,
            settings.topic_dossier,
            [Sent(orjson.dumps(e), key=b"H29-TAKE") for e in events],
        )
        normalised = await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=2)
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=3)
        async with httpx.AsyncClient(base_url=base_url) as client:
            metrics = (await client.get("/metrics")).text
    records = [orjson.loads(r.value or b"") for r in normalised]
    assert [(r["event_id"], r["revision"], r["status"], r["agency"]) for r in records] == [
        ("b-1", 1, 2, AGENCY_B),
        ("b-2", 2, 4, AGENCY_B),
    ]
    assert len(letters) == 3
    for letter in letters:
        assert letter.headers["govsync-dlq-stage"] == b"authorise"
        assert letter.headers["govsync-dlq-error"] == b"AgencyNotAllowedError"
        assert letter.headers["govsync-dlq-source"] == SOURCE_A.encode()
        assert AGENCY_B.encode() in letter.headers["govsync-dlq-reason"]
    dead = metric_value(
        metrics, "govsync_events_total", type=EventType.DOSSIER, outcome="dead_lettered"
    )
    assert dead == 3
    figures(
        "takeover refused: 3 writes by source A dead-lettered (stage authorise), B's update"
        " accepted at revision 2; e.g. " + repr(letters[0].headers["govsync-dlq-reason"].decode())
    )
