"""The portal's Decision 766 formulas (DOMAIN.md §2): what one dossier adds to each indicator,
why it counts for or against it in a period, and a period's figures and points from the sums.

Pure: facts in, plain values out, the clock passed in. The store keeps, per dossier, what
`derive` returns (its parts, by the day that puts it in a period) and adds the parts up per
agency and day; `figures` turns a period's sums into the contract's rates and points; `judge`
explains one dossier (the drill-down lists). The only indicator whose figure moves with time is
2.1: an unfinished dossier is judged at the period's end, or now while the period runs, so its
open part is computed at query time from the columns `derive` stores (`open_on_time` is the rule
the SQL mirrors).

    id    numerator / denominator (each dossier's latest facts)          period date
    ----  -------------------------------------------------------------  ------------------------
    1.4   received and held by the portal (ack `header`) / received      reception
    2.1   on time / received before the end, not ended before the start  reception .. end
    2.2   processing seconds / finished (9, 10); rate = mean days        reception
    3.3   online (2; and a result file for a paper-result procedure)     reception
          / received; rate = their ratio times the 1.4 rate
    3.6   paid online (1, 2) / received fee-bearing (a fee > 0, or a     reception
          fee-bearing procedure whose fee list is not all 0)
    4.1   with a result file / finished, of paper-result procedures      reception
    4.2   component files attached (and a result file for a paper-       reception
          result procedure) / received
    4.3   digitised components / received                                reception
    4.4   taken from the national repository / received                  reception
    4.5b  VNeID-verified applicant / received                            reception
    sig.  outgoing e-documents with a verified signature / outgoing      promulgation

Received = status 2, 4-10 with a reception date. 2.1's end is the first of finished (9), returned
(10), stopped or refused (8, 3), withdrawn (7) once received (`DossierFacts.ended_at`); on time =
end ≤ due date (`NgayHenTra`, else reception + the legal limit), one supplement request extends
the due date by its duration, two or more make the dossier late, and a pending one (requested
before the cutoff) is judged at the time it was requested. Without a due date or a legal limit
nothing can be shown on time: the dossier counts against 2.1 with the reason `no_due_date`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.dossier import RECEIVED_STATUSES, Channel, DossierStatus
from schemas.facts import DossierFacts
from services.common.dates import to_ms
from services.scores.catalogue import Catalogue
from services.scores.periods import Period, local_day

OPEN_MS = 2**62
"""`open_until` of a dossier that has not ended: later than any cutoff."""
_FINISHED = frozenset({DossierStatus.FINISHED, DossierStatus.RETURNED})


class Part(StrEnum):
    """The per-day counters (one column each): what the indicators' sums are made of."""

    RECEIVED = "received"
    SYNCED = "synced"
    ONLINE = "online"
    FEE_DUE = "fee_due"
    PAID = "paid"
    PAPER_FINISHED = "paper_finished"
    RESULT = "result"
    ATTACHED = "attached"
    DIGITISED = "digitised"
    NATIONAL_REPOSITORY = "national_repository"
    VNEID = "vneid"
    FINISHED = "finished"
    PROCESSING_SECONDS = "processing_seconds"
    ENDED = "ended"
    """2.1: dossiers that ended on this day (keyed by the end day, not the reception day)."""
    ENDED_ON_TIME = "ended_on_time"
    DOCUMENTS = "documents"
    """Outgoing e-documents promulgated on this day."""
    SIGNED = "signed"


RECEPTION_PARTS = (
    Part.RECEIVED, Part.SYNCED, Part.ONLINE, Part.FEE_DUE, Part.PAID, Part.PAPER_FINISHED,
    Part.RESULT, Part.ATTACHED, Part.DIGITISED, Part.NATIONAL_REPOSITORY, Part.VNEID,
    Part.FINISHED, Part.PROCESSING_SECONDS,
)  # fmt: skip
"""The parts dated by reception, in `Part`'s order (the table's columns and `derive`'s tuple)."""
END_PARTS = (Part.ENDED, Part.ENDED_ON_TIME)
DOCUMENT_PARTS = (Part.DOCUMENTS, Part.SIGNED)


class Group(StrEnum):
    TRANSPARENCY = "transparency"
    PROGRESS = "progress"
    ONLINE = "online"
    PAYMENT = "payment"
    DIGITISATION = "digitisation"
    DOCUMENTS = "documents"


