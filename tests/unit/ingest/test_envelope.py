"""The three ways an event arrives: structured CloudEvent, binary CloudEvent, bare item."""

from __future__ import annotations

import base64
import json

import pytest

from schemas.cloudevents import EventType
from services.ingest.envelope import decode_record
from services.ingest.errors import ContractError, DecodeError, IngestError, UnsupportedTypeError

ITEM = {"MaHoSo": "H-1", "TrangThaiHoSo": 2}
STRUCTURED = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "urn:src",
    "type": "vn.gov.dvc.dossier.v1",
    "time": "2026-11-02T10:00:00+07:00",
    "agency": "000.00.00.G22",
    "data": ITEM,
}


def test_structured_mode() -> None:
    envelope = decode_record(json.dumps(STRUCTURED).encode(), [], topic="t", max_bytes=10_000)
    assert (envelope.id, envelope.source, envelope.type) == ("e-1", "urn:src", EventType.DOSSIER)
    assert envelope.agency == "000.00.00.G22"
    assert envelope.data == ITEM
    assert envelope.mode == "structured"
    assert envelope.time is not None
    assert envelope.time.utcoffset() is not None


def test_structured_mode_with_data_base64() -> None:
    event = {
        **STRUCTURED,
        "data": None,
        "data_base64": base64.b64encode(b'{"MaHoSo":"H"}').decode(),
    }
    del event["data"]
    envelope = decode_record(json.dumps(event).encode(), [], topic="t", max_bytes=10_000)
    assert envelope.data == {"MaHoSo": "H"}


def test_binary_mode() -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-2"),
        ("ce_source", b"urn:src"),
        ("ce_type", b"vn.gov.dvc.dossier.progress.v1"),
        ("ce_time", b"2026-11-02T03:00:00Z"),
        ("ce_madonvi", b"000.00.10.H29"),
        ("content-type", b"application/json"),
    ]
    envelope = decode_record(b'{"MaHoSo":"H-1"}', headers, topic="t", max_bytes=10_000)
    assert (envelope.id, envelope.type, envelope.mode) == ("e-2", EventType.PROGRESS, "binary")
    assert envelope.agency == "000.00.10.H29"
    assert envelope.data == {"MaHoSo": "H-1"}


def test_bare_item_gets_a_content_id_and_the_topic_as_source() -> None:
    value = json.dumps(ITEM).encode()
    first = decode_record(value, [], topic="govsync.dossier.v1", max_bytes=10_000)
    again = decode_record(value, [], topic="govsync.dossier.v1", max_bytes=10_000)
    assert first.mode == "bare"
    assert first.source == "govsync.dossier.v1"
    assert first.type == EventType.DOSSIER
    assert first.id == again.id
    assert first.id.startswith("sha256:")


def test_bare_progress_item_is_recognised() -> None:
    value = json.dumps({"mahoso": "H", "ThoiDiemXuLy": "20261102100000"}).encode()
    envelope = decode_record(value, [], topic="t", max_bytes=10_000)
    assert envelope.type == EventType.PROGRESS


def test_bare_xml_is_an_edxml_package() -> None:
    envelope = decode_record(b"  <edXML/>", [], topic="t", max_bytes=10_000)
    assert envelope.type == EventType.EDXML
    assert envelope.data == b"  <edXML/>"


@pytest.mark.parametrize(
    ("value", "headers", "error"),
    [
        pytest.param(None, [], DecodeError, id="tombstone"),
        pytest.param(b"x" * 10_001, [], DecodeError, id="oversized"),
        pytest.param(b"\xff\xfe garbage", [], DecodeError, id="not-utf8"),
        pytest.param(b"{not json", [], DecodeError, id="broken-json"),
        pytest.param(b"[1, 2]", [], DecodeError, id="json-array"),
        pytest.param(b'"text"', [], DecodeError, id="json-string"),
        pytest.param(b"[" * 5000 + b"]" * 5000, [], DecodeError, id="deep-nesting"),
        pytest.param(b'{"MaHoSo": 1' + b"0" * 400 + b"}", [], DecodeError, id="huge-number"),
        pytest.param(
            json.dumps({**STRUCTURED, "specversion": "0.3"}).encode(),
            [],
            ContractError,
            id="wrong-specversion",
        ),
        pytest.param(
            json.dumps({**STRUCTURED, "type": "com.example.other"}).encode(),
            [],
            UnsupportedTypeError,
            id="unknown-type",
        ),
        pytest.param(
            json.dumps({k: v for k, v in STRUCTURED.items() if k != "id"}).encode(),
            [],
            ContractError,
            id="missing-id",
        ),
        pytest.param(
            json.dumps({**STRUCTURED, "data": None}).encode(),
            [],
            ContractError,
            id="no-data",
        ),
        pytest.param(
            json.dumps({**STRUCTURED, "data_base64": "!!!"}).encode(),
            [],
            ContractError,
            id="data-and-data-base64",
        ),
        pytest.param(
            b"{}",
            [("ce_specversion", b"1.0"), ("ce_id", b"x")],
            ContractError,
            id="binary-missing-attributes",
        ),
        pytest.param(
            b"{}",
            [("ce_specversion", b"\xff")],
            DecodeError,
            id="binary-header-not-utf8",
        ),
    ],
)
def test_undecodable_records(
    value: bytes | None, headers: list[tuple[str, bytes]], error: type[IngestError]
) -> None:
    with pytest.raises(error):
        decode_record(value, headers, topic="t", max_bytes=10_000)
