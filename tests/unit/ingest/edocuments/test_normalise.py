"""E-document normalisation over the shared corpus, status packages, the exported schemas."""

from __future__ import annotations

import json

import pytest

from schemas.edocument import (
    SCHEMA_MODELS,
    Anomaly,
    BusinessType,
    Direction,
    EDocumentRecord,
    EDocumentState,
    SignatureVerdict,
)
from services.ingest.edocuments.normalise import (
    EventContext,
    clean_text,
    normalise_edocument,
    normalise_edocument_status,
)
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.errors import EdxmlError, EdxmlFieldError
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import (
    ISSUER,
    NOW,
    OWN_AGENCIES,
    RECIPIENT,
    Attachment,
    Case,
    bindings,
    build_document,
    build_status,
    corpus,
)

LIMITS = EdxmlLimits()
CONTEXT = EventContext(source="urn:test:edoc", event_id="e-1", event_time=NOW)
CASES = corpus()


def _normalise(
    raw: bytes, trust: TrustBundle | None, own: frozenset[str] = OWN_AGENCIES
) -> EDocumentRecord:
    return normalise_edocument(
        raw,
        own_agencies=own,
        trust=trust,
        now=NOW,
        limits=LIMITS,
        context=CONTEXT,
        bindings=bindings(),
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_corpus(case: Case, bundle: TrustBundle) -> None:
    expected = case.expected
    if expected.kind == "error":
        with pytest.raises(EdxmlError) as caught:
            normalise_edocument(
                case.raw,
                own_agencies=OWN_AGENCIES,
                trust=bundle,
                now=NOW,
                limits=LIMITS,
                context=CONTEXT,
            )
        assert caught.value.reason == expected.error
        return
    if expected.kind == "status":
        status = normalise_edocument_status(case.raw, now=NOW, limits=LIMITS, context=CONTEXT)
        assert status.state is expected.state
        assert expected.anomalies <= set(status.anomalies)
        return
    record = _normalise(case.raw, bundle)
    assert record.signature.verdict is expected.verdict
    assert record.signature.legacy_algorithm is expected.legacy
    assert record.business_type is (expected.business_type or BusinessType.NEW)
    assert expected.anomalies <= set(record.anomalies)
    if expected.attachments_signed:
        verdicts = {
            a.name: a.signature.verdict if a.signature else None for a in record.attachments
        }
        assert verdicts == expected.attachments_signed


def test_record_fields() -> None:
    record = _normalise(
        build_document(
            subject="  Về việc\x9f thi\u0301 điểm\n liên thông  ",
            attachments=(Attachment("qd.txt", b"abc", "text/plain"),),
        ),
        None,
    )
    assert record.document_id == f"{ISSUER},2026/02/27,123/QĐ-UBND"
    assert (record.issuer.organ_id, record.issuer.code_valid) == (ISSUER, True)
    assert [(r.organ_id, r.code_valid) for r in record.recipients] == [(RECIPIENT, True)]
    assert (record.number, record.notation) == ("123", "QĐ-UBND")
    assert record.document_type is not None
    assert (record.document_type.code, record.document_type.name) == ("1", "Quyết định")
    # NFC (i + combining acute -> í), control character gone, whitespace collapsed.
    assert record.subject == "Về việc thí điểm liên thông"
    assert record.promulgation_date is not None
    assert record.promulgation_date.isoformat() == "2026-02-27T00:00:00+07:00"
    assert record.direction is Direction.OUTGOING
    assert record.agency == ISSUER
    assert record.signature.verdict is SignatureVerdict.UNSIGNED
    (attachment,) = record.attachments
    assert (attachment.size_bytes, attachment.enclosed, attachment.signed) == (3, True, False)
    assert (record.ingested_at, record.event_time, record.source) == (NOW, NOW, "urn:test:edoc")
    # The record never carries attachment content nor the signer's name from SignerInfo.
    dumped = record.model_dump_json()
    assert "YWJj" not in dumped
    assert "Nguyễn Văn A" not in dumped


@pytest.mark.parametrize(
    ("own", "direction"),
    [
        pytest.param(frozenset({ISSUER}), Direction.OUTGOING, id="issuer-is-ours"),
        pytest.param(frozenset({RECIPIENT}), Direction.INCOMING, id="recipient-is-ours"),
        pytest.param(frozenset(), Direction.INCOMING, id="none-configured"),
    ],
)
def test_direction(own: frozenset[str], direction: Direction) -> None:
    assert _normalise(build_document(), None, own).direction is direction


def test_irregular_organ_id_is_kept_and_flagged() -> None:
    record = _normalise(
        build_document(organ_id="H29.12", recipients=("000.00.10.H29", "xyz")), None
    )
    assert record.issuer.organ_id == "H29.12"
    assert record.agency == "H29.12"
    assert record.issuer.code_valid is False
    assert [r.code_valid for r in record.recipients] == [True, False]
    assert Anomaly.IRREGULAR_ORGAN_ID in record.anomalies


def test_document_id_is_derived_when_missing() -> None:
    record = _normalise(build_document(document_id=None), None)
    assert record.document_id == f"{ISSUER},2026/02/27,123/QĐ-UBND"
    assert Anomaly.DOCUMENT_ID_DERIVED in record.anomalies


def test_no_document_id_and_nothing_to_derive_it_from() -> None:
    with pytest.raises(EdxmlFieldError):
        _normalise(build_document(document_id=None, date="someday"), None)


def test_subject_is_bounded() -> None:
    record = normalise_edocument(
        build_document(subject="x" * 50),
        own_agencies=OWN_AGENCIES,
        trust=None,
        now=NOW,
        limits=EdxmlLimits(max_subject_chars=10),
        context=CONTEXT,
    )
    assert record.subject == "x" * 10
    assert Anomaly.SUBJECT_TRUNCATED in record.anomalies


def test_status_record() -> None:
    status = normalise_edocument_status(build_status("6"), now=NOW, limits=LIMITS, context=CONTEXT)
    assert (status.status_code, status.state) == ("06", EDocumentState.FINISHED)
    assert status.document_id == f"{ISSUER},2026/02/27,123/QĐ-UBND"
    assert status.timestamp.isoformat() == "2026-02-28T09:30:00+07:00"
    assert status.responder.organ_id == RECIPIENT
    # StaffInfo names a person: it stays out of the record.
    assert "Trần Thị B" not in status.model_dump_json()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(build_status("07"), id="unknown-code"),
        pytest.param(build_status("01", timestamp="soon"), id="unreadable-timestamp"),
    ],
)
def test_bad_status_packages(raw: bytes) -> None:
    with pytest.raises(EdxmlFieldError):
        normalise_edocument_status(raw, now=NOW, limits=LIMITS, context=CONTEXT)


# --- schema export -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_json_schema_exports(name: str) -> None:
    schema = SCHEMA_MODELS[name].model_json_schema()
    assert schema["additionalProperties"] is False
    json.dumps(schema)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("a\u0000b", 10, ("ab", False), id="nul"),
        pytest.param("  ", 10, (None, False), id="blank"),
        pytest.param("abcdef", 3, ("abc", True), id="cut"),
    ],
)
def test_clean_text(text: str, limit: int, expected: tuple[str | None, bool]) -> None:
    assert clean_text(text, limit) == expected