GROUP_NAMES: Mapping[Group, str] = {
    Group.TRANSPARENCY: "Công khai, minh bạch",
    Group.PROGRESS: "Tiến độ, kết quả giải quyết",
    Group.ONLINE: "Cung cấp dịch vụ trực tuyến",
    Group.PAYMENT: "Thanh toán trực tuyến",
    Group.DIGITISATION: "Số hóa hồ sơ",
    Group.DOCUMENTS: "Văn bản điện tử (PAR INDEX)",
}


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    name: str
    group: Group
    numerator: Part
    denominator: Part
    max_points: float | None
    full_at: float = 1.0
    """The rate from which the points are the maximum (linear below it)."""
    zero_when_empty: bool = False
    """An empty denominator scores 0 (the portal's rule for 1.4, its observed score for 3.6)."""
    needs_catalogue: bool = False


INDICATORS: tuple[Indicator, ...] = (
    Indicator("1.4", "Tỷ lệ hồ sơ đồng bộ lên Cổng DVCQG", Group.TRANSPARENCY,
              Part.SYNCED, Part.RECEIVED, 6.0, zero_when_empty=True),
    Indicator("2.1", "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn", Group.PROGRESS,
              Part.ENDED_ON_TIME, Part.ENDED, 20.0),
    Indicator("2.2", "Thời gian giải quyết trung bình", Group.PROGRESS,
              Part.PROCESSING_SECONDS, Part.FINISHED, None),
    Indicator("3.3", "Tỷ lệ hồ sơ TTHC theo hình thức nộp", Group.ONLINE,
              Part.ONLINE, Part.RECEIVED, None, full_at=0.5),
    Indicator("3.6", "Tỷ lệ hồ sơ thanh toán trực tuyến", Group.PAYMENT,
              Part.PAID, Part.FEE_DUE, 6.0, zero_when_empty=True),
    Indicator("4.1", "Tỷ lệ hồ sơ có cấp kết quả giải quyết điện tử", Group.DIGITISATION,
              Part.RESULT, Part.PAPER_FINISHED, 6.0, needs_catalogue=True),
    Indicator("4.2", "Tỷ lệ hồ sơ thực hiện số hóa hồ sơ", Group.DIGITISATION,
              Part.ATTACHED, Part.RECEIVED, 4.0),
    Indicator("4.3", "Tỷ lệ hồ sơ khai thác, sử dụng lại thông tin, dữ liệu số hóa",
              Group.DIGITISATION, Part.DIGITISED, Part.RECEIVED, 2.0, full_at=0.8),
    Indicator("4.4", "Tỷ lệ hồ sơ được số hóa có kết nối, chia sẻ dữ liệu phục vụ tái sử dụng",
              Group.DIGITISATION, Part.NATIONAL_REPOSITORY, Part.RECEIVED, 4.0),
    Indicator("4.5b", "Tỷ lệ hồ sơ TTHC có sử dụng thông tin, dữ liệu dân cư",
              Group.DIGITISATION, Part.VNEID, Part.RECEIVED, 2.0),
    Indicator("signature", "Tỷ lệ văn bản điện tử gửi đi có chữ ký số", Group.DOCUMENTS,
              Part.SIGNED, Part.DOCUMENTS, None),
)  # fmt: skip
BY_ID: Mapping[str, Indicator] = {i.id: i for i in INDICATORS}


class Reason(StrEnum):
    """Why a dossier counts for or against an indicator: a closed set (the page names them)."""

    ON_TIME = "on_time"
    IN_TIME = "in_time"
    LATE = "late"
    OVERDUE = "overdue"
    SUPPLEMENTS = "two_or_more_supplements"
    NO_DUE_DATE = "no_due_date"
    SYNCED = "synced"
    NOT_SYNCED = "not_synced"
    ONLINE = "online"
    NOT_ONLINE = "not_online"
    ONLINE_NO_RESULT = "online_without_electronic_result"
    PAID = "paid_online"
    NOT_PAID = "not_paid_online"
    RESULT = "electronic_result"
    NO_RESULT = "no_electronic_result"
    ATTACHED = "files_attached"
    NOT_ATTACHED = "no_files_attached"
    ATTACHED_NO_RESULT = "files_attached_without_electronic_result"
    DIGITISED = "digitised"
    NOT_DIGITISED = "not_digitised"
    FROM_REPOSITORY = "from_national_repository"
    NOT_FROM_REPOSITORY = "not_from_national_repository"
    VNEID = "vneid_verified"
    NOT_VNEID = "not_vneid_verified"
    FINISHED = "finished"
    SIGNED = "signed"
    NOT_SIGNED = "not_signed"


