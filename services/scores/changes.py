"""What the consumer hands the store: one change per record, a batch of them, and what a batch
changed. Plain values, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.facts import DossierFacts


@dataclass(frozen=True, slots=True)
class DossierChange:
    code: str
    revision: int
    facts: DossierFacts


@dataclass(frozen=True, slots=True)
class AckChange:
    """The portal's acknowledgement of a dossier: `header` = the portal holds it."""

    code: str
    revision: int
    header: bool


@dataclass(frozen=True, slots=True)
class DocumentChange:
    document_id: str
    version: int
    """The package's event time in ms: a newer package of the same document replaces it."""
    agency: str | None
    promulgated: datetime | None
    outgoing: bool
    verified: bool
    counts: bool = True
    """False for a package that only revokes others (it is no document of its own)."""
    withdraws: tuple[str, ...] = ()
    """Documents this package revokes, updates or replaces: they no longer count."""


@dataclass(frozen=True, slots=True)
class Batch:
    dossiers: Sequence[DossierChange] = ()
    acks: Sequence[AckChange] = ()
    documents: Sequence[DocumentChange] = ()
    withdrawn: Sequence[str] = ()
    """Documents a status package says were recalled (15: recall accepted)."""

    def __len__(self) -> int:
        return len(self.dossiers) + len(self.acks) + len(self.documents) + len(self.withdrawn)


@dataclass(slots=True)
class Applied:
    """What a batch changed: applied records, and those older than what is stored."""

    dossiers: int = 0
    acks: int = 0
    documents: int = 0
    stale_dossiers: int = 0
    stale_acks: int = 0
    stale_documents: int = 0

    @property
    def stale(self) -> int:
        return self.stale_dossiers + self.stale_acks + self.stale_documents
