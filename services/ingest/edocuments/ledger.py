"""The e-document counting ledger: what each package adds to the counts (each document once),
what each document counts as now (for the exact gauges), and each document's latest status.

Pure; the e-document pipeline runs it on the event loop, so it needs no lock. Whether a counted
document also counts as signed is the rule of `services/common/indicators.py`. The ledger is
durable: each entry a decision changes is written (`entry_bytes`) to the compacted ledger
topic under the document id, in the partition of the input record that created it, and
restored from there (`restore`) when that partition is assigned, like the dossier state; so a
restart or a rebalance never counts a redelivered package again.

Rules: a document is counted once, at its first package of any kind but revocation; the same
package again, or a second "new" package for a counted document, is a duplicate; an update of
a counted document is not counted again. A replacement (a package naming counted documents in
`replaces`) takes their place: it is not counted as one more document, the replaced ones no
longer count, and the document counts by the replacement's verdict. A revocation is recorded,
never counted, and takes the revoked document (and those it names) out of the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import orjson

from schemas.edocument import (
    BusinessType,
    Direction,
    EDocumentRecord,
    EDocumentState,
    EDocumentStatusRecord,
    SignatureVerdict,
)
from services.common.dates import to_ms
from services.common.indicators import is_signed

_VERSION = 1
_PACKAGE_CHARS = 16
"""Hex characters of a package's SHA-256 kept to know the same package again (64 bits)."""


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


CountsAs = tuple[str | None, Direction, SignatureVerdict]
"""How a document counts in the figures: its agency, direction and signature verdict."""


@dataclass(frozen=True, slots=True)
class CountDecision:
    """`counted`: one more document exchanged; `signed`: it also counts towards the signed share.
    `changed`: the ids of the entries the decision changed (to persist, and to recount)."""

    outcome: CountOutcome
    counted: bool
    signed: bool
    changed: tuple[str, ...] = ()


@dataclass(slots=True)
class Entry:
    partition: int
    counted: bool = False
    revoked: bool = False
    superseded: bool = False
    """Replaced by another document, which counts in its place."""
    last_package: str | None = None
    agency: str | None = None
    direction: Direction | None = None
    verdict: SignatureVerdict | None = None
    state: EDocumentState | None = None
    state_ms: int = 0
    status_code: str | None = None
    touched_ms: int = 0
    """govsync's clock when a package last changed the entry: the retention counts from it."""
    owner: str | None = None
    """The source of the first package of the document (status packages come from its
    recipients and own nothing)."""

    def counts_as(self) -> CountsAs | None:
        if not self.counted or self.revoked or self.superseded:
            return None
        if self.direction is None or self.verdict is None:
            return None
        return (self.agency, self.direction, self.verdict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [
                _VERSION,
                self.counted,
                self.revoked,
                self.superseded,
                self.last_package,
                self.agency,
                self.direction.value if self.direction else None,
                self.verdict.value if self.verdict else None,
                self.state.value if self.state else None,
                self.state_ms,
                self.status_code,
                self.touched_ms,
                self.owner,
            ]
        )

    @classmethod
    def from_bytes(cls, value: bytes, *, partition: int) -> Entry:
        f = orjson.loads(value)
        if f[0] != _VERSION:
            raise ValueError(f"unknown ledger entry version {f[0]}")
        return cls(
            partition=partition,
            counted=f[1],
            revoked=f[2],
            superseded=f[3],
            last_package=f[4],
            agency=f[5],
            direction=Direction(f[6]) if f[6] else None,
            verdict=SignatureVerdict(f[7]) if f[7] else None,
            state=EDocumentState(f[8]) if f[8] else None,
            state_ms=f[9],
            status_code=f[10],
            touched_ms=f[11],
            owner=f[12] if len(f) > 12 else None,  # entries written before owners were kept
        )