# --- one dossier --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Derived:
    """What the store keeps of one dossier besides its facts: the columns the sums and the 2.1
    query read. Times are epoch milliseconds."""

    agency: str | None
    received: bool
    """Status 2, 4-10 with a reception date: in the reception-dated denominators."""
    handled: bool
    """In 2.1's population at all: a reception date and a status other than 1."""
    received_ms: int | None
    received_day: int | None
    end_ms: int | None
    """2.1's end (not before the reception), None while the dossier has not ended."""
    end_day: int | None
    deadline_ms: int | None
    """Due date plus one supplement round's duration; None: no due date and no legal limit."""
    forced_late: bool
    """Two or more supplement requests: late whenever it is judged."""
    supplement_since_ms: int | None
    ended_on_time: bool | None
    reception: tuple[int, ...] = ()
    """The reception-dated parts' values in `RECEPTION_PARTS` order (empty unless `received`):
    a tuple, as the store writes them per record (an enum-keyed dict costs microseconds)."""

    @property
    def parts(self) -> dict[Part, int]:
        """Reception-dated parts (only when `received`); 2.1's are `END_PARTS` on `end_day`."""
        return dict(zip(RECEPTION_PARTS, self.reception, strict=True))

    @property
    def open_until(self) -> int:
        return self.end_ms if self.end_ms is not None else OPEN_MS


def _deadline(facts: DossierFacts, catalogue: Catalogue) -> datetime | None:
    due = facts.due_at
    if due is None and facts.received_at is not None:
        limit = facts.legal_limit_days
        if limit is None:
            limit = catalogue.legal_limit_days(facts.procedure_code)
        if limit is not None:
            due = facts.received_at + timedelta(days=limit)
    if due is None:
        return None
    if facts.supplement_requests == 1:
        due += timedelta(seconds=facts.supplement_seconds)
    return due


def online_counts(facts: DossierFacts, catalogue: Catalogue) -> bool:
    """3.3: online channel; for a procedure that issues a paper result, also a result file."""
    if facts.channel is not Channel.ONLINE:
        return False
    return facts.result_file or not catalogue.paper_result(facts.procedure_code)


def fee_due(facts: DossierFacts, catalogue: Catalogue) -> bool:
    """3.6's denominator: a fee above 0 was sent, or the catalogue says the procedure bears
    fees and the dossier's fee list (if any) is not all zero."""
    if facts.fee_bearing is not None:
        return facts.fee_bearing
    return catalogue.fee_bearing(facts.procedure_code) is True


def derive(facts: DossierFacts, *, portal_holds: bool, catalogue: Catalogue) -> Derived:
    """Everything the sums and the 2.1 query need of one dossier's latest facts."""
    received_at = facts.received_at
    received = facts.status in RECEIVED_STATUSES and received_at is not None
    handled = received_at is not None and facts.status is not DossierStatus.SUBMITTED
    end = facts.ended_at
    if end is not None and received_at is not None and end < received_at:
        end = received_at  # a source's end before its reception: never outside the population
    deadline = _deadline(facts, catalogue)
    forced = facts.supplement_requests >= 2
    ended_on_time: bool | None = None
    if end is not None:
        ended_on_time = not forced and deadline is not None and end <= deadline
    reception: tuple[int, ...] = ()
    if received:
        paper = catalogue.paper_result(facts.procedure_code)
        finished = facts.end_status in _FINISHED and end is not None
        fee = fee_due(facts, catalogue)
        # In `RECEPTION_PARTS` order (a test holds the two together).
        reception = (
            1,  # received
            int(portal_holds),  # synced
            int(online_counts(facts, catalogue)),  # online
            int(fee),  # fee_due
            int(fee and facts.paid_online in (1, 2)),  # paid
            int(paper and finished),  # paper_finished
            int(paper and finished and facts.result_file),  # result
            int(facts.attachments and (facts.result_file or not paper)),  # attached
            int(facts.digitised),  # digitised
            int(facts.from_national_repository),  # national_repository
            int(facts.vneid_verified),  # vneid
            int(finished),  # finished
            _processing_seconds(facts, end) if finished else 0,  # processing_seconds
        )
    return Derived(
        agency=facts.agency,
        received=received,
        handled=handled,
        received_ms=to_ms(received_at) if received_at is not None else None,
        received_day=local_day(received_at) if received_at is not None else None,
        end_ms=to_ms(end) if end is not None and handled else None,
        end_day=local_day(end) if end is not None and handled else None,
        deadline_ms=to_ms(deadline) if deadline is not None else None,
        forced_late=forced,
        supplement_since_ms=(
            to_ms(facts.supplement_since) if facts.supplement_since is not None else None
        ),
        ended_on_time=ended_on_time if handled else None,
        reception=reception,
    )


