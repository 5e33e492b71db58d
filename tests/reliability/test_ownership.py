"""A dossier or a document keeps its owning source (issue 13, "one source can take over").

The agency binding (`test_source_binding.py`) stops a source writing for an agency it is not
bound to. Two sources may be bound to one agency, though (its case-handling system and its
document system, a province's system and a ministry's): then each dossier and each document
stays with the source that first wrote it, and the other's writes are dead letters (stage
`authorise`, `NotOwnerError`) unless `GOVSYNC_SHARED_SOURCES` puts both in one group. Before,
state was keyed by `MaHoSo` alone and the ledger by `DocumentId` alone: whoever wrote next won.
The owner is part of the dossier's state and of the ledger entry, so it survives a restart.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.cloudevents import EventType
from services.common.settings import KafkaSettings
from services.ingest.dossiers.state import DossierState
from services.ingest.handling import EventHandler
from services.ingest.main import build_documents, build_handler, build_pipeline
from services.ingest.outcome import Outcome
from services.ingest.settings import IngestSettings
from tests.support.edxml_corpus import build_document, build_status
from tests.support.ingest import ingest_settings, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

CASES, DOCS, PARTNER = "urn:vn:gov:dvc:h44", "urn:vn:gov:edoc:h44", "urn:vn:gov:dvc:h44-mirror"
AGENCY, RECIPIENT = "000.00.20.H44", "000.00.10.H29"
BINDING = {CASES: [AGENCY], DOCS: [AGENCY, RECIPIENT], PARTNER: [AGENCY]}
DOSSIER_TOPIC, EDOC_TOPIC = "govsync.dossier.v1", "govsync.edocument.v1"
NOW = datetime.now(UTC).replace(microsecond=0)


def dossier(source: str, event_id: str, code: str, status: int, minutes: int) -> bytes:
    at = NOW - timedelta(hours=1) + timedelta(minutes=minutes)
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": EventType.DOSSIER.value,
            "time": at.isoformat(),
            "data": {
                "MaHoSo": code,
                "MaDonVi": AGENCY,
                "TrangThaiHoSo": status,
                "NgayTiepNhan": "20260301080000",
            },
        }
    )


def package(source: str, event_id: str, raw: bytes, kind: EventType = EventType.EDXML) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": kind.value,
            "data_base64": base64.b64encode(raw).decode(),
        }
    )


DOC_ID = f"{AGENCY},2026/02/27,55/QĐ-UBND"


def document(number: str = "55", **kwargs: Any) -> bytes:
    return build_document(organ_id=AGENCY, number=number, **kwargs)


def handler(**overrides: Any) -> EventHandler:
    settings = IngestSettings(**({"source_agencies": BINDING} | overrides))
    return build_handler(settings, build_pipeline(settings), build_documents(settings))


def run(worker: EventHandler, records: list[tuple[str, bytes]]) -> list[Any]:
    """The records through the worker's own handling, keeping state as the worker does."""
    states: dict[str, bytes] = {}

    async def go() -> list[Any]:
        results = []
        for topic, value in records:
            handled = await worker.handle(topic, value, [], states=states, now=NOW)
            if handled.state is not None:
                states[handled.state.code] = handled.state.packed
            results.append(handled)
        return results

    return asyncio.run(go())


def outcomes(results: list[Any]) -> list[str]:
    return [
        f"{r.outcome.value}:{r.refusal.error_class}" if r.refusal else r.outcome.value
        for r in results
    ]


def test_a_dossier_stays_with_its_first_source(figures: Figures) -> None:
    records = [
        (DOSSIER_TOPIC, dossier(CASES, "c-1", "H44-1", 2, 0)),
        (DOSSIER_TOPIC, dossier(DOCS, "d-1", "H44-1", 9, 5)),  # bound to the agency, not owner
        (DOSSIER_TOPIC, dossier(PARTNER, "p-1", "H44-1", 10, 6)),
        (DOSSIER_TOPIC, dossier(CASES, "c-2", "H44-1", 4, 10)),
    ]
    results = run(handler(), records)
    assert outcomes(results) == [
        "accepted",
        "dead_lettered:NotOwnerError",
        "dead_lettered:NotOwnerError",
        "accepted",
    ]
    assert results[1].refusal.stage == "authorise"
    assert DOCS not in results[1].refusal.reason
    assert CASES not in results[1].refusal.reason
    assert results[3].state.state.revision == 2
    assert results[3].state.state.owner == CASES
    # A shared group lets the partner write the case system's dossiers; the documents system
    # is still out.
    shared = run(handler(shared_sources=[[CASES, PARTNER]]), records)
    assert outcomes(shared) == [
        "accepted",
        "dead_lettered:NotOwnerError",
        "accepted",
        "accepted",
    ]
    # No binding configured: no owner is enforced (the service warns at start).
    assert outcomes(run(handler(source_agencies={}), records)) == ["accepted"] * 4
    figures("2 of 2 writes by other sources bound to the same agency dead-lettered; shared: 1 in")


