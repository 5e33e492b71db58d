"""A decoded dossier event's way through ingest: validate, normalise, decide.

Pure apart from the clock the caller passes in; the Kafka worker, the HTTP intake and the tests
drive it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas.cloudevents import EventType
from schemas.dossier import DossierEvent, ProgressEvent
from services.ingest.envelope import Envelope
from services.ingest.errors import ContractError, IngestError, UnsupportedTypeError
from services.ingest.normalize import (
    Vocabularies,
    normalize_dossier,
    normalize_progress,
    validate_data,
)
from services.ingest.state import Change, Decision, DossierState, Outcome, Policy, decide

UNKNOWN_TYPE = "unknown"


@dataclass(frozen=True, slots=True)
class Result:
    """How one event ended; exactly one outcome per event."""

    outcome: Outcome
    event_type: str
    key: str | None = None
    decision: Decision | None = None
    error: IngestError | None = None
    source: str | None = None


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
    ) -> None:
        self._vocabularies = vocabularies
        self._policy = policy
        self._max_text_chars = max_text_chars

    def change(self, envelope: Envelope, *, now: datetime) -> Change:
        """Validate and normalise an envelope's data; raises `IngestError` with the reason."""
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
            dossier = normalize_dossier(
                event,
                vocabularies=vocabularies,
                agency_hint=envelope.agency,
                max_chars=self._max_text_chars,
            )
            return Change(
                dossier_code=event.dossier_code,
                source=envelope.source,
                event_id=envelope.id,
                event_time=envelope.time or dossier.updated_at or now,
                dossier=dossier,
            )
        if envelope.type == EventType.PROGRESS:
            progress_event = validate_data(envelope.data, ProgressEvent)
            progress = normalize_progress(
                progress_event,
                vocabularies=vocabularies,
                agency_hint=envelope.agency,
                max_chars=self._max_text_chars,
            )
            return Change(
                dossier_code=progress_event.dossier_code,
                source=envelope.source,
                event_id=envelope.id,
                event_time=envelope.time or progress.step.handled_at,
                progress=progress,
            )
        raise UnsupportedTypeError("not a dossier event type")

    def handle(
        self,
        envelope: Envelope,
        *,
        states: MutableMapping[str, DossierState],
        now: datetime,
    ) -> Result:
        """Decide one dossier event; on acceptance `states` already holds the new state."""
        event_type, source = envelope.type.value, envelope.source
        try:
            change = self.change(envelope, now=now)
        except IngestError as exc:
            return Result(Outcome.DEAD_LETTERED, event_type, error=exc, source=source)
        code = change.dossier_code
        decision = decide(states.get(code), change, now=now, policy=self._policy)
        if decision.state is not None:
            states[code] = decision.state
        return Result(decision.outcome, event_type, key=code, decision=decision, source=source)


def describe(error: IngestError) -> str:
    """The dead letter's reason: the message and, for contract errors, the fields at fault."""
    if isinstance(error, ContractError) and error.errors:
        fields = "; ".join(f"{path}: {problem}" for path, problem in error.errors[:10])
        return f"{error}: {fields}"
    return str(error)
