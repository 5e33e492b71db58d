"""The ground truth's own reckoning of the official scores (DOMAIN.md §2) per agency and period.

Straight from the plans and how far each was sent, with its own plain code: nothing here comes
from the scores service (`services.scores`) or the shared indicator rules, so the run compares
two independent computations. What the scores service can know of a dossier is what was sent:
facts only from a header at or after `facts_from`, a due date only from a header once received,
the portal holding it once a header was sent, the agency of its latest header.

Periods are calendar months, quarters and years on Asia/Ho_Chi_Minh dates. The run's dossiers
are received now (and its backfills `backfill_days` earlier), so `run_periods` names the months
the traffic falls in and the smallest period that holds all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from schemas.edocument import Direction, SignatureVerdict
from services.localrun.traffic.plans import (
    LOCAL_TZ,
    SUBMITTED,
    SUPPLEMENT,
    DossierPlan,
    Pattern,
    second,
)
from services.localrun.traffic.truth import (
    FINISHED_STATUSES,
    RECEIVED,
    GroundTruth,
    bare_times,
    tally_of,
)

SCORED = ("1.4", "2.1", "3.3", "3.6", "4.2", "4.3", "4.4", "4.5b", "signature")
"""The indicators compared (4.1 needs a procedure catalogue the run has not; 2.2 has no
points)."""
MAX_POINTS = {"1.4": 6.0, "2.1": 20.0, "3.6": 6.0, "4.2": 4.0, "4.3": 2.0, "4.4": 4.0, "4.5b": 2.0}


@dataclass(frozen=True, slots=True)
class Span:
    """A calendar period: `name` as the API spells it, local days [first, last]."""

    name: str
    first: date
    last: date

    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=LOCAL_TZ)

    def end(self) -> datetime:
        return self.start() + timedelta(days=(self.last - self.first).days + 1)

    def holds(self, day: date) -> bool:
        return self.first <= day <= self.last


def month(day: date) -> Span:
    nxt = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return Span(f"{day.year}-{day.month:02d}", day.replace(day=1), nxt - timedelta(days=1))


def quarter(day: date) -> Span:
    q = (day.month - 1) // 3
    first = date(day.year, 3 * q + 1, 1)
    last = month(date(day.year, 3 * q + 3, 1)).last
    return Span(f"{day.year}-Q{q + 1}", first, last)


def year(day: date) -> Span:
    return Span(str(day.year), date(day.year, 1, 1), date(day.year, 12, 31))


def span(name: str) -> Span:
    """`2026-11`, `2026-Q4` or `2026` as a `Span`."""
    if "-Q" in name:
        y, q = name.split("-Q")
        return quarter(date(int(y), 3 * int(q) - 2, 1))
    if "-" in name:
        y, m = name.split("-")
        return month(date(int(y), int(m), 1))
    return year(date(int(name), 1, 1))


def local(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


@dataclass(slots=True)
class Count:
    numerator: int = 0
    denominator: int = 0


@dataclass(slots=True)
class Card:
    """One agency's figures in one period."""

    counts: dict[str, Count] = field(default_factory=lambda: {i: Count() for i in SCORED})

    def rate(self, indicator: str) -> float | None:
        c = self.counts[indicator]
        if indicator in ("1.4", "3.6") and not c.denominator:
            return 0.0  # the portal scores an empty 1.4 or 3.6 as 0
        if not c.denominator:
            return None
        rate = c.numerator / c.denominator
        if indicator == "3.3":
            rate *= self.rate("1.4") or 0.0  # as the portal scores 3.3
        return rate

    def points(self, indicator: str) -> float | None:
        top, rate = MAX_POINTS.get(indicator), self.rate(indicator)
        if top is None or rate is None:
            return None
        if indicator == "4.3":
            return min(top, top * rate / 0.8)  # full marks from 80 %
        return top * rate

    @property
    def total(self) -> float:
        return sum(p for i in SCORED if (p := self.points(i)) is not None)


def _times(plan: DossierPlan) -> list[datetime]:
    """When ingest places each change: the step's time, or for bare items their dates."""
    if plan.pattern is Pattern.BARE_LIFE:
        return bare_times(plan)
    return [s.at for s in plan.steps]


@dataclass(frozen=True, slots=True)
class _Dossier:
    agency: str
    received: bool
    received_at: datetime | None
    ended_at: datetime | None
    ended_on_time: bool
    deadline: datetime | None
    forced_late: bool
    pending_since: datetime | None
    flags: dict[str, tuple[bool, bool]]
    """Per reception-dated indicator: (in its denominator, in its numerator)."""