def test_a_state_from_before_owners_is_adopted_by_its_next_writer() -> None:
    legacy = DossierState(revision=3, agency=AGENCY, history=b"").to_bytes()[:-2]  # no owner
    assert DossierState.from_bytes(legacy).owner is None
    worker = handler()

    async def go() -> Any:
        states = {"H44-OLD": legacy}
        return await worker.handle(
            DOSSIER_TOPIC, dossier(DOCS, "d-9", "H44-OLD", 4, 1), [], states=states, now=NOW
        )

    handled = asyncio.run(go())
    assert handled.outcome is Outcome.ACCEPTED
    assert DossierState.from_bytes(handled.state.packed).owner == DOCS


def test_a_document_stays_with_its_first_source() -> None:
    revoke_it = build_document(organ_id=AGENCY, number="77", business_type=1, replaces=(DOC_ID,))
    records = [
        (EDOC_TOPIC, package(CASES, "c-1", document())),
        # The same package from another source: a duplicate, whoever sends it.
        (EDOC_TOPIC, package(DOCS, "d-1", document())),
        # An update of it, a revocation naming it: the other source may do neither.
        (EDOC_TOPIC, package(DOCS, "d-2", document(business_type=2, subject="Sửa đổi"))),
        (EDOC_TOPIC, package(DOCS, "d-3", revoke_it)),
        # A status package about it: recipients report on documents they do not own.
        (
            EDOC_TOPIC,
            package(
                DOCS,
                "d-4",
                build_status("06", response_for=DOC_ID, responder=RECIPIENT),
                EventType.EDOC_STATUS,
            ),
        ),
        (EDOC_TOPIC, package(CASES, "c-2", document(business_type=2, subject="Sửa đổi"))),
    ]
    results = run(handler(), records)
    assert outcomes(results) == [
        "accepted",
        "duplicate",
        "dead_lettered:NotOwnerError",
        "dead_lettered:NotOwnerError",
        "accepted",
        "accepted",
    ]
    assert results[2].refusal.stage == "authorise"
    shared = run(handler(shared_sources=[[CASES, DOCS]]), records)
    assert outcomes(shared)[2:4] == ["accepted", "accepted"]


@pytest.mark.kafka
async def test_ownership_survives_a_restart(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    settings = ingest_settings(kafka_settings, unique, topic_partitions=1, source_agencies=BINDING)
    await create_topics(
        kafka_settings, settings.topic_dossier, settings.topic_edocument, partitions=1
    )
    async with running_ingest(settings):
        await produce(
            kafka_settings,
            settings.topic_dossier,
            [Sent(dossier(CASES, "c-1", "H44-R", 2, 0), key=b"H44-R")],
        )
        await produce(
            kafka_settings,
            settings.topic_edocument,
            [Sent(package(CASES, "c-doc", document()), key=b"doc")],
        )
        await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=1)
        await read_topic(kafka_settings, settings.topic_edocument_normalized, at_least=1)
    # A new process: the owners come back from the state and ledger topics.
    async with running_ingest(settings):
        await produce(
            kafka_settings,
            settings.topic_dossier,
            [
                Sent(dossier(DOCS, "d-1", "H44-R", 9, 5), key=b"H44-R"),
                Sent(dossier(CASES, "c-2", "H44-R", 4, 10), key=b"H44-R"),
            ],
        )
        await produce(
            kafka_settings,
            settings.topic_edocument,
            [Sent(package(DOCS, "d-doc", document(business_type=2, subject="X")), key=b"doc")],
        )
        normalised = await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=2)
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=2)
    records = [orjson.loads(r.value or b"") for r in normalised]
    assert [(r["event_id"], r["revision"]) for r in records] == [("c-1", 1), ("c-2", 2)]
    assert sorted(letter.headers["govsync-dlq-error"] for letter in letters) == [
        b"NotOwnerError",
        b"NotOwnerError",
    ]
    assert {letter.headers["govsync-dlq-source"] for letter in letters} == {DOCS.encode()}
    figures(
        "after a restart: the other source's dossier write and document update dead-lettered,"
        " the owner's next change accepted at revision 2"
    )
