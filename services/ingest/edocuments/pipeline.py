"""The e-document path: an envelope carrying an edXML package becomes a record and a counting
decision. The CPU-heavy part (`normalise`) runs off the event loop, on the pipeline's own
threads (`normalise_off_loop`); `decide` keeps the ledger and runs on it, so the ledger needs no
lock."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from schemas.cloudevents import EventType
from schemas.edocument import EDocumentRecord, EDocumentStatusRecord, is_regular_organ_id
from services.common.indicators import Counted
from services.ingest.binding import SourceBinding
from services.ingest.edocuments.binding import SignerBindings
from services.ingest.edocuments.ledger import CountOutcome, EDocumentLedger, StatusOutcome
from services.ingest.edocuments.normalise import (
    EventContext,
    VerificationBudget,
    normalise_edocument,
    normalise_edocument_status,
)
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.envelope import Envelope, check_cloudevent_time
from services.ingest.errors import (
    ContractError,
    DecodeError,
    EdxmlError,
    EdxmlRefusedError,
    at_stage,
)
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
        bindings: SignerBindings | None = None,
        source_binding: SourceBinding | None = None,
        max_future_skew: timedelta = timedelta(seconds=300),
    ) -> None:
        self._max_skew = max_future_skew
        self._own = own_agencies
        self._trust = trust
        self._bindings = bindings or SignerBindings()
        self._limits = limits
        self._ledger = ledger or EDocumentLedger()
        self._source_binding = source_binding or SourceBinding({})
        # Shared by the intake and the worker, which hold the same pipeline: `concurrency`
        # packages at a time, always on the same threads, so that libxml2's and OpenSSL's memory
        # is reused from one package to the next rather than held by every thread that ever ran
        # one (glibc keeps an arena per thread).
        self._executor = ThreadPoolExecutor(limits.concurrency, thread_name_prefix="edxml")

    @property
    def limits(self) -> EdxmlLimits:
        return self._limits

    @property
    def ledger(self) -> EDocumentLedger:
        return self._ledger

    async def normalise_off_loop(
        self, envelope: Envelope, *, now: datetime, budget: VerificationBudget | None = None
    ) -> EDocumentRecord | EDocumentStatusRecord:
        """`normalise` on the pipeline's own threads; the event loop goes on meanwhile."""
        call = functools.partial(self.normalise, envelope, now=now, budget=budget)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def normalise(
        self, envelope: Envelope, *, now: datetime, budget: VerificationBudget | None = None
    ) -> EDocumentRecord | EDocumentStatusRecord:
        """Parse and verify; pure and thread-safe. Raises `EventRefusedError` with the reason."""
        if not isinstance(envelope.data, bytes):
            raise DecodeError("an edXML event carries the package as bytes (data_base64 or XML)")
        if envelope.time is not None:
            check_cloudevent_time(envelope.time, now=now, max_skew=self._max_skew)
        context = EventContext(envelope.source, envelope.id, envelope.time or now)
        # A defect the package triggers is named by its stage (`signature` inside, else `parse`).
        with at_stage("parse"):
            try:
                record = self._normalise(envelope.data, envelope.type, context, now, budget)
            except EdxmlError as exc:
                raise EdxmlRefusedError(exc) from None
            except ValidationError as exc:
                raise ContractError.from_validation(
                    "the package's values are out of bounds", exc
                ) from None
            self._source_binding.check(
                envelope.source, self._agencies_named(record, envelope.agency)
            )
        return record

    def _normalise(
        self,
        raw: bytes,
        event_type: EventType,
        context: EventContext,
        now: datetime,
        budget: VerificationBudget | None,
    ) -> EDocumentRecord | EDocumentStatusRecord:
        if event_type == EventType.EDOC_STATUS:
            return normalise_edocument_status(raw, now=now, limits=self._limits, context=context)
        return normalise_edocument(
            raw,
            own_agencies=self._own,
            trust=self._trust,
            now=now,
            limits=self._limits,
            context=context,
            bindings=self._bindings,
            budget=budget,
        )

    @staticmethod
    def _agencies_named(
        record: EDocumentRecord | EDocumentStatusRecord, attribute: str | None
    ) -> list[tuple[str, str | None]]:
        """The codes a package writes for: its sender and, for a document, its id's issuer part
        (a source must not claim another agency's predictable `DocumentId` first)."""
        if isinstance(record, EDocumentStatusRecord):
            return [("From/OrganId", record.responder.organ_id), ("agency", attribute)]
        named = [("From/OrganId", record.issuer.organ_id), ("agency", attribute)]
        head = record.document_id.split(",", 1)[0]
        if is_regular_organ_id(head.upper()):
            named.append(("DocumentId", head))
        return named

    def decide(
        self,
        record: EDocumentRecord | EDocumentStatusRecord,
        *,
        partition: int = 0,
        now: datetime | None = None,
    ) -> DocumentResult:
        """Count each document once; keep each document's latest status. `partition` is the
        input record's: where a new ledger entry lives."""
        with at_stage("decide"):
            return self._decide(record, partition=partition, now=now)

    def _decide(
        self,
        record: EDocumentRecord | EDocumentStatusRecord,
        *,
        partition: int,
        now: datetime | None,
    ) -> DocumentResult:
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
        # Neither the document nor those it replaces or revokes may be another source's; the
        # same package again is a duplicate whoever sends it.
        if not self._ledger.repeats(record):
            for owner in self._ledger.owners(record):
                self._source_binding.check_owner(owner, record.source, what="document")
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
