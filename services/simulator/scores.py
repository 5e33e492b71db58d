"""The simulated portal's own figures, from what it holds, by the rules of DOMAIN.md §2 (pure).

Written from DOMAIN.md's text alone and on purpose apart from govsync's own counting
(`services/common/indicators.py`, the scores service): the simulator stands in for the portal
govsync checks itself against, so its figures must be an independent reading of the rules.

How each figure is read from what the portal holds (its DongBoHoSoMC items and steps):

- Period: month, quarter or year of Asia/Ho_Chi_Minh calendar days. The date that puts a
  dossier in it is `NgayTiepNhan`, else the first step in a received status.
- Received: the held status is one of 2, 4-10. 1.4: received in the period / the larger of that
  count and the portal's own received count (the held count plus `received_count_delta`); both 0:
  last year's received / 12 (month), / 4 (quarter), or last year's (year). The newer revision's
  "progress reached the portal on time" condition is not modelled.
- 2.1: received before the period's end and not ended before its start. End: the earliest of
  `NgayKetThucXuLy`, `NgayTra`, `NgayTuChoi` and the steps to 9, 10, 8, 3 or 7. On time: the end
  (or, unfinished, the period's end) is no later than `NgayHenTra`, moved by the one supplement
  request's duration (its step 5 to the next step); two or more requests make it overdue; no
  `NgayHenTra`: reception + the procedure's legal limit, else on time (no catalogue). Its
  received count also takes `received_count_delta`.
- 2.2: mean days from reception to finish of those received in the period and finished.
- 3.3: online (`KenhThucHien` 2) / received, times the 1.4 rate; no points (unresolved).
- 3.6: `DuocThanhToanTrucTuyen` 1 or 2 / received with a fee above 0.
- 4.1: a result file link (`DanhSachGiayToKetQua.DuongDanTepTinKetQua`) / finished (no
  catalogue says which procedures issue a paper result: all of them). 4.2: a non-deleted
  `TaiLieuNop` (and a result link where results are listed) / received. 4.3:
  `HoSoCoThanhPhanSoHoa` 1 or a non-deleted `DuocSoHoa` 1 / received, min(2, 2 * rate / 0.8).
  4.4: a non-deleted `DuocLayTuKhoDMQG` 1 / received. 4.5b: `TaiKhoanDuocXacThucVoiVNeID` 1.
- Points: max * rate (4.3 as above), rounded half up to 2 decimals like ratios (in percent).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
RECEIVED = frozenset({2, 4, 5, 6, 7, 8, 9, 10})
ENDS = (9, 10, 8, 3)
WITHDRAWN = 7
SUPPLEMENT = 5
DATE_SHAPE = "yyyyMMddHHmmss"

Kind = Literal["month", "quarter", "year"]


def parse_date(value: object) -> datetime | None:
    """A portal date (`yyyyMMddHHmmss`, Vietnam time), or None if there is none or it is bad."""
    # By slices rather than strptime: a report reads every held date, and this is 10x faster.
    if not isinstance(value, str) or len(value) != len(DATE_SHAPE) or not value.isdigit():
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=LOCAL,
        )
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Period:
    kind: Kind
    year: int
    number: int
    """The month (1-12) or quarter (1-4); 0 for a year."""
    start: datetime
    end: datetime
    """Exclusive: midnight after the period's last day."""

    @classmethod
    def of(cls, kind: str, year: int, number: int | None = None) -> Period:
        """Raises ValueError for a period the reporting API would not accept."""
        if not 2000 <= year <= 2100:
            raise ValueError(f"year out of range: {year}")
        if kind == "year":
            return cls._made("year", year, 0)
        limit = {"month": 12, "quarter": 4}.get(kind)
        if limit is None:
            raise ValueError(f"timeType must be month, quarter or year, not {kind!r}")
        if number is None or not 1 <= number <= limit:
            raise ValueError(f"{kind} must be 1..{limit}")
        return cls._made("month" if kind == "month" else "quarter", year, number)

    @classmethod
    def _made(cls, kind: Kind, year: int, number: int) -> Period:
        months = _months(kind, number)
        last = months[-1]
        end = datetime(year, last, calendar.monthrange(year, last)[1], tzinfo=LOCAL)
        start = datetime(year, months[0], 1, tzinfo=LOCAL)
        return cls(kind, year, number, start, end + timedelta(days=1))

    @property
    def months(self) -> range:
        return _months(self.kind, self.number)

    def contains(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end

    def last_year(self) -> Period:
        return Period.of("year", self.year - 1)

    def share_of_year(self) -> int:
        """What last year's total is divided by when 1.4 has nothing else (DOMAIN.md §2)."""
        return {"month": 12, "quarter": 4, "year": 1}[self.kind]


def _months(kind: Kind, number: int) -> range:
    if kind == "month":
        return range(number, number + 1)
    if kind == "quarter":
        return range(3 * number - 2, 3 * number + 1)
    return range(1, 13)


@dataclass(frozen=True, slots=True)
class Held:
    """One dossier as the portal holds it, read for scoring."""

    madonvi: str
    status: int | None
    procedure: str | None
    received_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    ended_at: datetime | None
    online: bool
    postal: bool
    fee_bearing: bool
    paid_online: bool
    attachments: bool
    digitised: bool
    from_repository: bool
    vneid: bool
    result_file: bool
    results_listed: bool
    supplements: int
    supplement_seconds: float

    @property
    def received(self) -> bool:
        return self.status in RECEIVED


def _flag(value: object) -> bool:
    return str(value).strip() in {"1", "True", "true"}


def _rows(value: object) -> list[Mapping[str, Any]]:
    return [row for row in value if isinstance(row, Mapping)] if isinstance(value, list) else []


def held(
    madonvi: str, header: Mapping[str, Any], status: int | None, steps: Sequence[Mapping[str, Any]]
) -> Held:
    """Read one held dossier: its header item, its status now and its steps."""
    timed = sorted(
        (at, row.get("TrangThai"))
        for row in steps
        if (at := parse_date(row.get("ThoiDiemXuLy"))) is not None
    )
    first: dict[object, datetime] = {}
    for at, step_status in timed:
        first.setdefault(step_status, at)
    received_at = parse_date(header.get("NgayTiepNhan")) or min(
        (at for at, s in timed if s in RECEIVED), default=None
    )
    finished_at = (
        parse_date(header.get("NgayKetThucXuLy"))
        or first.get(9)
        or parse_date(header.get("NgayTra"))
        or first.get(10)
    )
    ends = [
        parse_date(header.get("NgayKetThucXuLy")),
        parse_date(header.get("NgayTra")),
        parse_date(header.get("NgayTuChoi")),
        *(first.get(s) for s in ENDS),
        first.get(WITHDRAWN) if received_at is not None else None,
    ]
    attachments = [a for a in _rows(header.get("TaiLieuNop")) if not _flag(a.get("IsDeleted"))]
    results = _rows(header.get("DanhSachGiayToKetQua"))
    requests = [at for at, s in timed if s == SUPPLEMENT]
    supplements = max(len(_rows(header.get("DanhSachHoSoBoSung"))), len(requests))
    paused = 0.0
    if supplements == 1 and requests:
        after = [at for at, _ in timed if at > requests[0]]
        if after:
            paused = (after[0] - requests[0]).total_seconds()
    fees = _rows(header.get("DanhSachLePhi"))
    return Held(
        madonvi=madonvi,
        status=status,
        procedure=header.get("MaTTHC") if isinstance(header.get("MaTTHC"), str) else None,
        received_at=received_at,
        due_at=parse_date(header.get("NgayHenTra")),
        finished_at=finished_at if status in (9, 10) else None,
        ended_at=min((at for at in ends if at is not None), default=None),
        online=str(header.get("KenhThucHien")) == "2",
        postal=str(header.get("KenhThucHien")) == "3",
        fee_bearing=any(_amount(fee.get("Gia")) > 0 for fee in fees),
        paid_online=str(header.get("DuocThanhToanTrucTuyen")) in {"1", "2"},
        attachments=bool(attachments),
        digitised=_flag(header.get("HoSoCoThanhPhanSoHoa"))
        or any(_flag(a.get("DuocSoHoa")) for a in attachments),
        from_repository=any(_flag(a.get("DuocLayTuKhoDMQG")) for a in attachments),
        vneid=_flag(header.get("TaiKhoanDuocXacThucVoiVNeID")),
        result_file=any(r.get("DuongDanTepTinKetQua") for r in results),
        results_listed=bool(results),
        supplements=supplements,
        supplement_seconds=paused,
    )


def _amount(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


def on_time(dossier: Held, period: Period, legal_limits: Mapping[str, int]) -> bool:
    """2.1: judged at its end, or at the period's end while unfinished."""
    if dossier.supplements >= 2:
        return False
    judged = dossier.ended_at if dossier.ended_at and dossier.ended_at < period.end else period.end
    deadline = dossier.due_at
    if deadline is None:
        days = legal_limits.get(dossier.procedure or "")
        if days is None or dossier.received_at is None:
            return True
        deadline = dossier.received_at + timedelta(days=days)
    return judged <= deadline + timedelta(seconds=dossier.supplement_seconds)


@dataclass(slots=True)
class Tally:
    """The counts behind every figure of one department (or of the root: their sum)."""

    received: int = 0
    """Received in the period: 1.4's numerator, the denominator of 3.3, 4.2-4.5b."""
    reported_received: int = 0
    """The portal's own received count: `received` plus `received_count_delta`."""
    last_year_received: int = 0
    online: int = 0
    postal: int = 0
    fee_bearing: int = 0
    paid_online: int = 0
    attachments: int = 0
    digitised: int = 0
    from_repository: int = 0
    vneid: int = 0
    finished: int = 0
    result_file: int = 0
    processing_days: float = 0.0
    handled: int = 0
    """2.1's denominator before `received_count_delta`."""
    reported_handled: int = 0
    on_time: int = 0
    completed: int = 0

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def tally(
    dossiers: Iterable[Held],
    period: Period,
    *,
    delta: int = 0,
    legal_limits: Mapping[str, int] | None = None,
) -> Tally:
    """The counts of one department's dossiers for `period`."""
    limits = legal_limits or {}
    last_year = period.last_year()
    t = Tally()
    for d in dossiers:
        if d.received and last_year.contains(d.received_at):
            t.last_year_received += 1
        if d.received and period.contains(d.received_at):
            t.received += 1
            t.online += d.online
            t.postal += d.postal
            t.fee_bearing += d.fee_bearing
            t.paid_online += d.fee_bearing and d.paid_online
            t.attachments += d.attachments and (d.result_file or not d.results_listed)
            t.digitised += d.digitised
            t.from_repository += d.from_repository
            t.vneid += d.vneid
            if d.finished_at is not None and d.received_at is not None:
                t.finished += 1
                t.result_file += d.result_file
                t.processing_days += (d.finished_at - d.received_at).total_seconds() / 86400
        handled = (
            d.status not in (None, 1)
            and d.received_at is not None
            and d.received_at < period.end
            and not (d.ended_at is not None and d.ended_at < period.start)
        )
        if handled:
            t.handled += 1
            t.on_time += on_time(d, period, limits)
            t.completed += d.ended_at is not None and d.ended_at < period.end
    t.reported_received = max(t.received + delta, 0)
    t.reported_handled = max(t.handled + delta, 0)
    return t


# --- rates and points --------------------------------------------------------------------------


def round2(value: float) -> float:
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def percent(rate: float | None) -> float | None:
    return None if rate is None else round2(rate * 100)


def points(maximum: float, rate: float | None, *, full_at: float = 1.0) -> float | None:
    return None if rate is None else round2(min(maximum, maximum * rate / full_at))


def share(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def sync_denominator(t: Tally, period: Period) -> float:
    """1.4: the larger of the two received counts; both 0: a share of last year's."""
    larger = max(t.received, t.reported_received)
    if larger:
        return float(larger)
    return t.last_year_received / period.share_of_year()


def sync_rate(t: Tally, period: Period) -> float | None:
    return share(t.received, sync_denominator(t, period))


def online_rate(t: Tally, period: Period) -> float | None:
    """3.3: online over received, then times the 1.4 rate."""
    online = share(t.online, t.received)
    synced = sync_rate(t, period)
    return None if online is None or synced is None else online * synced


def on_time_rate(t: Tally) -> float | None:
    return share(t.on_time, t.reported_handled)


def processing_days(t: Tally) -> float:
    return round2(t.processing_days / t.finished) if t.finished else 0.0