@dataclass(slots=True)
class EDocumentLedger:
    """Decides what each package adds to the counts, and tracks each document's latest status."""

    entries: dict[str, Entry] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def _entry(self, document_id: str, partition: int, now_ms: int) -> Entry:
        entry = self.entries.get(document_id)
        if entry is None:
            entry = self.entries[document_id] = Entry(partition=partition)
        entry.touched_ms = now_ms
        return entry

    def record(
        self, record: EDocumentRecord, *, partition: int = 0, now: datetime | None = None
    ) -> CountDecision:
        now_ms = to_ms(now or record.ingested_at)
        package = record.package_sha256[:_PACKAGE_CHARS]
        if self.repeats(record):
            return CountDecision(CountOutcome.DUPLICATE, counted=False, signed=False)
        entry = self._entry(record.document_id, partition, now_ms)
        entry.last_package = package
        entry.owner = entry.owner or record.source
        changed = [record.document_id]
        business = record.business_type
        if business is BusinessType.REVOKED:
            entry.revoked = True
            for target in record.replaces:
                found = self.entries.get(target)
                if found is not None and not found.revoked:
                    found.revoked, found.touched_ms = True, now_ms
                    changed.append(target)
            return CountDecision(CountOutcome.REVOKED, False, False, tuple(dict.fromkeys(changed)))
        if entry.counted:
            outcome = {
                BusinessType.NEW: CountOutcome.DUPLICATE,
                BusinessType.UPDATED: CountOutcome.UPDATED,
                BusinessType.REPLACED: CountOutcome.REPLACED,
            }[business]
            return CountDecision(outcome, False, False, tuple(changed))
        replaced = [
            t
            for t in record.replaces
            if t != record.document_id
            and (found := self.entries.get(t)) is not None
            and found.counted
            and not found.superseded
        ]
        entry.counted = True
        entry.agency = record.agency
        entry.direction = record.direction
        entry.verdict = record.signature.verdict
        if business in {BusinessType.UPDATED, BusinessType.REPLACED} and replaced:
            # It takes the place of the documents it replaces: one document still, by this
            # package's verdict.
            for target in replaced:
                found = self.entries[target]
                found.superseded, found.touched_ms = True, now_ms
            outcome = (
                CountOutcome.UPDATED if business is BusinessType.UPDATED else CountOutcome.REPLACED
            )
            return CountDecision(outcome, False, False, (*changed, *replaced))
        signed = is_signed(record.signature.verdict)
        return CountDecision(CountOutcome.COUNTED, True, signed, tuple(changed))

    def apply_status(
        self, status: EDocumentStatusRecord, *, partition: int = 0, now: datetime | None = None
    ) -> StatusOutcome:
        """Keep the latest status per document; an older timestamp is stale."""
        at_ms = to_ms(status.timestamp)
        known = self.entries.get(status.document_id)
        if known is not None and known.state is not None:
            if at_ms < known.state_ms:
                return StatusOutcome.STALE
            if at_ms == known.state_ms and status.status_code == known.status_code:
                return StatusOutcome.DUPLICATE
        entry = self._entry(status.document_id, partition, to_ms(now or status.ingested_at))
        entry.state, entry.state_ms, entry.status_code = status.state, at_ms, status.status_code
        return StatusOutcome.APPLIED

    def repeats(self, record: EDocumentRecord) -> bool:
        """The document's last package again: a duplicate, whoever sends it."""
        known = self.entries.get(record.document_id)
        return known is not None and known.last_package == record.package_sha256[:_PACKAGE_CHARS]

    def owners(self, record: EDocumentRecord) -> list[str | None]:
        """The owners of what a package would write: its document and those it replaces or
        revokes (None where nobody owns one yet)."""
        ids = (record.document_id, *record.replaces)
        return [entry.owner for d in ids if (entry := self.entries.get(d)) is not None]

    def state_of(self, document_id: str) -> EDocumentState | None:
        entry = self.entries.get(document_id)
        return entry.state if entry is not None else None

    def is_revoked(self, document_id: str) -> bool:
        entry = self.entries.get(document_id)
        return entry is not None and entry.revoked

    # --- durability -------------------------------------------------------------------------

    def entry_bytes(self, document_id: str) -> tuple[int, bytes]:
        """The entry's home partition and its value on the ledger topic."""
        entry = self.entries[document_id]
        return entry.partition, entry.to_bytes()

    def restore(self, partition: int, values: dict[str, bytes]) -> list[Entry]:
        """Take in a partition's entries as the ledger topic holds them; the entries."""
        restored = []
        for document_id, value in values.items():
            entry = self.entries[document_id] = Entry.from_bytes(value, partition=partition)
            restored.append(entry)
        return restored

    def drop(self, partition: int) -> list[Entry]:
        """Forget a revoked partition's entries; the entries forgotten."""
        gone = [d for d, e in self.entries.items() if e.partition == partition]
        return [self.entries.pop(d) for d in gone]

    def expire(self, *, now: datetime, retention_ms: int) -> list[tuple[str, Entry]]:
        """Forget entries no package touched for `retention_ms`; (id, entry) of each."""
        cutoff = to_ms(now) - retention_ms
        gone = [d for d, e in self.entries.items() if e.touched_ms and e.touched_ms < cutoff]
        return [(d, self.entries.pop(d)) for d in gone]
