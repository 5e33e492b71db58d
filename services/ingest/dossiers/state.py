"""Per-dossier state: what each dossier has recorded, and the decision on each new change.

Pure. `DossierState` is compact (a dossier costs a few hundred bytes) because an ingest replica
holds every open dossier of its partitions. The worker persists it to a compacted topic and
restores it on assignment; finished dossiers are evicted after a retention period.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson

from schemas.dossier import (
    FINISHED_STATUSES,
    RECEIVED_STATUSES,
    Channel,
    DossierHeader,
    DossierRecord,
    DossierStatus,
    ProgressStep,
    RecordKind,
    Timeliness,
)
from services.ingest.normalize import NormalisedDossier, NormalisedProgress

# Statuses at which processing has ended for indicator 2.1 (finished, returned, stopped,
# rejected, withdrawn): the first time one is reached is the dossier's end.
END_STATUSES = FINISHED_STATUSES | {DossierStatus.STOPPED, DossierStatus.REJECTED}
_RECENT = 4  # event ids remembered per dossier, for redeliveries
_DIGEST = 8  # bytes
_STATE_VERSION = 1


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"


class Flag:
    """Bits of `DossierState.counted`: which indicators already counted this dossier."""

    RECEIVED = 1
    FINISHED = 2
    DIGITISED = 4
    FEE_BEARING = 8
    PAID_ONLINE = 16


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=_DIGEST)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def _interned(text: str | None) -> str | None:
    """A few hundred agency and procedure codes are shared by every dossier held: one copy each."""
    return sys.intern(text) if text else None


def _digests(packed: bytes) -> list[bytes]:
    return [packed[i : i + _DIGEST] for i in range(0, len(packed), _DIGEST)]


@dataclass(slots=True)
class DossierState:
    """Everything ingest remembers about one dossier, in integers (epoch milliseconds)."""

    revision: int = 0
    status: int = 0
    status_ms: int = 0
    """Source time of the change that set `status`: the status never moves back in time."""
    header_ms: int = 0
    progress_ms: int = 0
    recent: bytes = b""
    """Digests of the last few (source, event id) pairs accepted, 8 bytes each, end to end: one
    object instead of a list of them saves a quarter of a held dossier's memory."""
    header_digest: bytes = b""
    step_digest: bytes = b""
    counted: int = 0
    supplements: int = 0
    supplement_since_ms: int = 0
    supplement_total_ms: int = 0
    due_ms: int = 0
    received_ms: int = 0
    end_ms: int = 0
    agency: str | None = None
    procedure: str | None = None
    channel: int = 0
    last_change_ms: int = 0

    @property
    def finished(self) -> bool:
        return self.status in END_STATUSES

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [
                _STATE_VERSION,
                self.revision,
                self.status,
                self.status_ms,
                self.header_ms,
                self.progress_ms,
                [d.hex() for d in _digests(self.recent)],
                self.header_digest.hex(),
                self.step_digest.hex(),
                self.counted,
                self.supplements,
                self.supplement_since_ms,
                self.supplement_total_ms,
                self.due_ms,
                self.received_ms,
                self.end_ms,
                self.agency,
                self.procedure,
                self.channel,
                self.last_change_ms,
            ]
        )

    @classmethod
    def from_bytes(cls, value: bytes) -> DossierState:
        fields = orjson.loads(value)
        if fields[0] != _STATE_VERSION:
            raise ValueError(f"unknown state version {fields[0]}")
        return cls(
            revision=fields[1],
            status=fields[2],
            status_ms=fields[3],
            header_ms=fields[4],
            progress_ms=fields[5],
            recent=b"".join(bytes.fromhex(d) for d in fields[6]),
            header_digest=bytes.fromhex(fields[7]),
            step_digest=bytes.fromhex(fields[8]),
            counted=fields[9],
            supplements=fields[10],
            supplement_since_ms=fields[11],
            supplement_total_ms=fields[12],
            due_ms=fields[13],
            received_ms=fields[14],
            end_ms=fields[15],
            agency=_interned(fields[16]),
            procedure=_interned(fields[17]),
            channel=fields[18],
            last_change_ms=fields[19],
        )


@dataclass(frozen=True, slots=True)
class Indicators:
    """What a change adds to the scored counters (each dossier is counted at most once)."""

    agency: str | None
    received_channel: Channel | None = None
    received: bool = False
    finished: Timeliness | None = None
    digitised: bool = False
    fee_bearing: bool = False
    paid_online: bool = False


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


@dataclass(frozen=True, slots=True)
class Policy:
    legal_time_limits_days: dict[str, int] = field(default_factory=dict)
    finished_retention: timedelta = timedelta(days=30)


def timeliness(state: DossierState, *, now: datetime, policy: Policy) -> Timeliness:
    """Indicator 2.1 for the dossier as it stands.

    Time spent on one supplement request does not count against the due date; two or more
    requests make a finished dossier late. Without a due date the procedure's legal limit from
    configuration applies; without either, nothing can be late.
    """
    due_ms = state.due_ms
    if not due_ms and state.procedure and state.received_ms:
        days = policy.legal_time_limits_days.get(state.procedure)
        if days:
            due_ms = state.received_ms + days * 86_400_000
    if state.end_ms:
        if state.supplements >= 2:
            return Timeliness.LATE
        if not due_ms:
            return Timeliness.ON_TIME
        allowance = state.supplement_total_ms if state.supplements == 1 else 0
        return Timeliness.ON_TIME if state.end_ms <= due_ms + allowance else Timeliness.LATE
    if not due_ms:
        return Timeliness.IN_PROGRESS
    allowance = state.supplement_total_ms
    if state.supplement_since_ms:
        allowance += max(0, _ms(now) - state.supplement_since_ms)
    return Timeliness.OVERDUE if _ms(now) > due_ms + allowance else Timeliness.IN_PROGRESS


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
    if status in END_STATUSES and not state.end_ms:
        state.end_ms = at_ms
    state.status = int(status)
    state.status_ms = at_ms


