"""The e-document counting ledger: each document counted once, revocations, status tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.edocument import EDocumentRecord, EDocumentState
from services.ingest.edocuments.ledger import CountOutcome, EDocumentLedger, StatusOutcome
from services.ingest.edocuments.normalise import (
    EventContext,
    normalise_edocument,
    normalise_edocument_status,
)
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import (
    ISSUER,
    NOW,
    OWN_AGENCIES,
    bindings,
    build_document,
    build_status,
)
from tests.support.pki import make_pki, sign_edxml

LIMITS = EdxmlLimits()
CONTEXT = EventContext(source="urn:test:edoc", event_id="e-1", event_time=NOW)


def _normalise(raw: bytes, trust: TrustBundle | None) -> EDocumentRecord:
    return normalise_edocument(
        raw,
        own_agencies=OWN_AGENCIES,
        trust=trust,
        now=NOW,
        limits=LIMITS,
        context=CONTEXT,
        bindings=bindings(),
    )


ORIGINAL = f"{ISSUER},2026/02/27,123/QĐ-UBND"


def _record(**kwargs: object) -> EDocumentRecord:
    return _normalise(build_document(**kwargs), None)  # type: ignore[arg-type]


def test_counting_sequence(bundle: TrustBundle) -> None:
    ledger = EDocumentLedger()
    signed = _normalise(sign_edxml(build_document(), make_pki().signer), bundle)
    steps = [
        ("original", signed, CountOutcome.COUNTED, True),
        ("redelivery", signed, CountOutcome.DUPLICATE, False),
        ("resent-new", _record(), CountOutcome.DUPLICATE, False),
        ("update-same-id", _record(business_type=2, subject="sửa"), CountOutcome.UPDATED, False),
        (
            "replacement-new-id",
            _record(number="200", business_type=3, replaces=(ORIGINAL,)),
            CountOutcome.REPLACED,
            False,
        ),
        (
            "update-of-replacement",
            _record(number="200", business_type=2, subject="sửa lần 2"),
            CountOutcome.UPDATED,
            False,
        ),
        (
            "revocation",
            _record(
                number="123", business_type=1, business_document_id=ORIGINAL, subject="thu hồi"
            ),
            CountOutcome.REVOKED,
            False,
        ),
        ("another-document", _record(number="300"), CountOutcome.COUNTED, False),
    ]
    for name, record, outcome, signed_flag in steps:
        decision = ledger.record(record)
        assert (name, decision.outcome, decision.signed) == (name, outcome, signed_flag)
        assert decision.counted is (outcome is CountOutcome.COUNTED)
    assert ledger.is_revoked(ORIGINAL)


def test_replacement_of_an_unknown_document_is_counted_once() -> None:
    ledger = EDocumentLedger()
    replacement = _record(number="400", business_type=3, replaces=("elsewhere,2020/01/01,1/X",))
    assert ledger.record(replacement).outcome is CountOutcome.COUNTED
    assert ledger.record(replacement).outcome is CountOutcome.DUPLICATE


def test_revocation_first_then_original_counts_the_original() -> None:
    ledger = EDocumentLedger()
    assert (
        ledger.record(_record(business_type=1, subject="thu hồi")).outcome is CountOutcome.REVOKED
    )
    assert ledger.record(_record()).outcome is CountOutcome.COUNTED


def test_ledger_memory_is_bounded() -> None:
    ledger = EDocumentLedger(max_documents=2)
    for number in ("1", "2", "3"):
        ledger.record(_record(number=number))
    assert len(ledger) == 2
    # The oldest was evicted, so it counts again: the documented price of the bound.
    assert ledger.record(_record(number="1")).outcome is CountOutcome.COUNTED


def test_status_tracking() -> None:
    ledger = EDocumentLedger()
    base = datetime(2026, 2, 28, 2, 30, tzinfo=UTC)

    def status(code: str, minutes: int) -> object:
        stamp = (base + timedelta(minutes=minutes)).astimezone(UTC)
        return normalise_edocument_status(
            build_status(code, timestamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ")),
            now=NOW,
            limits=LIMITS,
            context=CONTEXT,
        )

    assert ledger.apply_status(status("01", 0)) is StatusOutcome.APPLIED  # type: ignore[arg-type]
    assert ledger.apply_status(status("03", 10)) is StatusOutcome.APPLIED  # type: ignore[arg-type]
    assert ledger.apply_status(status("03", 10)) is StatusOutcome.DUPLICATE  # type: ignore[arg-type]
    assert ledger.apply_status(status("01", 5)) is StatusOutcome.STALE  # type: ignore[arg-type]
    assert ledger.state_of(ORIGINAL) is EDocumentState.REGISTERED
