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

from schemas.dossier import DossierHeader, DossierRecord, ProgressStep, RecordKind
from services.common import indicators
from services.common.dates import to_ms
from services.common.indicators import Indicators
from services.ingest.dossiers.facts import apply_header, apply_step, facts_of
from services.ingest.dossiers.normalise import NormalisedDossier, NormalisedProgress
from services.ingest.dossiers.state import DossierState, digest, summary
from services.ingest.outcome import Outcome

_NO_HEADER = {"header"}


# Not frozen, as the other per-event values of ingest: a frozen dataclass pays a
# `object.__setattr__` per field on every construction.
@dataclass(slots=True)
class Decision:
    outcome: Outcome
    record: DossierRecord | None = None
    state: DossierState | None = None
    indicators: Indicators | None = None
    header_json: bytes | None = None
    """The record's header as JSON, serialised once for its content digest."""

    def record_bytes(self) -> bytes:
        """The record as published: its JSON, with the header's serialisation reused (the same
        object; its key comes first)."""
        if self.record is None:
            raise ValueError("no record to publish")
        if self.header_json is None:  # a step's record
            return self.record.model_dump_json().encode()
        rest = self.record.model_dump_json(exclude=_NO_HEADER).encode()
        return b'{"header":' + self.header_json + b"," + rest[1:]


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
    header_json: bytes | None = None
    if change.dossier is not None:
        header_json = change.dossier.header.model_dump_json().encode()
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
        content = digest(
            b"p",
            change.progress.step.model_dump_json().encode(),
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
    record = DossierRecord(
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
    )
    return Decision(
        Outcome.ACCEPTED, record=record, state=state, indicators=added, header_json=header_json
    )


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
