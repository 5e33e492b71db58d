"""The dossier state machine: each normalised change accepted, dropped as a duplicate or as stale;
on acceptance the record to publish, the new state and what it adds to the scored counters.

Pure apart from the clock the caller passes in. What counts for which indicator is the rule of
`services/common/indicators.py`; this module keeps the facts those rules read up to date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.dossier import (
    DossierHeader,
    DossierRecord,
    DossierStatus,
    ProgressStep,
    RecordKind,
)
from services.common import indicators
from services.common.dates import to_ms
from services.common.indicators import DossierFacts, HeaderFacts, Indicators, is_end
from services.ingest.dossiers.normalise import NormalisedDossier, NormalisedProgress
from services.ingest.dossiers.state import DossierState, digest, interned
from services.ingest.outcome import Outcome


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    record: DossierRecord | None = None
    state: DossierState | None = None
    indicators: Indicators | None = None


@dataclass(frozen=True, slots=True)
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


def _set_status(state: DossierState, status: DossierStatus, at_ms: int) -> None:
    """Move the status forward in time; count supplement periods on the way."""
    if at_ms < state.status_ms:
        return
    previous = state.status
    if status == DossierStatus.SUPPLEMENT_REQUESTED and previous != status:
        state.supplements += 1
        state.supplement_since_ms = at_ms
    elif previous == DossierStatus.SUPPLEMENT_REQUESTED and status != previous:
        if state.supplement_since_ms:
            state.supplement_total_ms += max(0, at_ms - state.supplement_since_ms)
        state.supplement_since_ms = 0
    if is_end(status) and not state.end_ms:
        state.end_ms = at_ms
    state.status = int(status)
    state.status_ms = at_ms


def _apply_header(
    state: DossierState, change: NormalisedDossier, at_ms: int, *, newest: bool
) -> None:
    header = change.header
    state.header_ms = at_ms
    state.agency = interned(change.agency) or state.agency
    state.procedure = interned(header.procedure_code) or state.procedure
    if header.channel is not None:
        state.channel = int(header.channel)
    if header.due_at is not None:
        state.due_ms = to_ms(header.due_at)
    if header.received_at is not None:
        state.received_ms = to_ms(header.received_at)
    # A header may report supplements the status history never showed us.
    state.supplements = max(state.supplements, header.supplement_requests)
    # An item whose time is only a lower bound (a bare item at a status with no date of its own)
    # is, once accepted, the newest word on the status: the change it reports came after
    # everything already applied.
    _set_status(state, change.status, max(at_ms, state.status_ms) if newest else at_ms)
    if is_end(change.status):
        ended = header.finished_at or header.returned_at or header.rejected_at
        if ended is not None and (not state.end_ms or to_ms(ended) < state.end_ms):
            state.end_ms = to_ms(ended)


def decide(
    current: DossierState | None, change: Change, *, now: datetime, policy: Policy
) -> Decision:
    """Accept, drop as duplicate, or drop as stale; on accept, the record and the new state.

    `current` is never modified: the caller stores the returned state only once the record is
    safely published, so a failed batch leaves memory as it was.
    """
    state = DossierState() if current is None else current.copy()
    event_key = digest(change.source.encode(), change.event_id.encode())
    if change.dossier is not None:
        content = digest(
            b"h",
            change.dossier.header.model_dump_json().encode(),
            str(int(change.dossier.status)).encode(),
        )
        at_ms = to_ms(change.event_time)
        watermark = state.header_ms
    else:
        assert change.progress is not None  # noqa: S101 - a Change carries one or the other
        content = digest(b"p", change.progress.step.model_dump_json().encode())
        at_ms = to_ms(change.progress.step.handled_at)
        watermark = state.progress_ms
    last_content = state.header_digest if change.dossier is not None else state.step_digest
    if state.remembers(event_key) or content == last_content:
        return Decision(Outcome.DUPLICATE)
    if current is not None and at_ms < watermark:
        return Decision(Outcome.STALE)

    state.revision += 1
    state.remember(event_key)
    state.last_change_ms = max(state.last_change_ms, at_ms)
    if change.dossier is not None:
        state.header_digest = content
        _apply_header(state, change.dossier, at_ms, newest=change.time_is_lower_bound)
        header: DossierHeader | None = change.dossier.header
        step: ProgressStep | None = None
        kind = RecordKind.DOSSIER
    else:
        assert change.progress is not None  # noqa: S101
        step = change.progress.step
        header = None
        kind = RecordKind.PROGRESS
        state.progress_ms = at_ms
        state.step_digest = content
        state.agency = state.agency or interned(change.progress.agency)
        if step.status is not None:
            _set_status(state, step.status, at_ms)
    if state.status == 0:
        # A progress step for a dossier whose header has not arrived yet.
        _set_status(state, DossierStatus.SUBMITTED, 0)
    judged = indicators.timeliness(
        state, now=now, legal_time_limits_days=policy.legal_time_limits_days
    )
    state.counted, added = indicators.count_dossier(
        state.counted,
        DossierFacts(
            agency=state.agency,
            status=state.status,
            channel=state.channel,
            timeliness=judged,
            header=HeaderFacts.of(header) if header is not None else None,
        ),
    )
    record = DossierRecord(
        dossier_code=change.dossier_code,
        agency=state.agency,
        revision=state.revision,
        kind=kind,
        status=DossierStatus(state.status),
        timeliness=judged,
        source=change.source,
        event_id=change.event_id,
        event_time=change.event_time,
        ingested_at=now,
        header=header,
        step=step,
    )
    return Decision(Outcome.ACCEPTED, record=record, state=state, indicators=added)


def evictable(state: DossierState, *, now: datetime, policy: Policy) -> bool:
    """Finished and unchanged for longer than the retention period: safe to forget.

    A change that still arrives afterwards starts the dossier again at revision 1, which the
    sync service drops as stale for a destination that acknowledged more; the retention period
    is set well beyond the time between a dossier's last two statuses (finished, returned).
    """
    age_ms = to_ms(now) - state.last_change_ms
    return state.finished and age_ms > policy.finished_retention.total_seconds() * 1000
