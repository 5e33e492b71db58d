"""One event's way to exactly one outcome, shared by the Kafka worker and the HTTP intake.

`EventHandler.handle` takes a Kafka record's bytes and ends in accepted, duplicate, stale or
dead-lettered, with the record to publish or the refusal to write, and the state it changed
(the dossier's packed state, the e-document ledger entries); it never raises for anything
the bytes can provoke. An `EventRefusedError` is the event's own refusal; any other exception
is a defect this event met, and becomes an `UnexpectedEventError` naming its stage and class.
Only the worker's broker calls (outside this module) can stop the process.

`EventHandler.admit` is the intake's half: the same decoding, limits, normalisation and decision
(against no prior state, and without touching the e-document ledger), so that a 202 means the
worker will not dead-letter the event.

No Kafka client here: bytes in, outcomes out; the clock comes from the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from schemas.cloudevents import EventType
from schemas.edocument import EDocumentRecord, EDocumentState, EDocumentStatusRecord
from services.common.indicators import Counted, Indicators
from services.ingest.dossiers.pipeline import UNKNOWN_TYPE, DossierPipeline
from services.ingest.dossiers.state import DossierState
from services.ingest.edocuments.ledger import CountsAs, EDocumentLedger
from services.ingest.edocuments.normalise import VerificationBudget
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.envelope import (
    DEFAULT_MAX_JSON_VALUES,
    XML_TYPES,
    Envelope,
    check_json_values,
    check_size,
    decode_record,
)
from services.ingest.errors import (
    EventRefusedError,
    RequestTooLargeError,
    UnexpectedEventError,
    at_stage,
    describe,
)
from services.ingest.outcome import Outcome

Headers = Sequence[tuple[str, bytes]]
JSON_HEADERS = (("content-type", b"application/json"),)


@dataclass(frozen=True, slots=True)
class HandlerTopics:
    dossier: str
    dossier_output: str
    edocument: str
    edocument_output: str


@dataclass(slots=True)  # not frozen: built per event (see `decide.Decision`)
class Output:
    """A record to publish."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event is dead-lettered: what the dead letter's headers say."""

    error: EventRefusedError
    source: str | None

    @property
    def reason(self) -> str:
        return describe(self.error)

    @property
    def stage(self) -> str:
        return self.error.stage

    @property
    def error_class(self) -> str:
        return type(self.error).__name__


@dataclass(slots=True)  # not frozen: built per event (see `decide.Decision`)
class DossierChange:
    """An accepted dossier change: its packed state for memory and the state topic, and the
    states before and after, for the worker's exact figures."""

    code: str
    packed: bytes
    previous: DossierState | None
    """None: new to this replica."""
    state: DossierState


@dataclass(frozen=True, slots=True)
class LedgerChange:
    """An e-document ledger entry a package changed: what to write to the ledger topic (in
    `partition`, the entry's home) and how the document counted before and after."""

    document_id: str
    partition: int
    value: bytes
    before: CountsAs | None
    after: CountsAs | None


