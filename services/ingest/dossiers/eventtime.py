"""When a dossier change happened at the source: the time that orders a dossier's changes.

Pure: the clock comes in as an argument. The time an event gets becomes the dossier's watermark,
so it must never lie ahead of the clock: a due date (`NgayHenTra`) is when the dossier should
end, not when anything happened, and a watermark in the future makes every later change look
stale (issue 12, finding 1).

    the event                               its time
    --------------------------------------  --------------------------------------------------
    any CloudEvent with `time`              `time`: offset-aware (the contract refuses a
                                            naive one) and at most `max_skew` ahead of the
                                            clock, else a dead letter with the reason
    DongBoHoSoMC item without `time`        1. the date of its current status, if not ahead:
      (a bare item, or an envelope that        1 NgayNopHoSo, 2 NgayTiepNhan, 3 NgayTuChoi,
      names no time)                           9 NgayKetThucXuLy, 10 NgayTra
                                            2. else its latest date that is not ahead of the
                                               clock, NgayHenTra never (`LATEST_DATE`: a lower
                                               bound of the change's time, see below)
                                            3. else the broker record's timestamp, if not ahead
                                            4. else the clock
    CapNhatTienDoHoSoMC item                its `ThoiDiemXuLy` orders it (the state machine
                                            reads the step's date, whatever the envelope says);
                                            one more than `max_skew` ahead is a dead letter

"Ahead" means more than `max_skew` after the clock: a source whose clock runs a few seconds
fast is not refused. Statuses 4-8 have no date of their own in the item, so their time is the
latest date the item carries, which is earlier than the change itself; the state machine lets
such an item move the status when it is the newest item (see `decide.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.dossier import DossierHeader, DossierStatus
from services.ingest.envelope import check_cloudevent_time
from services.ingest.errors import ContractError

STATUS_DATE_FIELD: dict[DossierStatus, str] = {
    DossierStatus.SUBMITTED: "submitted_at",
    DossierStatus.ACCEPTED: "received_at",
    DossierStatus.REJECTED: "rejected_at",
    DossierStatus.FINISHED: "finished_at",
    DossierStatus.RETURNED: "returned_at",
}
"""The header date that says when the dossier reached each status that has one."""
_PAST_DATES = ("submitted_at", "received_at", "rejected_at", "finished_at", "returned_at")
"""Every date of the header that records something that happened (not `due_at`)."""


class TimeBasis(StrEnum):
    """Where an event's time came from."""

    CLOUDEVENT = "cloudevent"
    STATUS_DATE = "status_date"
    LATEST_DATE = "latest_date"
    """The latest date the item carries: the change happened at or after it."""
    RECORD = "record"
    CLOCK = "clock"
    STEP = "step"


@dataclass(slots=True)  # not frozen: one per event (see `decide.Decision`)
class EventTime:
    at: datetime
    basis: TimeBasis

    @property
    def lower_bound(self) -> bool:
        """The change happened at or after `at`, not necessarily at it."""
        return self.basis is TimeBasis.LATEST_DATE


def header_time(
    header: DossierHeader,
    status: DossierStatus,
    *,
    envelope_time: datetime | None,
    record_time: datetime | None,
    now: datetime,
    max_skew: timedelta,
) -> EventTime:
    """The time of a DongBoHoSoMC item's change, by the table in the module docstring."""
    if envelope_time is not None:
        at = check_cloudevent_time(envelope_time, now=now, max_skew=max_skew)
        return EventTime(at, TimeBasis.CLOUDEVENT)
    latest = now + max_skew
    field = STATUS_DATE_FIELD.get(status)
    own: datetime | None = getattr(header, field) if field else None
    if own is not None and own <= latest:
        return EventTime(own, TimeBasis.STATUS_DATE)
    past = [d for name in _PAST_DATES if (d := getattr(header, name)) is not None and d <= latest]
    if past:
        return EventTime(max(past), TimeBasis.LATEST_DATE)
    if record_time is not None and record_time <= latest:
        return EventTime(record_time, TimeBasis.RECORD)
    return EventTime(now, TimeBasis.CLOCK)


def step_time(
    handled_at: datetime, *, envelope_time: datetime | None, now: datetime, max_skew: timedelta
) -> EventTime:
    """A CapNhatTienDoHoSoMC item's time (the envelope's, else `ThoiDiemXuLy`); neither may lie
    ahead of the clock. What orders steps is `ThoiDiemXuLy` (`decide.py`)."""
    if handled_at > now + max_skew:
        raise ContractError(
            f"ThoiDiemXuLy is more than {int(max_skew.total_seconds())} s ahead of the clock",
            [("ThoiDiemXuLy", "ahead of the clock")],
        )
    if envelope_time is not None:
        at = check_cloudevent_time(envelope_time, now=now, max_skew=max_skew)
        return EventTime(at, TimeBasis.CLOUDEVENT)
    return EventTime(handled_at, TimeBasis.STEP)
