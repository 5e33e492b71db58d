"""The dossier state machine: each normalised change accepted, dropped as a duplicate or as stale;
on acceptance the record to publish, the new state and what it adds to the counters.

Pure apart from the clock the caller passes in. What counts for which indicator is the rule of
`services/common/indicators.py`; how a change merges into the dossier's facts is `facts.py`'s.

- A redelivered event (same source and id, among the last few) or the same content as the
  latest header (or step) is a duplicate; a header older than the newest header accepted, or a
  step older than the newest step, is stale. Anything else is a new revision: a header that
  only corrects a fact (a fee, a due date) is one, whatever the status.
- A dossier ingest archived (evicted, `state.archived`) continues where it was: the same
  revision sequence, the same watermarks, the same facts and counts; only its recent event ids
  are gone, so a redelivery is known by its content or its time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from schemas.codes import DossierStatus, Timeliness
from schemas.dossier import DossierHeader, DossierRecord, ProgressStep, RecordKind
from services.common import indicators
from services.common.dates import to_ms
from services.common.indicators import Indicators
from services.ingest.dossiers.facts import CurrentFacts, apply_header, apply_step, facts_of
from services.ingest.dossiers.normalise import NormalisedDossier, NormalisedProgress
from services.ingest.dossiers.state import DossierState, digest, summary
from services.ingest.outcome import Outcome

_JSON_OPTIONS = orjson.OPT_UTC_Z


# Not frozen, as the other per-event values of ingest: a frozen dataclass pays a
# `object.__setattr__` per field on every construction.
@dataclass(slots=True)
class Accepted:
    """An accepted change's record, in parts: `DossierRecord`'s fields, with the header or the
    step already serialised (for the content digest) and the facts as ingest reads them."""

    dossier_code: str
    agency: str | None
    revision: int
    kind: RecordKind
    status: DossierStatus
    timeliness: Timeliness
    source: str
    event_id: str
    event_time: datetime
    ingested_at: datetime
    header: DossierHeader | None
    step: ProgressStep | None
    facts: CurrentFacts
    header_json: bytes | None
    step_json: bytes | None

    def json(self) -> bytes:
        """The record as `DossierRecord.model_dump_json` writes it (the header first), from the
        parts: the header's and the step's JSON reused, no model built."""
        return orjson.dumps(
            {
                "header": None if self.header_json is None else orjson.Fragment(self.header_json),
                "dossier_code": self.dossier_code,
                "agency": self.agency,
                "revision": self.revision,
                "kind": self.kind,
                "status": self.status,
                "timeliness": self.timeliness,
                "source": self.source,
                "event_id": self.event_id,
                "event_time": self.event_time,
                "ingested_at": self.ingested_at,
                "step": None if self.step_json is None else orjson.Fragment(self.step_json),
                "facts": self.facts,
            },
            option=_JSON_OPTIONS,
        )

    def model(self) -> DossierRecord:
        return DossierRecord(
            dossier_code=self.dossier_code,
            agency=self.agency,
            revision=self.revision,
            kind=self.kind,
            status=self.status,
            timeliness=self.timeliness,
            source=self.source,
            event_id=self.event_id,
            event_time=self.event_time,
            ingested_at=self.ingested_at,
            header=self.header,
            step=self.step,
            facts=self.facts.contract(),
        )


@dataclass(slots=True)
class Decision:
    outcome: Outcome
    accepted: Accepted | None = None
    """The record, when the change was accepted."""
    state: DossierState | None = None
    indicators: Indicators | None = None
    _record: DossierRecord | None = field(default=None, init=False, repr=False)

    @property
    def record(self) -> DossierRecord | None:
        """The record as the contract's model, built on first use: the service publishes
        `record_bytes`, which needs none."""
        if self._record is None and self.accepted is not None:
            self._record = self.accepted.model()
        return self._record

    def record_bytes(self) -> bytes:
        """The record as published."""
        if self.accepted is None:
            raise ValueError("no record to publish")
        return self.accepted.json()


@dataclass(slots=True)
class Change:
    """One decoded and normalised event, ready for the state machine."""

    dossier_code: str
    source: str
    event_id: str
    event_time: datetime
    dossier: NormalisedDossier | None = None
    progress: NormalisedProgress | None = None
    time_is_lower_bound: bool = False
    """`event_time` is the latest date a bare item carries: the change happened at or after it."""


@dataclass(frozen=True, slots=True)
class Policy:
    legal_time_limits_days: dict[str, int] = field(default_factory=dict)
    finished_retention: timedelta = timedelta(days=30)
    """How long a finished dossier stays in memory after govsync last changed it."""
    archive_retention: timedelta = timedelta(days=400)
    """How long an evicted dossier's archive entry is kept after govsync last changed it."""