@dataclass(slots=True)  # not frozen: built per event (see `decide.Decision`)
class Handled:
    """How one event ended, and what the worker writes and counts because of it."""

    event_type: str
    outcome: Outcome
    output: Output | None = None
    refusal: Refusal | None = None
    state: DossierChange | None = None
    """The dossier's new state, for the worker to keep once the output is queued."""
    ledger: tuple[LedgerChange, ...] = ()
    indicators: Indicators | None = None
    counted: Counted | None = None
    status: tuple[str | None, EDocumentState] | None = None
    """A status package's responder and the state it reports."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """An event the intake may write: where, under which key, and its id for the answer."""

    event_id: str
    topic: str
    key: bytes
    event_type: EventType
    agency: str | None = None
    """The agency the event writes for, as the worker will record it."""


def _refused(event_type: str, error: EventRefusedError, source: str | None) -> Handled:
    return Handled(event_type, Outcome.DEAD_LETTERED, refusal=Refusal(error, source))


class EventHandler:
    """Decides events for the worker (`handle`) and checks them for the intake (`admit`)."""

    def __init__(
        self,
        *,
        pipeline: DossierPipeline,
        documents: DocumentPipeline,
        topics: HandlerTopics,
        max_event_bytes: int,
        max_json_values: int = DEFAULT_MAX_JSON_VALUES,
    ) -> None:
        self._pipeline = pipeline
        self._documents = documents
        self._topics = topics
        self._max_event_bytes = max_event_bytes
        self._max_json_values = max_json_values

    @property
    def max_json_values(self) -> int:
        return self._max_json_values

    def limit(self, topic: str) -> int:
        """The per-event limit of a source topic: a package's own bound for e-documents."""
        if topic == self._topics.edocument:
            return self._documents.limits.max_bytes
        return self._max_event_bytes

    def topic_for(self, event_type: EventType) -> str:
        return self._topics.edocument if event_type in XML_TYPES else self._topics.dossier

    # --- the worker ------------------------------------------------------------------------

    @property
    def ledger(self) -> EDocumentLedger:
        """The e-document ledger the worker restores, drops and expires by partition."""
        return self._documents.ledger

    async def handle(
        self,
        topic: str,
        value: bytes | None,
        headers: Headers,
        *,
        states: Mapping[str, bytes],
        now: datetime,
        partition: int = 0,
        timestamp_ms: int | None = None,
    ) -> Handled:
        """One record to one outcome; `states` (the packed states of the record's partition) is
        read, never written (see `Handled.state`). `partition` is the record's, where a new
        ledger entry lives; `timestamp_ms` its broker timestamp (a bare item's last resort)."""
        envelope: Envelope | None = None
        try:
            with at_stage("decode"):
                envelope = decode_record(
                    value,
                    headers,
                    topic=topic,
                    max_bytes=self.limit(topic),
                    max_json_values=self._max_json_values,
                    timestamp_ms=timestamp_ms,
                )
            if envelope.type in XML_TYPES:
                return await self._document(envelope, now, partition)
            return self._dossier(envelope, states, now)
        except EventRefusedError as exc:
            event_type = envelope.type.value if envelope is not None else UNKNOWN_TYPE
            return _refused(event_type, exc, envelope.source if envelope else None)
        except Exception as exc:  # noqa: BLE001 - the last line: no event may stop the worker
            event_type = envelope.type.value if envelope is not None else UNKNOWN_TYPE
            error = UnexpectedEventError("ingest", exc)
            return _refused(event_type, error, envelope.source if envelope else None)

    def _dossier(self, envelope: Envelope, states: Mapping[str, bytes], now: datetime) -> Handled:
        # Read only: the caller's states change once the output is queued.
        result = self._pipeline.handle(
            envelope, states=cast(MutableMapping[str, bytes], states), now=now, store=False
        )
        if result.outcome is Outcome.DEAD_LETTERED:
            assert result.error is not None  # noqa: S101 - a dead letter always has its error
            return _refused(result.event_type, result.error, result.source)
        decision = result.decision
        if (
            decision is None
            or decision.accepted is None
            or decision.state is None
            or result.packed is None
        ):
            return Handled(result.event_type, result.outcome)
        code = decision.accepted.dossier_code
        with at_stage("publish"):
            value = decision.record_bytes()
        return Handled(
            result.event_type,
            result.outcome,
            output=Output(self._topics.dossier_output, code.encode(), value, JSON_HEADERS),
            state=DossierChange(code, result.packed, result.previous, decision.state),
            indicators=decision.indicators,
        )

    async def _document(self, envelope: Envelope, now: datetime, partition: int) -> Handled:
        """Verified off the loop; counted on it, so the ledger needs no lock."""
        record = await self._documents.normalise_off_loop(envelope, now=now)
        is_status = isinstance(record, EDocumentStatusRecord)
        kind = b"edocument-status" if is_status else b"edocument"
        # Serialised before the ledger sees it: a refusal after counting would lose the count.
        with at_stage("publish"):
            value = record.model_dump_json().encode()
        ledger = self._documents.ledger
        with at_stage("decide"):
            touched = [record.document_id]
            if isinstance(record, EDocumentRecord):
                touched += record.replaces
            before = {d: e.counts_as() for d in touched if (e := ledger.entries.get(d)) is not None}
        result = self._documents.decide(record, partition=partition, now=now)
        event_type = envelope.type.value
        if result.record is None:
            return Handled(event_type, result.outcome)
        with at_stage("decide"):
            changes = tuple(
                self._ledger_change(ledger, document_id, before.get(document_id))
                for document_id in result.changed
            )
        status = None
        if isinstance(result.record, EDocumentStatusRecord):
            status = (result.status_agency, result.record.state)
        headers = (*JSON_HEADERS, ("govsync-record-type", kind))
        return Handled(
            event_type,
            result.outcome,
            output=Output(
                self._topics.edocument_output, result.record.document_id.encode(), value, headers
            ),
            counted=result.counted,
            status=status,
            ledger=changes,
        )

    @staticmethod
    def _ledger_change(
        ledger: EDocumentLedger, document_id: str, before: CountsAs | None
    ) -> LedgerChange:
        home, value = ledger.entry_bytes(document_id)
        after = ledger.entries[document_id]
        return LedgerChange(document_id, home, value, before, after.counts_as())

    # --- the intake ------------------------------------------------------------------------

    async def admit(
        self,
        envelope: Envelope,
        value: bytes,
        *,
        now: datetime,
        budget: VerificationBudget | None = None,
    ) -> Admitted:
        """Check a structured-mode event as the worker will; `value` is what the intake writes
        and `envelope` what the worker's decoding reads from it (`from_structured`).

        Raises the `EventRefusedError` the worker would dead-letter the event with, or a
        `RequestTooLargeError` when the request's PDF `budget` runs out.
        """
        topic = self.topic_for(envelope.type)
        try:
            check_size(value, self.limit(topic))
            check_json_values(value, self._max_json_values)
            if envelope.type in XML_TYPES:
                document = await self._documents.normalise_off_loop(
                    envelope, now=now, budget=budget
                )
                with at_stage("publish"):
                    document.model_dump_json()
                agency = (
                    document.responder.organ_id
                    if isinstance(document, EDocumentStatusRecord)
                    else document.agency
                )
                key = document.document_id.encode()
                return Admitted(envelope.id, topic, key, envelope.type, agency)
            handled = self._dossier(envelope, {}, now)
            if handled.refusal is not None:
                raise handled.refusal.error
            with at_stage("decide"):
                if handled.state is None:
                    raise RuntimeError("a dossier's first change was not accepted")
                code, agency = handled.state.code, handled.state.state.agency
        except (EventRefusedError, RequestTooLargeError):
            raise
        except Exception as exc:  # as in `handle`, turned into the event's refusal
            raise UnexpectedEventError("ingest", exc) from exc
        return Admitted(envelope.id, topic, code.encode(), envelope.type, agency)