def _dossier(plan: DossierPlan, sent: int) -> _Dossier:
    agency, tally = tally_of(plan, sent)  # the same reading of what was sent as ingest's counts
    statuses = [s.status for s in plan.steps[:sent]]
    times = _times(plan)[:sent]
    headers = [i for i in range(sent) if plan.has_header(i)]
    first_received = next((i for i, s in enumerate(statuses) if s in RECEIVED), None)
    received_at: datetime | None = None
    if first_received is not None:
        dated = any(statuses[i] != SUBMITTED for i in headers) and plan.received_at is not None
        received_at = plan.received_at if dated else times[first_received]
    ended_at: datetime | None = None
    if statuses[-1] in FINISHED_STATUSES:
        # The first end reached (a finish before the return); only its period matters here.
        ended_at = times[next(i for i, s in enumerate(statuses) if s in FINISHED_STATUSES)]
    due_known = first_received is not None and any(i >= first_received for i in headers)
    rounds = statuses.count(SUPPLEMENT)
    completed = timedelta()
    pending: datetime | None = None
    for i, status in enumerate(statuses):
        if status == SUPPLEMENT:
            if i + 1 < len(statuses):
                completed += times[i + 1] - times[i]
            else:
                pending = times[i]
    deadline = None
    if due_known and plan.due_at is not None:
        deadline = plan.due_at + (
            timedelta(seconds=int(completed.total_seconds())) if rounds == 1 else timedelta()
        )
    received = bool(tally.received)
    flags = {
        "1.4": (received, received and bool(tally.synced)),
        "3.3": (received, bool(tally.received_online)),
        "3.6": (bool(tally.fee_bearing), bool(tally.paid_online)),
        "4.2": (received, bool(tally.attached)),
        "4.3": (received, bool(tally.digitised)),
        "4.4": (received, bool(tally.national)),
        "4.5b": (received, bool(tally.vneid)),
    }
    return _Dossier(
        agency=agency,
        received=received,
        received_at=received_at,
        ended_at=ended_at,
        ended_on_time=bool(tally.finished_on_time),
        deadline=deadline,
        forced_late=rounds >= 2,
        pending_since=pending,
        flags=flags,
    )


def _in_time(d: _Dossier, cutoff: datetime) -> bool:
    """2.1 of a dossier still open at the cutoff: judged then, or when a supplement request
    still pending was made; two requests are late, no due date cannot be on time."""
    if d.forced_late or d.deadline is None:
        return False
    point = d.pending_since if d.pending_since is not None and d.pending_since < cutoff else cutoff
    return point <= d.deadline


def scorecards(truth: GroundTruth, span: Span, now: datetime) -> dict[str, Card]:
    """Per agency, what the scores service must answer for `span` at `now`."""
    cards: dict[str, Card] = {}
    start, end = span.start(), span.end()
    cutoff = min(now, end)
    for plan, sent in truth.progress.values():
        d = _dossier(plan, sent)
        if d.received_at is None:
            continue
        card = cards.setdefault(d.agency, Card())
        if d.received and span.holds(local(d.received_at)):
            for indicator, (counted, good) in d.flags.items():
                if counted:
                    card.counts[indicator].denominator += 1
                    card.counts[indicator].numerator += good
        # 2.1: received before the period's end and not ended before its start.
        if statuses_handled(plan, sent) and second(d.received_at) < end:
            if d.ended_at is not None and d.ended_at < start:
                continue
            c = card.counts["2.1"]
            c.denominator += 1
            if d.ended_at is not None and d.ended_at < end:
                c.numerator += d.ended_on_time
            else:
                c.numerator += _in_time(d, cutoff)
    for spec in truth.sent_documents:
        if spec.direction is Direction.OUTGOING and span.holds(local(spec.date)):
            c = cards.setdefault(spec.issuer, Card()).counts["signature"]
            c.denominator += 1
            c.numerator += spec.verdict is SignatureVerdict.VERIFIED
    return cards


def statuses_handled(plan: DossierPlan, sent: int) -> bool:
    """In 2.1's population at all: received at some point and not back at submitted."""
    statuses = [s.status for s in plan.steps[:sent]]
    return any(s in RECEIVED for s in statuses) and statuses[-1] != SUBMITTED


def run_periods(truth: GroundTruth, now: datetime) -> tuple[Span, list[Span]]:
    """The smallest period holding every reception and document date of the run (the one the
    view shows), and each month the traffic falls in (all of them are compared at the end)."""
    days = {local(now)}
    for plan, sent in truth.progress.values():
        d = _dossier(plan, sent)
        if d.received_at is not None:
            days.add(local(d.received_at))
    days |= {local(spec.date) for spec in truth.sent_documents}
    months = sorted({month(day) for day in days}, key=lambda s: s.first)
    first, last = min(days), max(days)
    for make in (month, quarter, year):
        if make(first) == make(last):
            return make(first), months
    return month(last), months