def decide(
    current: DossierState | None, change: Change, *, now: datetime, policy: Policy
) -> Decision:
    """Accept, drop as duplicate, or drop as stale; on accept, the record and the new state.

    `current` is never modified: the caller stores the returned state only once the record is
    safely published, so a failed batch leaves memory as it was.
    """
    state = DossierState() if current is None else current.copy()
    event_key = digest(change.source.encode(), change.event_id.encode())
    header_json = step_json = None
    if change.dossier is not None:
        header_json = change.dossier.header_json
        content = digest(
            b"h",
            header_json,
            str(int(change.dossier.status)).encode(),
            (change.dossier.agency or "").encode(),
        )
        at_ms = to_ms(change.event_time)
        watermark, last_content = state.header_ms, state.header_digest
    else:
        assert change.progress is not None  # noqa: S101 - a Change carries one or the other
        step_json = change.progress.step.model_dump_json().encode()
        content = digest(
            b"p",
            step_json,
            (change.progress.agency or "").encode(),
        )
        at_ms = to_ms(change.progress.step.handled_at)
        watermark, last_content = state.progress_ms, state.step_digest
    if state.remembers(event_key) or content == last_content:
        return Decision(Outcome.DUPLICATE)
    if current is not None and at_ms < watermark:
        return Decision(Outcome.STALE)

    state.revision += 1
    state.archived = False
    state.remember(event_key)
    state.touched_ms = to_ms(now)
    header: DossierHeader | None = None
    step: ProgressStep | None = None
    if change.dossier is not None:
        state.header_ms, state.header_digest = at_ms, content
        apply_header(state, change.dossier, at_ms, lower_bound=change.time_is_lower_bound)
        header, kind = change.dossier.header, RecordKind.DOSSIER
    else:
        assert change.progress is not None  # noqa: S101
        state.progress_ms, state.step_digest = at_ms, content
        apply_step(state, change.progress, at_ms)
        step, kind = change.progress.step, RecordKind.PROGRESS
    facts = facts_of(state, legal_time_limits_days=policy.legal_time_limits_days)
    judged = indicators.timeliness(facts, now=now)
    state.counted, added = indicators.count_dossier(state.counted, facts, judged)
    state.parts = indicators.counted_parts(facts)
    accepted = Accepted(
        dossier_code=change.dossier_code,
        agency=facts.agency,
        revision=state.revision,
        kind=kind,
        status=facts.status,
        timeliness=judged,
        source=change.source,
        event_id=change.event_id,
        event_time=change.event_time,
        ingested_at=now,
        header=header,
        step=step,
        facts=facts,
        header_json=header_json,
        step_json=step_json,
    )
    return Decision(Outcome.ACCEPTED, accepted=accepted, state=state, indicators=added)


def evictable(packed: bytes, *, now: datetime, policy: Policy) -> bool:
    """A live dossier that has ended and that govsync has not changed for longer than the
    retention: it leaves memory for the archive (and comes back from it if it changes again)."""
    held = summary(packed)
    if held.archived or not indicators.is_end(held.status) or not held.touched_ms:
        return False
    return to_ms(now) - held.touched_ms > policy.finished_retention.total_seconds() * 1000


def expired(packed: bytes, *, now: datetime, policy: Policy) -> bool:
    """An archive entry older than the archive retention: forgotten for good."""
    held = summary(packed)
    if not held.archived:
        return False
    return to_ms(now) - held.touched_ms > policy.archive_retention.total_seconds() * 1000
