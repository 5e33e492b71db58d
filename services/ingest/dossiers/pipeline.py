"""A decoded dossier event's way through ingest: decode, normalise, decide (`DossierPipeline`),
and each source's vocabulary of status and channel words (`VocabularyBook`).

Pure apart from the clock the caller passes in; the Kafka worker, the HTTP intake and the tests
drive it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from schemas.cloudevents import EventType
from schemas.dossier import DossierEvent, ProgressEvent
from services.ingest.binding import SourceBinding
from services.ingest.dossiers.decide import Change, Decision, Policy, decide
from services.ingest.dossiers.decode import validate_data
from services.ingest.dossiers.eventtime import header_time, step_time
from services.ingest.dossiers.normalise import (
    Vocabularies,
    normalise_dossier,
    normalise_progress,
)
from services.ingest.dossiers.state import DossierState, interned
from services.ingest.envelope import Envelope
from services.ingest.errors import (
    ContractError,
    EventRefusedError,
    IngestError,
    UnexpectedEventError,
    UnsupportedTypeError,
)
from services.ingest.outcome import Outcome

UNKNOWN_TYPE = "unknown"
DEFAULT_MAX_FUTURE_SKEW = timedelta(seconds=300)


@dataclass(slots=True)  # not frozen: see `Decision`
class Result:
    """How one event ended; exactly one outcome per event."""

    outcome: Outcome
    event_type: str
    key: str | None = None
    decision: Decision | None = None
    error: EventRefusedError | None = None
    source: str | None = None
    previous: DossierState | None = None
    """The dossier's state before an accepted change (None: new to this replica)."""
    packed: bytes | None = None
    """The state after an accepted change, packed: what memory and the state topic hold."""


class VocabularyBook:
    """Each source's status and channel words: its own mapping over the shared `*` one."""

    def __init__(
        self, status: Mapping[str, Mapping[str, int]], channel: Mapping[str, Mapping[str, int]]
    ) -> None:
        self._status = status
        self._channel = channel
        self._cache: dict[str, Vocabularies] = {}

    def for_source(self, source: str) -> Vocabularies:
        found = self._cache.get(source)
        if found is None:

            def merged(table: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
                words = {**table.get("*", {}), **table.get(source, {})}
                return {k.lower().replace(" ", "_"): v for k, v in words.items()}

            found = Vocabularies(status=merged(self._status), channel=merged(self._channel))
            if len(self._cache) < 10_000:  # sources are few; a flood of new ones is not cached
                self._cache[source] = found
        return found


class DossierPipeline:
    """Turns dossier and progress events into decisions against the dossiers' state."""

    def __init__(
        self,
        *,
        vocabularies: VocabularyBook,
        policy: Policy,
        max_text_chars: int,
        source_binding: SourceBinding | None = None,
        internal_urls: bool = False,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    ) -> None:
        self._vocabularies = vocabularies
        self._policy = policy
        self._max_text_chars = max_text_chars
        self._internal_urls = internal_urls
        self._binding = source_binding or SourceBinding({})
        self._max_skew = max_future_skew

    def change(self, envelope: Envelope, *, now: datetime) -> Change:
        """Validate and normalise an envelope's data; raises `EventRefusedError` with the reason."""
        try:
            return self._change(envelope, now=now)
        except ValidationError as exc:
            # The normalised models check bounds again; a breach is the event's fault.
            raise ContractError.from_validation(
                "normalised values are out of bounds", exc
            ) from None

    def _change(self, envelope: Envelope, *, now: datetime) -> Change:
        vocabularies = self._vocabularies.for_source(envelope.source)
        if envelope.type == EventType.DOSSIER:
            event = validate_data(envelope.data, DossierEvent)
            dossier = normalise_dossier(
                event,
                vocabularies=vocabularies,
                agency_hint=envelope.agency,
                max_chars=self._max_text_chars,
                internal_urls=self._internal_urls,
            )
            self._authorise(envelope, event.agency)
            when = header_time(
                dossier.header,
                dossier.status,
                envelope_time=envelope.time,
                record_time=envelope.record_time,
                now=now,
                max_skew=self._max_skew,
            )
            return Change(
                dossier_code=event.dossier_code,
                source=envelope.source,
                event_id=envelope.id,
                event_time=when.at,
                dossier=dossier,
                time_is_lower_bound=when.lower_bound,
            )
        if envelope.type == EventType.PROGRESS:
            progress_event = validate_data(envelope.data, ProgressEvent)
            progress = normalise_progress(
                progress_event,
                vocabularies=vocabularies,
                agency_hint=envelope.agency,
                max_chars=self._max_text_chars,
            )
            self._authorise(envelope, progress_event.agency)
            when = step_time(
                progress.step.handled_at,
                envelope_time=envelope.time,
                now=now,
                max_skew=self._max_skew,
            )
            return Change(
                dossier_code=progress_event.dossier_code,
                source=envelope.source,
                event_id=envelope.id,
                event_time=when.at,
                progress=progress,
            )
        raise UnsupportedTypeError("not a dossier event type")

    def _authorise(self, envelope: Envelope, data_agency: str | None) -> None:
        """Every agency code the event names (data and envelope) must be bound to its source."""
        self._binding.check(
            envelope.source, (("MaDonVi", data_agency), ("agency", envelope.agency))
        )

    def handle(
        self,
        envelope: Envelope,
        *,
        states: MutableMapping[str, bytes],
        now: datetime,
        store: bool = True,
    ) -> Result:
        """Decide one dossier event against the packed states (live and archived) of its
        partition; on acceptance `states` already holds the new state, unless not `store`
        (the caller keeps `Result.packed` once it is safe to).

        Never raises: whatever goes wrong, however unforeseen, is this event's dead letter.
        """
        event_type, source = envelope.type.value, envelope.source
        # The stage an unforeseen exception is named after (as `at_stage` does, without a
        # context manager per stage: this is every event's path).
        stage = "normalise"
        try:
            change = self.change(envelope, now=now)
            code = change.dossier_code
            stage = "decide"
            held = states.get(code)
            current = None if held is None else DossierState.from_bytes(held)
            if current is not None:
                # An event naming no agency (or its own) must not move another agency's dossier,
                # nor another source's.
                self._binding.check(source, (("the dossier's agency", current.agency),))
                self._binding.check_owner(current.owner, source, what="dossier")
            decision = decide(current, change, now=now, policy=self._policy)
            if decision.state is not None and decision.state.owner is None:
                decision.state.owner = interned(source)
            packed = None if decision.state is None else decision.state.to_bytes()
        except EventRefusedError as exc:
            return Result(Outcome.DEAD_LETTERED, event_type, error=exc, source=source)
        except IngestError:
            raise
        except Exception as exc:  # noqa: BLE001 - a defect this event met: its dead letter
            error = UnexpectedEventError(stage, exc)
            error.__cause__ = exc
            return Result(Outcome.DEAD_LETTERED, event_type, error=error, source=source)
        if packed is not None and store:
            states[code] = packed
        return Result(
            decision.outcome,
            event_type,
            key=code,
            decision=decision,
            source=source,
            previous=current,
            packed=packed,
        )
