"""Acceptance for e-documents: the edXML corpus through the running service on the real broker.

Exactly the expected normalised records, verdicts, dead letters and metric values.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from services.common import deadletter
from services.common.settings import KafkaSettings
from tests.support.edxml_corpus import ISSUER, OWN_AGENCIES, RECIPIENT, Case, build_document, corpus
from tests.support.ingest import API_KEY, ingest_settings, metric_value, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic
from tests.support.pki import make_pki, sign_edxml, signer_bindings

pytestmark = pytest.mark.kafka

NOT_COUNTED = {"revoked", "replaced"}


def event_id(index: int, case: Case) -> str:
    """The id ingest gives each record of `as_record`: a content hash when it came bare."""
    if case.expected.kind == "status":
        return f"st-{index}"
    return f"doc-{index}" if index % 3 else "sha256:" + hashlib.sha256(case.raw).hexdigest()


def as_record(index: int, case: Case) -> Sent:
    """Documents arrive bare, in binary mode and in structured mode; statuses in binary mode."""
    if case.expected.kind == "status":
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", f"st-{index}".encode()),
            ("ce_source", b"urn:vn:gov:edoc:test"),
            ("ce_type", b"vn.gov.edoc.status.v1"),
            ("content-type", b"application/xml"),
        ]
        return Sent(case.raw, b"doc", headers)
    if index % 3 == 1:
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", f"doc-{index}".encode()),
            ("ce_source", b"urn:vn:gov:edoc:test"),
            ("ce_type", b"vn.gov.edoc.edxml.v1"),
        ]
        return Sent(case.raw, b"doc", headers)
    if index % 3 == 2:
        event = {
            "specversion": "1.0",
            "id": f"doc-{index}",
            "source": "urn:vn:gov:edoc:test",
            "type": "vn.gov.edoc.edxml.v1",
            "datacontenttype": "application/xml",
            "data_base64": base64.b64encode(case.raw).decode(),
        }
        return Sent(json.dumps(event).encode(), b"doc")
    return Sent(case.raw, b"doc")


async def test_edxml_corpus(kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    bundle = tmp_path / "trust.pem"
    bundle.write_bytes(make_pki().bundle_pem)
    settings = ingest_settings(
        kafka_settings,
        unique,
        trust_bundle=bundle,
        own_agencies=OWN_AGENCIES,
        label_agencies=frozenset({RECIPIENT}),
        signer_bindings=signer_bindings(ISSUER, RECIPIENT),
    )
    # Signing PDFs runs an event loop of pyHanko's own: build the corpus off this one.
    cases = await asyncio.to_thread(corpus)
    # One partition: the corpus's revocation and replacement follow the documents they name.
    await create_topics(kafka_settings, settings.topic_edocument, partitions=1)
    sent = [as_record(i, c) for i, c in enumerate(cases)]
    await produce(kafka_settings, settings.topic_edocument, sent)
    errors = [c for c in cases if c.expected.kind == "error"]
    valid = [c for c in cases if c.expected.kind != "error"]
    by_id = {event_id(i, c): c for i, c in enumerate(cases) if c.expected.kind != "error"}

    async with running_ingest(settings) as base_url:
        records = await read_topic(
            kafka_settings, settings.topic_edocument_normalized, at_least=len(valid)
        )
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=len(errors))
        async with httpx.AsyncClient(base_url=base_url) as client:
            metrics = (await client.get("/metrics")).text

    assert len(records) == len(valid)
    bodies = [orjson.loads(r.value or b"") for r in records]
    assert {b["event_id"] for b in bodies} == set(by_id)
    for record, body in zip(records, bodies, strict=True):
        case = by_id[body["event_id"]]
        if case.expected.kind == "status":
            assert record.headers["govsync-record-type"] == b"edocument-status"
            assert body["state"] == case.expected.state, case.name
            continue
        assert record.headers["govsync-record-type"] == b"edocument"
        assert body["signature"]["verdict"] == case.expected.verdict, case.name
        assert body["signature"]["legacy_algorithm"] is case.expected.legacy, case.name
        assert set(case.expected.anomalies) <= set(body["anomalies"]), case.name
        if case.expected.business_type:
            assert body["business_type"] == case.expected.business_type, case.name
        for attachment in body["attachments"]:
            assert "content" not in attachment
            expected_signed = case.expected.attachments_signed.get(attachment["name"])
            if expected_signed is not None:
                assert attachment["signature"]["verdict"] == expected_signed

    dead_values = [s.value for s, c in zip(sent, cases, strict=True) if c.expected.kind == "error"]
    assert Counter(letter.value for letter in letters) == Counter(dead_values)
    reasons = b" ".join(letter.headers[deadletter.REASON] for letter in letters)
    assert b"DOCTYPE" in reasons or b"DTD" in reasons
    assert all(letter.headers[deadletter.STAGE] == b"parse" for letter in letters)

    # Each document counted once, by direction and verdict; revocations and replacements not.
    counted = Counter(
        ("outgoing" if c.name != "irregular-organ-id" else "incoming", str(c.expected.verdict))
        for c in valid
        if c.expected.kind == "document" and c.name not in NOT_COUNTED
    )
    total = 0.0
    for (direction, verdict), count in counted.items():
        # An irregular code is never a label of its own.
        agency = ISSUER if direction == "outgoing" else "other"
        value = metric_value(
            metrics,
            "govsync_edocuments_total",
            agency=agency,
            direction=direction,
            signature=verdict,
        )
        assert value == count, (direction, verdict)
        total += value
    assert total == sum(counted.values())
    statuses = Counter(str(c.expected.state) for c in valid if c.expected.kind == "status")
    for state, count in statuses.items():
        assert (
            metric_value(metrics, "govsync_edocument_status_total", agency=RECIPIENT, status=state)
            == count
        ), state
    assert metric_value(
        metrics, "govsync_events_total", type="vn.gov.edoc.edxml.v1", outcome="dead_lettered"
    ) + metric_value(
        metrics, "govsync_events_total", type="unknown", outcome="dead_lettered"
    ) == len(errors)


async def test_edxml_over_http(kafka_settings: KafkaSettings, unique: str) -> None:
    settings = ingest_settings(
        kafka_settings,
        unique,
        own_agencies=OWN_AGENCIES,
        api_keys={hashlib.sha256(API_KEY.encode()).hexdigest(): ["urn:vn:gov:edoc:test"]},
    )
    signed = sign_edxml(build_document(number="900"), make_pki().signer)

    def event(event_id: str, raw: bytes) -> bytes:
        return json.dumps(
            {
                "specversion": "1.0",
                "id": event_id,
                "source": "urn:vn:gov:edoc:test",
                "type": "vn.gov.edoc.edxml.v1",
                "data_base64": base64.b64encode(raw).decode(),
            }
        ).encode()

    headers = {"Authorization": f"Bearer {API_KEY}", "content-type": "application/cloudevents+json"}
    async with running_ingest(settings) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        ok = await client.post("/v1/events", content=event("x-1", signed), headers=headers)
        hostile = await client.post(
            "/v1/events",
            content=event("x-2", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><edXML>&a;</edXML>'),
            headers=headers,
        )
        records = await read_topic(kafka_settings, settings.topic_edocument_normalized, at_least=1)
    assert ok.status_code == 202, ok.text
    assert hostile.status_code == 422
    assert hostile.json()["errors"][0]["field"] == "data"
    body = orjson.loads(records[0].value or b"")
    # No trust bundle configured: a valid signature is untrusted, never verified.
    assert body["signature"]["verdict"] == "untrusted"
    assert body["direction"] == "outgoing"
    assert records[0].key == body["document_id"].encode()
