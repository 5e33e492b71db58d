"""The e-document path: an envelope carrying an edXML package becomes a record and a counting
decision. The CPU-heavy part (`normalise`) runs off the event loop; `decide` keeps the ledger
and runs on it, so the ledger needs no lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from schemas.cloudevents import EventType
from schemas.edocument import EDocumentRecord, EDocumentStatusRecord
from services.common.indicators import Counted
from services.ingest.edocuments.ledger import CountOutcome, EDocumentLedger, StatusOutcome
from services.ingest.edocuments.normalise import (
    EventContext,
    normalise_edocument,
    normalise_edocument_status,
)
from services.ingest.edocuments.signature import TrustBundle
from services.ingest.envelope import Envelope, check_cloudevent_time
from services.ingest.errors import ContractError, DecodeError, EdxmlError, EdxmlRefusedError
from services.ingest.outcome import Outcome
from services.ingest.settings import EdxmlLimits


@dataclass(frozen=True, slots=True)
class DocumentResult:
    outcome: Outcome
    record: EDocumentRecord | EDocumentStatusRecord | None = None
    counted: Counted | None = None
    status_agency: str | None = None
    changed: tuple[str, ...] = ()
    """Ledger entries the package changed: to persist and to recount."""

    @property
    def key(self) -> str | None:
        return self.record.document_id if self.record is not None else None


class DocumentPipeline:
    """Normalises edXML packages and decides what each adds to the digital-signature counts."""

    def __init__(
        self,
        *,
        own_agencies: frozenset[str],
        trust: TrustBundle | None,
        limits: EdxmlLimits,
        ledger: EDocumentLedger | None = None,
        max_future_skew: timedelta = timedelta(seconds=300),
    ) -> None:
        self._max_skew = max_future_skew
        self._own = own_agencies
        self._trust = trust
        self._limits = limits
        self._ledger = ledger or EDocumentLedger()

    @property
    def limits(self) -> EdxmlLimits:
        return self._limits

    @property
    def ledger(self) -> EDocumentLedger:
        return self._ledger

    def normalise(
        self, envelope: Envelope, *, now: datetime
    ) -> EDocumentRecord | EDocumentStatusRecord:
        """Parse and verify; pure and thread-safe. Raises `EventRefusedError` with the reason."""
        if not isinstance(envelope.data, bytes):
            raise DecodeError("an edXML event carries the package as bytes (data_base64 or XML)")
        if envelope.time is not None:
            check_cloudevent_time(envelope.time, now=now, max_skew=self._max_skew)
        context = EventContext(envelope.source, envelope.id, envelope.time or now)
        try:
            if envelope.type == EventType.EDOC_STATUS:
                return normalise_edocument_status(
                    envelope.data, now=now, limits=self._limits, context=context
                )
            return normalise_edocument(
                envelope.data,
                own_agencies=self._own,
                trust=self._trust,
                now=now,
                limits=self._limits,
                context=context,
            )
        except EdxmlError as exc:
            raise EdxmlRefusedError(exc) from None
        except ValidationError as exc:
            raise ContractError.from_validation(
                "the package's values are out of bounds", exc
            ) from None

    def decide(
        self,
        record: EDocumentRecord | EDocumentStatusRecord,
        *,
        partition: int = 0,
        now: datetime | None = None,
    ) -> DocumentResult:
        """Count each document once; keep each document's latest status. `partition` is the
        input record's: where a new ledger entry lives."""
        if isinstance(record, EDocumentStatusRecord):
            applied = self._ledger.apply_status(record, partition=partition, now=now)
            if applied is StatusOutcome.DUPLICATE:
                return DocumentResult(Outcome.DUPLICATE)
            if applied is StatusOutcome.STALE:
                return DocumentResult(Outcome.STALE)
            return DocumentResult(
                Outcome.ACCEPTED,
                record=record,
                status_agency=record.responder.organ_id,
                changed=(record.document_id,),
            )
        decision = self._ledger.record(record, partition=partition, now=now)
        if decision.outcome is CountOutcome.DUPLICATE:
            return DocumentResult(Outcome.DUPLICATE)
        counted = (
            Counted(record.agency, record.direction, record.signature.verdict)
            if decision.counted
            else None
        )
        return DocumentResult(
            Outcome.ACCEPTED, record=record, counted=counted, changed=decision.changed
        )
