"""Scoring periods: a calendar month `2026-11`, quarter `2026-Q4` or year `2026`, cut on
Asia/Ho_Chi_Minh dates (DOMAIN.md §2), and the day keys the counters are stored under.

Pure: the clock is passed in. A period is `[start, end)` in local time; days are `yyyymmdd`
integers of the local calendar, so a period is also the day range `[first_day, end_day)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from services.common.dates import LOCAL_TZ

_PERIOD = re.compile(r"(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|Q(?P<quarter>[1-4])))?")


class PeriodKind(StrEnum):
    """The `period` label of the score gauges."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One scoring period; `index` is the month (1-12), the quarter (1-4) or 1 for a year."""

    year: int
    kind: PeriodKind
    index: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """`2026-11`, `2026-Q4` or `2026`; anything else is a `ValueError` saying so."""
        match = _PERIOD.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a period: write 2026-11, 2026-Q4 or 2026")
        year = int(match["year"])
        if not 1970 <= year <= 9998:
            raise ValueError(f"{text!r}: year out of range")
        if match["month"]:
            month = int(match["month"])
            if not 1 <= month <= 12:
                raise ValueError(f"{text!r}: no such month")
            return cls(year, PeriodKind.MONTH, month)
        if match["quarter"]:
            return cls(year, PeriodKind.QUARTER, int(match["quarter"]))
        return cls(year, PeriodKind.YEAR, 1)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        return cls(year, PeriodKind.MONTH, month)

    @classmethod
    def containing(cls, moment: datetime, kind: PeriodKind) -> Period:
        """The period of `kind` that holds `moment` (aware) on the local calendar."""
        local = moment.astimezone(LOCAL_TZ)
        if kind is PeriodKind.MONTH:
            return cls(local.year, kind, local.month)
        if kind is PeriodKind.QUARTER:
            return cls(local.year, kind, (local.month - 1) // 3 + 1)
        return cls(local.year, kind, 1)

    def __str__(self) -> str:
        if self.kind is PeriodKind.MONTH:
            return f"{self.year}-{self.index:02d}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.year}-Q{self.index}"
        return str(self.year)

    @property
    def first_month(self) -> int:
        if self.kind is PeriodKind.MONTH:
            return self.index
        if self.kind is PeriodKind.QUARTER:
            return 3 * (self.index - 1) + 1
        return 1

    @property
    def months(self) -> int:
        return {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[self.kind]

    @property
    def first_date(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end_date(self) -> date:
        """The first day after the period."""
        month = self.first_month + self.months
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    @property
    def last_date(self) -> date:
        return date.fromordinal(self.end_date.toordinal() - 1)

    @property
    def start(self) -> datetime:
        """00:00 of the first day, Asia/Ho_Chi_Minh."""
        return datetime.combine(self.first_date, datetime.min.time(), tzinfo=LOCAL_TZ)

    @property
    def end(self) -> datetime:
        """00:00 of the first day after the period (exclusive)."""
        return datetime.combine(self.end_date, datetime.min.time(), tzinfo=LOCAL_TZ)

    @property
    def first_day(self) -> int:
        return day_key(self.first_date)

    @property
    def end_day(self) -> int:
        return day_key(self.end_date)

    def is_final(self, now: datetime) -> bool:
        """Ended: the portal's figures for it no longer move with time (DOMAIN.md §2)."""
        return now >= self.end

    def cutoff(self, now: datetime) -> datetime:
        """When unfinished dossiers are judged: the period's end, or now while it runs."""
        return min(self.end, now)

    def has_started(self, now: datetime) -> bool:
        return now >= self.start

    def month_periods(self) -> list[Period]:
        """The months of the period, in order (the trend over a year)."""
        return [Period.month(self.year, self.first_month + i) for i in range(self.months)]

    def previous_year(self) -> Period:
        return Period(self.year - 1, PeriodKind.YEAR, 1)


def day_key(value: date) -> int:
    """`yyyymmdd` of a local calendar date."""
    return value.year * 10_000 + value.month * 100 + value.day


def local_day(moment: datetime) -> int:
    """The `yyyymmdd` of the local (Asia/Ho_Chi_Minh) day an aware datetime falls on."""
    return day_key(moment.astimezone(LOCAL_TZ).date())


def current_periods(now: datetime) -> dict[PeriodKind, Period]:
    """The month, quarter and year that hold `now` (the gauges' periods)."""
    return {kind: Period.containing(now, kind) for kind in PeriodKind}