def _apply_header(state: DossierState, change: NormalisedDossier, at_ms: int) -> None:
    header = change.header
    state.header_ms = at_ms
    state.agency = _interned(change.agency) or state.agency
    state.procedure = _interned(header.procedure_code) or state.procedure
    if header.channel is not None:
        state.channel = int(header.channel)
    if header.due_at is not None:
        state.due_ms = _ms(header.due_at)
    if header.received_at is not None:
        state.received_ms = _ms(header.received_at)
    # A header may report supplements the status history never showed us.
    state.supplements = max(state.supplements, header.supplement_requests)
    _set_status(state, change.status, at_ms)
    if change.status in END_STATUSES:
        ended = header.finished_at or header.returned_at or header.rejected_at
        if ended is not None and (not state.end_ms or _ms(ended) < state.end_ms):
            state.end_ms = _ms(ended)


def _indicators(
    before: int, state: DossierState, header: DossierHeader | None, now: datetime, policy: Policy
) -> Indicators:
    received = state.status in RECEIVED_STATUSES
    result: dict[str, object] = {}
    if received and not before & Flag.RECEIVED:
        state.counted |= Flag.RECEIVED
        result["received"] = True
        result["received_channel"] = Channel(state.channel) if state.channel else None
    if state.status in FINISHED_STATUSES and not before & Flag.FINISHED:
        state.counted |= Flag.FINISHED
        result["finished"] = timeliness(state, now=now, policy=policy)
    if header is not None and received:
        digitised = header.has_digitised_components or any(
            a.digitised and not a.deleted for a in header.attachments
        )
        if digitised and not before & Flag.DIGITISED:
            state.counted |= Flag.DIGITISED
            result["digitised"] = True
        fee_bearing = any(f.amount > 0 for f in header.fees)
        if fee_bearing and not before & Flag.FEE_BEARING:
            state.counted |= Flag.FEE_BEARING
            result["fee_bearing"] = True
        if fee_bearing and header.paid_online in (1, 2) and not before & Flag.PAID_ONLINE:
            state.counted |= Flag.PAID_ONLINE
            result["paid_online"] = True
    return Indicators(agency=state.agency, **result)  # type: ignore[arg-type]


def decide(
    current: DossierState | None, change: Change, *, now: datetime, policy: Policy
) -> Decision:
    """Accept, drop as duplicate, or drop as stale; on accept, the record and the new state.

    `current` is never modified: the caller stores the returned state only once the record is
    safely published, so a failed batch leaves memory as it was.
    """
    state = DossierState() if current is None else _copy(current)
    event_key = digest(change.source.encode(), change.event_id.encode())
    if change.dossier is not None:
        content = digest(
            b"h",
            change.dossier.header.model_dump_json().encode(),
            str(int(change.dossier.status)).encode(),
        )
        at_ms = _ms(change.event_time)
        watermark = state.header_ms
    else:
        assert change.progress is not None  # noqa: S101 - a Change carries one or the other
        content = digest(b"p", change.progress.step.model_dump_json().encode())
        at_ms = _ms(change.progress.step.handled_at)
        watermark = state.progress_ms
    last_content = state.header_digest if change.dossier is not None else state.step_digest
    if event_key in _digests(state.recent) or content == last_content:
        return Decision(Outcome.DUPLICATE)
    if current is not None and at_ms < watermark:
        return Decision(Outcome.STALE)

    before = state.counted
    state.revision += 1
    state.recent = state.recent[-(_RECENT - 1) * _DIGEST :] + event_key
    state.last_change_ms = max(state.last_change_ms, at_ms)
    if change.dossier is not None:
        state.header_digest = content
        _apply_header(state, change.dossier, at_ms)
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
        state.agency = state.agency or _interned(change.progress.agency)
        if step.status is not None:
            _set_status(state, step.status, at_ms)
    if state.status == 0:
        # A progress step for a dossier whose header has not arrived yet.
        _set_status(state, DossierStatus.SUBMITTED, 0)
    indicators = _indicators(before, state, header, now, policy)
    record = DossierRecord(
        dossier_code=change.dossier_code,
        agency=state.agency,
        revision=state.revision,
        kind=kind,
        status=DossierStatus(state.status),
        timeliness=timeliness(state, now=now, policy=policy),
        source=change.source,
        event_id=change.event_id,
        event_time=change.event_time,
        ingested_at=now,
        header=header,
        step=step,
    )
    return Decision(Outcome.ACCEPTED, record=record, state=state, indicators=indicators)


def _copy(state: DossierState) -> DossierState:
    # Every field is immutable (`recent` is bytes): a shallow copy is a full one.
    return DossierState(**{name: getattr(state, name) for name in DossierState.__slots__})


def evictable(state: DossierState, *, now: datetime, policy: Policy) -> bool:
    """Finished and unchanged for longer than the retention period: safe to forget.

    A change that still arrives afterwards starts the dossier again at revision 1, which the
    sync service drops as stale for a destination that acknowledged more; the retention period
    is set well beyond the time between a dossier's last two statuses (finished, returned).
    """
    age_ms = _ms(now) - state.last_change_ms
    return state.finished and age_ms > policy.finished_retention.total_seconds() * 1000
