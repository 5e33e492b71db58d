"""The e-document counting ledger: what each package adds to the counts (each document once), and
each document's latest status.

Pure and in memory; the e-document pipeline runs it on the event loop, so it needs no lock.
Whether a counted document also counts as signed is the rule of `services/common/indicators.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.edocument import BusinessType, EDocumentRecord, EDocumentState, EDocumentStatusRecord
from services.common.indicators import is_signed


class CountOutcome(StrEnum):
    """What a document package did to the counts; a closed set, safe as a metric label."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    REPLACED = "replaced"
    REVOKED = "revoked"


class StatusOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class CountDecision:
    """`counted`: one more document exchanged; `signed`: it also counts towards the signed share."""

    outcome: CountOutcome
    counted: bool
    signed: bool


@dataclass(slots=True)
class _Entry:
    counted: bool = False
    revoked: bool = False
    last_package: str | None = None
    state: EDocumentState | None = None
    state_at: datetime | None = None
    status_code: str | None = None


class EDocumentLedger:
    """Decides what each package adds to the counts, and tracks each document's latest status.

    Rules: a document is counted once, at its first package of any kind but revocation; the same
    package again, or a second "new" package for a counted document, is a duplicate; an update or
    a replacement of a counted document is not counted again (a replacement naming a counted
    document in `replaces` is not counted either); a revocation is recorded, never counted.
    A document counts as signed when its counted package's signature was `verified`.

    Memory is bounded: at most `max_documents` entries (about 300 bytes each, so 100,000 take some
    30 MB), least recently touched evicted first. An evicted document seen again is counted again,
    so size it to cover the redelivery window; durable de-duplication belongs to the state the
    worker persists, this is the in-process decision.
    """

    def __init__(self, max_documents: int = 100_000) -> None:
        if max_documents < 1:
            raise ValueError("max_documents must be at least 1")
        self._max = max_documents
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, document_id: str) -> _Entry:
        entry = self._entries.get(document_id)
        if entry is None:
            entry = _Entry()
            self._entries[document_id] = entry
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(document_id)
        return entry

    def record(self, record: EDocumentRecord) -> CountDecision:
        entry = self._entry(record.document_id)
        if entry.last_package == record.package_sha256:
            return CountDecision(CountOutcome.DUPLICATE, counted=False, signed=False)
        entry.last_package = record.package_sha256
        business = record.business_type
        if business is BusinessType.REVOKED:
            entry.revoked = True
            for target in record.replaces:
                if target in self._entries:
                    self._entries[target].revoked = True
            return CountDecision(CountOutcome.REVOKED, counted=False, signed=False)
        if entry.counted:
            outcome = {
                BusinessType.NEW: CountOutcome.DUPLICATE,
                BusinessType.UPDATED: CountOutcome.UPDATED,
                BusinessType.REPLACED: CountOutcome.REPLACED,
            }[business]
            return CountDecision(outcome, counted=False, signed=False)
        if business in {BusinessType.UPDATED, BusinessType.REPLACED} and any(
            (known := self._entries.get(t)) is not None and known.counted for t in record.replaces
        ):
            # Mark it counted so its own redeliveries and updates are not counted later.
            entry.counted = True
            outcome = (
                CountOutcome.UPDATED if business is BusinessType.UPDATED else CountOutcome.REPLACED
            )
            return CountDecision(outcome, counted=False, signed=False)
        entry.counted = True
        signed = is_signed(record.signature.verdict)
        return CountDecision(CountOutcome.COUNTED, counted=True, signed=signed)

    def apply_status(self, status: EDocumentStatusRecord) -> StatusOutcome:
        """Keep the latest status per document; an older timestamp is stale."""
        entry = self._entry(status.document_id)
        if entry.state_at is not None:
            if status.timestamp < entry.state_at:
                return StatusOutcome.STALE
            if status.timestamp == entry.state_at and status.status_code == entry.status_code:
                return StatusOutcome.DUPLICATE
        entry.state, entry.state_at, entry.status_code = (
            status.state,
            status.timestamp,
            status.status_code,
        )
        return StatusOutcome.APPLIED

    def state_of(self, document_id: str) -> EDocumentState | None:
        entry = self._entries.get(document_id)
        return entry.state if entry is not None else None

    def is_revoked(self, document_id: str) -> bool:
        entry = self._entries.get(document_id)
        return entry is not None and entry.revoked
