"""A hand-computed table of dossiers and the figures the portal would give them (November 2026).

Shared by the pure formula tests and the store tests (SQLite and PostgreSQL), so that both are
held to the same numbers, worked out by hand in the comments, never by the code under test.
Times are Asia/Ho_Chi_Minh wall times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.dossier import Channel, DossierStatus
from schemas.facts import DossierFacts

VN = timezone(timedelta(hours=7))
AGENCY = "000.00.01.H01"


def at(month: int, day: int, hour: int = 0, minute: int = 0, *, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN)


def facts(**values: Any) -> DossierFacts:
    values.setdefault("agency", AGENCY)
    values.setdefault("status", DossierStatus.IN_PROCESS)
    return DossierFacts(**values)


def finished(received: datetime, ended: datetime, **values: Any) -> DossierFacts:
    """A dossier finished (9) at `ended`."""
    values.setdefault("status", DossierStatus.FINISHED)
    return facts(
        received_at=received,
        finished_at=ended,
        ended_at=ended,
        end_status=DossierStatus.FINISHED,
        **values,
    )


@dataclass(frozen=True, slots=True)
class Case:
    code: str
    facts: DossierFacts
    portal_holds: bool = False


NOVEMBER: tuple[Case, ...] = (
    # D1: on time, online, paid, digitised, files, result, VNeID; 5 days 1 hour of processing.
    Case(
        "D1",
        finished(
            at(11, 3, 9),
            at(11, 8, 10),
            status=DossierStatus.RETURNED,
            due_at=at(11, 10, 17),
            channel=Channel.ONLINE,
            fee_bearing=True,
            paid_online=1,
            digitised=True,
            attachments=True,
            result_file=True,
            vneid_verified=True,
        ),
        portal_holds=True,
    ),
    # D2: late (ended 14th, due 12th), in person, every fee 0 (out of 3.6), files; 9 days.
    Case(
        "D2",
        finished(
            at(11, 5, 8),
            at(11, 14, 8),
            due_at=at(11, 12, 17),
            channel=Channel.IN_PERSON,
            fee_bearing=False,
            attachments=True,
        ),
        portal_holds=True,
    ),
    # D3: received in October, ended late in November: in November's 2.1 only (late); in
    # October's, open at 1 Nov and still within its due date (on time).
    Case("D3", finished(at(10, 28, 10), at(11, 6, 10), due_at=at(11, 4, 17))),
    # D4: received and ended in October: nowhere in November.
    Case("D4", finished(at(10, 20, 9), at(10, 30, 9), due_at=at(10, 31, 17))),
    # D5: received 20 Nov, open, due 5 Dec: within its due date at the end of November; no
    # channel (in person), fee-bearing, not paid online, not synced.
    Case(
        "D5",
        facts(received_at=at(11, 20, 9), due_at=at(12, 5, 17), fee_bearing=True),
    ),
    # D6: open, due 25 Nov: overdue when November ends (but within its due date on 20 Nov).
    Case("D6", facts(received_at=at(11, 10, 9), due_at=at(11, 25, 17))),
    # D7: one supplement round of 3 days: due 9 Nov 17:00 + 3 d = 12 Nov 17:00 >= ended 11
    # Nov 09:00, on time; online, synced; processing 9 days - 3 days = 6 days.
    Case(
        "D7",
        finished(
            at(11, 2, 9),
            at(11, 11, 9),
            due_at=at(11, 9, 17),
            supplement_requests=1,
            supplement_seconds=3 * 86_400,
            channel=Channel.ONLINE,
        ),
        portal_holds=True,
    ),
    # D8: two supplement requests: late although it ended long before its due date;
    # processing 4 days - 1 day of supplements = 3 days.
    Case(
        "D8",
        finished(
            at(11, 2, 9),
            at(11, 6, 9),
            due_at=at(11, 20, 17),
            supplement_requests=2,
            supplement_seconds=86_400,
        ),
    ),
    # D9: no due date; legal limit 10 days, took 9: on time; 9 days.
    Case("D9", finished(at(11, 12, 9), at(11, 21, 9), legal_limit_days=10)),
    # D10: no due date and no legal limit: against 2.1 (`no_due_date`); 1 day.
    Case("D10", finished(at(11, 12, 10), at(11, 13, 10))),
    # D11: supplement pending since 17 Nov 10:00, due 18 Nov 17:00: judged at the request, on
    # time.
    Case(
        "D11",
        facts(
            status=DossierStatus.SUPPLEMENT_REQUESTED,
            received_at=at(11, 15, 9),
            due_at=at(11, 18, 17),
            supplement_requests=1,
            supplement_since=at(11, 17, 10),
        ),
    ),
    # D12: submitted, never received: nowhere.
    Case("D12", facts(status=DossierStatus.SUBMITTED, submitted_at=at(11, 4, 9))),
    # D13: refused at intake without a reception date: nowhere.
    Case(
        "D13",
        facts(
            status=DossierStatus.REJECTED,
            submitted_at=at(11, 4, 9),
            ended_at=at(11, 4, 10),
            end_status=DossierStatus.REJECTED,
        ),
    ),
    # D14: received 30 Nov 23:30 (November's last half hour), online, synced, due 10 Dec.
    Case(
        "D14",
        facts(
            status=DossierStatus.ACCEPTED,
            received_at=at(11, 30, 23, 30),
            due_at=at(12, 10, 17),
            channel=Channel.ONLINE,
        ),
        portal_holds=True,
    ),
    # D15: received 1 Dec 00:00: December.
    Case("D15", facts(received_at=at(12, 1, 0), due_at=at(12, 20, 17), channel=Channel.ONLINE)),
)

NOW_AFTER = at(12, 15, 12)
"""November is over (final): unfinished dossiers are judged at 1 Dec 00:00."""

# November 2026, judged after it ended. Received in November (2, 4-10 with a reception date):
# D1 D2 D5 D6 D7 D8 D9 D10 D11 D14 = 10.
NOVEMBER_FIGURES: dict[str, tuple[int, int, float | None, float | None]] = {
    # synced D1 D2 D7 D14 = 4 / 10 -> 0.4 -> 6 x 0.4 = 2.4
    "1.4": (4, 10, 0.4, 2.4),
    # ended in November: D1 ok, D2 late, D3 late, D7 ok, D8 late, D9 ok, D10 no due date = 3/7;
    # open at 1 Dec: D5 ok, D6 overdue, D11 ok, D14 ok = 3/4; together 6/11 -> 20 x 6/11
    "2.1": (6, 11, 6 / 11, 20 * 6 / 11),
    # finished D1 435600 + D2 777600 + D7 518400 + D8 259200 + D9 777600 + D10 86400 s
    # = 2854800 s over 6 -> 475800 s = 5.50694 days
    "2.2": (2_854_800, 6, 475_800 / 86_400, None),
    # online D1 D7 D14 = 3 / 10 = 0.3, times the 1.4 rate 0.4 = 0.12; no points
    "3.3": (3, 10, 0.12, None),
    # fee-bearing D1 D5 (D2's fees are all 0) = 2; paid online D1 -> 0.5 -> 3.0
    "3.6": (1, 2, 0.5, 3.0),
    # no procedure catalogue: not scored
    "4.1": (0, 0, None, None),
    # files D1 D2 -> 0.2 -> 0.8
    "4.2": (2, 10, 0.2, 0.8),
    # digitised D1 -> 0.1 -> 2 x 0.1 / 0.8 = 0.25
    "4.3": (1, 10, 0.1, 0.25),
    "4.4": (0, 10, 0.0, 0.0),
    # VNeID D1 -> 0.1 -> 0.2
    "4.5b": (1, 10, 0.1, 0.2),
    "signature": (0, 0, None, None),
}
# 2.4 + 120/11 + 3.0 + 0.8 + 0.25 + 0.0 + 0.2 = 6.65 + 10.909090... of 6+20+6+4+2+4+2 = 44
NOVEMBER_POINTS = (6.65 + 120 / 11, 44.0)
