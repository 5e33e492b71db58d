"""The hardened edXML reader: hostile input refused cheaply, bounds enforced, variants tolerated."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from schemas.edocument import Anomaly, BusinessType
from services.ingest.edocuments.edxml import (
    parse_date,
    parse_document,
    parse_status,
    parse_timestamp,
    parse_xml,
)
from services.ingest.errors import (
    AttachmentTooLargeError,
    EdxmlError,
    HostileXmlError,
    MalformedXmlError,
    NotEdxmlError,
    WrappedContentError,
    XmlTooDeepError,
    XmlTooLargeError,
)
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import (
    BILLION_LAUGHS,
    XXE,
    Attachment,
    build_document,
    build_status,
    deep_nesting,
)

LIMITS = EdxmlLimits()
UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param(BILLION_LAUGHS, HostileXmlError, id="billion-laughs"),
        pytest.param(XXE, HostileXmlError, id="xxe-file-etc-passwd"),
        pytest.param(
            b'\xef\xbb\xbf<?xml version="1.0"?><!-- x --><!doctype x SYSTEM "http://x/"><x/>',
            HostileXmlError,
            id="bom-comment-lowercase-doctype",
        ),
        pytest.param(
            UTF16_DOCTYPE.encode("utf-16"),
            HostileXmlError,
            id="utf16-doctype",
        ),
        pytest.param(deep_nesting(49), XmlTooDeepError, id="deeper-than-limit"),
        pytest.param(deep_nesting(400), XmlTooDeepError, id="deeper-than-libxml2"),
        pytest.param(b"<edXML><a></edXML>", MalformedXmlError, id="mismatched-tags"),
        pytest.param(b"<edXML>&undefined;</edXML>", MalformedXmlError, id="undeclared-entity"),
        pytest.param(b"", MalformedXmlError, id="empty"),
    ],
)
def test_refuses_hostile_and_broken_xml(raw: bytes, error: type[EdxmlError]) -> None:
    started = time.perf_counter()
    with pytest.raises(error) as caught:
        parse_xml(raw, LIMITS)
    # Refused before any expansion: far below what expanding the entities would take.
    assert time.perf_counter() - started < 0.05
    assert caught.value.retryable is False
    assert "passwd" not in str(caught.value)


def test_refuses_oversized_package_before_parsing() -> None:
    with pytest.raises(XmlTooLargeError):
        parse_xml(b"<edXML>" + b" " * 2048 + b"</edXML>", EdxmlLimits(max_bytes=1024))


def test_text_node_over_libxml2_limit_is_too_large() -> None:
    raw = b"<edXML>" + b"A" * 10_000_001 + b"</edXML>"
    with pytest.raises(XmlTooLargeError):
        parse_xml(raw, EdxmlLimits(max_bytes=20_000_000))


def test_depth_at_limit_is_accepted() -> None:
    parse_xml(deep_nesting(LIMITS.max_depth - 1), LIMITS)


def test_reads_the_envelope() -> None:
    document = parse_document(
        build_document(attachments=(Attachment("a.txt", b"hello", "text/plain"),)), LIMITS
    )
    assert document.document_id == "000.00.00.G22,2026/02/27,123/QĐ-UBND"
    assert document.issuer.organ_id == "000.00.00.G22"
    assert [r.organ_id for r in document.recipients] == ["000.00.10.H29"]
    assert (document.code_number, document.code_notation) == ("123", "QĐ-UBND")
    assert document.document_type_name == "Quyết định"
    assert document.business_type is BusinessType.NEW
    assert document.signature is None
    assert document.anomalies == frozenset()
    (attachment,) = document.attachments
    assert (attachment.name, attachment.size_bytes, attachment.is_pdf) == ("a.txt", 5, False)


@pytest.mark.parametrize(
    ("kwargs", "anomaly"),
    [
        pytest.param({"namespace": False}, Anomaly.NAMESPACE_MISSING, id="no-namespace"),
        pytest.param(
            {"attachments": (Attachment("a.pdf", b"%PDF-1.7 x", beside_envelope=True),)},
            Anomaly.ATTACHMENTS_OUTSIDE_BODY,
            id="attachments-beside-envelope",
        ),
        pytest.param(
            {"manifest_only": ("sent-separately.pdf",)},
            Anomaly.ATTACHMENT_NOT_ENCLOSED,
            id="manifest-without-content",
        ),
        pytest.param({"business_type": 7}, Anomaly.BUSINESS_TYPE_UNKNOWN, id="business-type-7"),
    ],
)
def test_tolerates_variants_and_flags_them(kwargs: dict[str, object], anomaly: Anomaly) -> None:
    document = parse_document(build_document(**kwargs), LIMITS)  # type: ignore[arg-type]
    assert anomaly in document.anomalies


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(0, BusinessType.NEW, id="0-new"),
        pytest.param(1, BusinessType.REVOKED, id="1-revoked"),
        pytest.param(2, BusinessType.UPDATED, id="2-updated"),
        pytest.param(3, BusinessType.REPLACED, id="3-replaced"),
    ],
)
def test_business_types(code: int, expected: BusinessType) -> None:
    document = parse_document(
        build_document(business_type=code, business_document_id="X,2026/01/01,1/QĐ"), LIMITS
    )
    assert document.business_type is expected
    assert document.replaces == (() if code == 0 else ("X,2026/01/01,1/QĐ",))


def test_attachment_size_comes_from_base64_and_is_bounded() -> None:
    content = b"x" * 3000
    document = parse_document(build_document(attachments=(Attachment("a.bin", content),)), LIMITS)
    assert document.attachments[0].size_bytes == 3000
    with pytest.raises(AttachmentTooLargeError):
        parse_document(
            build_document(attachments=(Attachment("a.bin", content),)),
            EdxmlLimits(max_attachment_bytes=2999),
        )


def test_too_many_attachments() -> None:
    many = tuple(Attachment(f"{i}.txt", b"x") for i in range(3))
    with pytest.raises(AttachmentTooLargeError):
        parse_document(build_document(attachments=many), EdxmlLimits(max_attachments=2))


def test_not_base64_attachment_is_malformed() -> None:
    raw = build_document(attachments=(Attachment("a.bin", b"abcd"),)).replace(b"YWJjZA==", b"YWJj!")
    with pytest.raises(MalformedXmlError):
        parse_document(raw, LIMITS)


def test_xml_without_message_header_is_not_edxml() -> None:
    with pytest.raises(NotEdxmlError):
        parse_document(b"<root><x/></root>", LIMITS)


_DS = b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"'


def _header_twice(raw: bytes) -> bytes:
    start = raw.index(b"<edXML:MessageHeader>")
    end = raw.index(b"</edXML:MessageHeader>") + len(b"</edXML:MessageHeader>")
    return raw[:end] + raw[start:end] + raw[end:]


def _in_signature(part: bytes) -> Callable[[bytes], bytes]:
    def wrap(raw: bytes) -> bytes:
        signature = (
            b"<ds:Signature " + _DS + b"><ds:Object>" + part + b"</ds:Object></ds:Signature>"
        )
        return raw.replace(b"</edXML:edXMLHeader>", signature + b"</edXML:edXMLHeader>", 1)

    return wrap


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(_header_twice, id="two-message-headers"),
        pytest.param(
            _in_signature(b"<edXML:MessageHeader/>"), id="message-header-inside-signature"
        ),
        pytest.param(
            _in_signature(b"<Attachment><ContentId>x</ContentId></Attachment>"),
            id="attachment-inside-signature",
        ),
        pytest.param(
            _in_signature(b"<Bussiness><BussinessDocType>1</BussinessDocType></Bussiness>"),
            id="business-inside-signature",
        ),
    ],
)
def test_wrapped_content_is_refused(forge: Callable[[bytes], bytes]) -> None:
    raw = forge(build_document())
    with pytest.raises(WrappedContentError) as refused:
        parse_document(raw, LIMITS)
    assert refused.value.reason == "wrapped_content"


def test_a_signature_with_only_its_own_parts_is_not_wrapped_content() -> None:
    raw = _in_signature(b"<ds:SignatureProperties/>")(build_document())
    assert parse_document(raw, LIMITS).signature is not None


@pytest.mark.parametrize("soap", [pytest.param(False, id="edxml"), pytest.param(True, id="soap")])
def test_reads_status_packages(soap: bool) -> None:
    status = parse_status(build_status("05", soap=soap), LIMITS)
    assert status.status_code == "05"
    assert status.response_for == "000.00.00.G22,2026/02/27,123/QĐ-UBND"
    assert status.responder.organ_id == "000.00.10.H29"
    assert status.timestamp_text == "2026/02/28 09:30:00"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        pytest.param("2026/02/27", "2026-02-27T00:00:00+07:00", id="yyyy/MM/dd"),
        pytest.param("27/02/2026", "2026-02-27T00:00:00+07:00", id="dd/MM/yyyy"),
        pytest.param("2026-02-27", "2026-02-27T00:00:00+07:00", id="iso-date"),
        pytest.param("2026/02/27 10:00:00", "2026-02-27T00:00:00+07:00", id="with-time"),
    ],
)
def test_parse_date(text: str, iso: str) -> None:
    parsed = parse_date(text)
    assert parsed is not None
    assert parsed.isoformat() == iso


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        pytest.param("2026/02/28 09:30:00", "2026-02-28T09:30:00+07:00", id="yyyy/MM/dd-HH:mm:ss"),
        pytest.param("28/02/2026 09:30:00", "2026-02-28T09:30:00+07:00", id="dd/MM/yyyy-HH:mm:ss"),
        pytest.param("2026-02-28T02:30:00Z", "2026-02-28T02:30:00+00:00", id="iso-utc"),
        pytest.param("yesterday", None, id="unreadable"),
    ],
)
def test_parse_timestamp(text: str, iso: str | None) -> None:
    parsed = parse_timestamp(text)
    assert (parsed.isoformat() if parsed else None) == iso
