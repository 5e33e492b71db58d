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


def test_a_restored_ledger_knows_every_document_it_counted() -> None:
    """Issue 12, finding 4: the ledger was an in-memory LRU; after a restart or a rebalance a
    redelivered package counted as a new document."""
    ledger = EDocumentLedger()
    for number in ("1", "2", "3"):
        ledger.record(_record(number=number), partition=number == "3")
    topic = {d: ledger.entry_bytes(d) for d in ledger.entries}
    restarted = EDocumentLedger()
    for partition in (0, 1):
        restarted.restore(partition, {d: v for d, (p, v) in topic.items() if p == partition})
    for number in ("1", "2", "3"):
        assert restarted.record(_record(number=number)).outcome is CountOutcome.DUPLICATE
    # A partition that moves away takes its entries along.
    assert len(restarted.drop(1)) == 1
    assert len(restarted) == 2


def test_revocation_and_replacement_change_what_a_document_counts_as() -> None:
    ledger = EDocumentLedger()
    ledger.record(_record())
    assert ledger.entries[ORIGINAL].counts_as() is not None
    replacement = _record(number="200", business_type=3, replaces=(ORIGINAL,))
    decision = ledger.record(replacement)
    assert decision.outcome is CountOutcome.REPLACED
    assert set(decision.changed) == {ORIGINAL, replacement.document_id}
    # One document still: the replacement counts, by its own verdict, and the original not.
    assert ledger.entries[ORIGINAL].counts_as() is None
    assert ledger.entries[replacement.document_id].counts_as() is not None
    revocation = _record(
        number="200", business_type=1, business_document_id=replacement.document_id
    )
    assert ledger.record(revocation).outcome is CountOutcome.REVOKED
    assert ledger.entries[replacement.document_id].counts_as() is None


def test_entries_no_package_touched_for_the_retention_are_forgotten() -> None:
    ledger = EDocumentLedger()
    ledger.record(_record(number="1"), now=NOW)
    ledger.record(_record(number="2"), now=NOW + timedelta(days=10))
    gone = ledger.expire(now=NOW + timedelta(days=12), retention_ms=5 * 86_400_000)
    assert [document_id.split(",")[-1] for document_id, _ in gone] == ["1/QĐ-UBND"]
    assert len(ledger) == 1


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