def _processing_seconds(facts: DossierFacts, end: datetime | None) -> int:
    """2.2: from reception to the end, less the time the applicant spent on supplements."""
    if end is None or facts.received_at is None:
        return 0
    seconds = (end - facts.received_at).total_seconds() - facts.supplement_seconds
    return max(0, int(seconds))


def open_on_time(d: Derived, cutoff_ms: int) -> bool:
    """2.1 for a dossier still open at the cutoff: judged then, or when a supplement still
    pending was requested (the store's SQL computes exactly this)."""
    if d.forced_late or d.deadline_ms is None:
        return False
    point = cutoff_ms
    if d.supplement_since_ms is not None and d.supplement_since_ms < cutoff_ms:
        point = d.supplement_since_ms
    return point <= d.deadline_ms


def end_parts(d: Derived) -> dict[Part, int]:
    """What the dossier adds on its end day (2.1's ended part)."""
    if not d.handled or d.end_ms is None:
        return {}
    return {Part.ENDED: 1, Part.ENDED_ON_TIME: int(bool(d.ended_on_time))}


# --- explaining one dossier -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judgement:
    """`counted` True: for the indicator; False: against it; None: not in its denominator."""

    counted: bool | None
    reason: Reason | None = None


OUT = Judgement(None)

_FLAGS: Mapping[str, tuple[Part, Reason, Reason]] = {
    "1.4": (Part.SYNCED, Reason.SYNCED, Reason.NOT_SYNCED),
    "4.3": (Part.DIGITISED, Reason.DIGITISED, Reason.NOT_DIGITISED),
    "4.4": (Part.NATIONAL_REPOSITORY, Reason.FROM_REPOSITORY, Reason.NOT_FROM_REPOSITORY),
    "4.5b": (Part.VNEID, Reason.VNEID, Reason.NOT_VNEID),
}


def judge(
    indicator: str,
    facts: DossierFacts,
    d: Derived,
    period: Period,
    *,
    now: datetime,
    catalogue: Catalogue,
) -> Judgement:
    """Whether, and why, one dossier counts for or against `indicator` in `period`."""
    if indicator == "2.1":
        return _judge_timeliness(d, period, now)
    if not d.received or d.received_day is None:
        return OUT
    if not period.first_day <= d.received_day < period.end_day:
        return OUT
    parts = d.parts
    if indicator in _FLAGS:
        part, good, bad = _FLAGS[indicator]
        return Judgement(True, good) if parts[part] else Judgement(False, bad)
    if indicator == "2.2":
        return Judgement(True, Reason.FINISHED) if parts[Part.FINISHED] else OUT
    if indicator == "3.3":
        if parts[Part.ONLINE]:
            return Judgement(True, Reason.ONLINE)
        no_result = facts.channel is Channel.ONLINE
        return Judgement(False, Reason.ONLINE_NO_RESULT if no_result else Reason.NOT_ONLINE)
    if indicator == "3.6":
        if not parts[Part.FEE_DUE]:
            return OUT
        return (
            Judgement(True, Reason.PAID) if parts[Part.PAID] else Judgement(False, Reason.NOT_PAID)
        )
    if indicator == "4.1":
        if not parts[Part.PAPER_FINISHED]:
            return OUT
        ok = parts[Part.RESULT]
        return Judgement(True, Reason.RESULT) if ok else Judgement(False, Reason.NO_RESULT)
    if indicator == "4.2":
        if parts[Part.ATTACHED]:
            return Judgement(True, Reason.ATTACHED)
        if facts.attachments:
            return Judgement(False, Reason.ATTACHED_NO_RESULT)
        return Judgement(False, Reason.NOT_ATTACHED)
    return OUT


def _judge_timeliness(d: Derived, period: Period, now: datetime) -> Judgement:
    if not d.handled or d.received_ms is None:
        return OUT
    start, end = to_ms(period.start), to_ms(period.end)
    cutoff = to_ms(period.cutoff(now))
    if d.received_ms >= end or (d.end_ms is not None and d.end_ms < start):
        return OUT
    # Ended within the period: its own verdict (an end date a source put after now included,
    # as the end-day sums count it); still open at the period's end: judged at the cutoff.
    if d.end_ms is not None and d.end_ms < end:
        if d.ended_on_time:
            return Judgement(True, Reason.ON_TIME)
        return Judgement(False, _why_late(d))
    if open_on_time(d, cutoff):
        return Judgement(True, Reason.IN_TIME)
    return Judgement(
        False, _why_late(d) if d.forced_late or d.deadline_ms is None else Reason.OVERDUE
    )


