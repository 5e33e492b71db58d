"""Periods on the Asia/Ho_Chi_Minh calendar: parsing, bounds, day keys, final or provisional."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.scores.periods import Period, PeriodKind, current_periods, local_day
from tests.support.scores_cases import at


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        pytest.param("2026-11", date(2026, 11, 1), date(2026, 11, 30), id="month"),
        pytest.param("2026-02", date(2026, 2, 1), date(2026, 2, 28), id="february"),
        pytest.param("2028-02", date(2028, 2, 1), date(2028, 2, 29), id="leap-february"),
        pytest.param("2026-12", date(2026, 12, 1), date(2026, 12, 31), id="december"),
        pytest.param("2026-Q1", date(2026, 1, 1), date(2026, 3, 31), id="q1"),
        pytest.param("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), id="q4"),
        pytest.param("2026", date(2026, 1, 1), date(2026, 12, 31), id="year"),
    ],
)
def test_period_bounds(text: str, first: date, last: date) -> None:
    period = Period.parse(text)
    assert str(period) == text
    assert period.first_date == first
    assert period.last_date == last
    assert period.first_day == first.year * 10000 + first.month * 100 + first.day


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q5", "26", "2026-1", "2026/11", ""])
def test_malformed_periods_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"period|month|range"):
        Period.parse(text)


def test_period_starts_at_local_midnight() -> None:
    november = Period.parse("2026-11")
    # 00:00 in Hanoi is 17:00 UTC the day before.
    assert november.start == datetime(2026, 10, 31, 17, tzinfo=UTC)
    assert november.end == datetime(2026, 11, 30, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        pytest.param(at(11, 30, 23, 59), 20261130, id="last-minute-of-november"),
        pytest.param(at(12, 1, 0, 0), 20261201, id="first-minute-of-december"),
        pytest.param(datetime(2026, 11, 30, 16, 59, tzinfo=UTC), 20261130, id="utc-before"),
        pytest.param(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), 20261201, id="utc-at-midnight"),
        pytest.param(datetime(2026, 12, 31, 17, 0, tzinfo=UTC), 20270101, id="new-year"),
    ],
)
def test_local_day(moment: datetime, day: int) -> None:
    assert local_day(moment) == day


def test_final_and_cutoff() -> None:
    november = Period.parse("2026-11")
    during = at(11, 20, 12)
    assert not november.is_final(during)
    assert november.cutoff(during) == during
    assert november.is_final(at(12, 1, 0))
    assert november.cutoff(at(12, 15)) == november.end


def test_current_periods_follow_the_local_calendar() -> None:
    # 31 Dec 17:30 UTC is already 1 Jan in Hanoi.
    now = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    periods = current_periods(now)
    assert [str(periods[k]) for k in PeriodKind] == ["2027-01", "2027-Q1", "2027"]


def test_months_of_a_quarter() -> None:
    assert [str(p) for p in Period.parse("2026-Q4").month_periods()] == [
        "2026-10",
        "2026-11",
        "2026-12",
    ]