def _why_late(d: Derived) -> Reason:
    if d.forced_late:
        return Reason.SUPPLEMENTS
    if d.deadline_ms is None:
        return Reason.NO_DUE_DATE
    return Reason.LATE


# --- e-documents ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentParts:
    agency: str | None
    day: int | None
    counted: bool
    signed: bool

    @property
    def parts(self) -> dict[Part, int]:
        if not self.counted or self.day is None:
            return {}
        return {Part.DOCUMENTS: 1, Part.SIGNED: int(self.signed)}


def document_parts(
    *,
    agency: str | None,
    promulgated: datetime | None,
    outgoing: bool,
    verified: bool,
    withdrawn: bool,
) -> DocumentParts:
    """The signature share counts outgoing documents by promulgation date, less those revoked,
    replaced or recalled; verified signatures only (the rules' strict reading)."""
    counted = outgoing and not withdrawn and promulgated is not None
    day = local_day(promulgated) if promulgated is not None else None
    return DocumentParts(agency, day, counted, counted and verified)


# --- a period's figures -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One indicator of one agency and period, as the API answers it."""

    id: str
    numerator: int
    denominator: int
    rate: float | None
    points: float | None
    max_points: float | None


@dataclass(frozen=True, slots=True)
class Sums:
    """A period's sums for one agency: the day parts, and 2.1's open part at the cutoff."""

    parts: Mapping[Part, int]
    open_total: int = 0
    open_on_time: int = 0


def points(indicator: Indicator, rate: float | None) -> float | None:
    """The points for a rate: linear up to `full_at`, the maximum from there (DOMAIN.md §2)."""
    if indicator.max_points is None or rate is None:
        return None
    return min(indicator.max_points, indicator.max_points * rate / indicator.full_at)


def figures(sums: Sums, *, catalogue_configured: bool) -> list[Figure]:
    """Every indicator's numerator, denominator, rate and points from a period's sums."""
    parts = sums.parts
    out: list[Figure] = []
    sync_rate: float | None = None
    for ind in INDICATORS:
        num, den = parts.get(ind.numerator, 0), parts.get(ind.denominator, 0)
        if ind.id == "2.1":
            num, den = num + sums.open_on_time, den + sums.open_total
        empty = 0.0 if ind.zero_when_empty else None
        rate: float | None = num / den if den else empty
        if ind.id == "1.4":
            sync_rate = rate
        elif ind.id == "2.2":
            rate = num / den / 86_400 if den else None  # mean days
        elif ind.id == "3.3" and rate is not None:
            rate = rate * (sync_rate or 0.0)
        if ind.needs_catalogue and not catalogue_configured:
            num, den, rate = 0, 0, None
        score = points(ind, rate) if ind.id != "2.2" else None
        out.append(Figure(ind.id, num, den, rate, score, ind.max_points))
    return out


def total(figures_: list[Figure]) -> tuple[float, float]:
    """The points and the maximum of the indicators that were scored (points not null)."""
    scored = [f for f in figures_ if f.points is not None and f.max_points is not None]
    return sum(f.points or 0.0 for f in scored), sum(f.max_points or 0.0 for f in scored)


def sum_period(dossiers: Iterable[Derived], period: Period, *, now: datetime) -> Sums:
    """A period's sums over some dossiers, in memory: what the store's counters and its 2.1
    query add up (the reference its tests hold it to)."""
    parts: dict[Part, int] = dict.fromkeys(Part, 0)
    open_total = open_ok = 0
    end_ms, cutoff = to_ms(period.end), to_ms(period.cutoff(now))
    for d in dossiers:
        day = d.received_day
        if d.received and day is not None and period.first_day <= day < period.end_day:
            for part, value in d.parts.items():
                parts[part] += value
        if not d.handled or d.received_ms is None:
            continue
        if d.end_day is not None and period.first_day <= d.end_day < period.end_day:
            for part, value in end_parts(d).items():
                parts[part] += value
        elif d.received_ms < end_ms and d.open_until >= end_ms:
            open_total += 1
            open_ok += open_on_time(d, cutoff)
    return Sums(parts, open_total, open_ok)
