"""The truth's own reckoning of the official scores: periods, points, and one dossier by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.localrun.traffic import official
from services.localrun.traffic.plans import (
    PROCEDURES,
    DossierPlan,
    Request,
    Step,
)
from services.localrun.traffic.truth import GroundTruth


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_periods_are_calendar_spans(name: str, first: date, last: date) -> None:
    span = official.span(name)
    assert (span.name, span.first, span.last) == (name, first, last)


def test_the_shown_period_holds_the_backfills_or_falls_back_to_the_month() -> None:
    truth = GroundTruth()
    # 23:30 UTC on 1 December is 06:30 on 2 December in Hanoi.
    december = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    shown, months = official.run_periods(truth, december)
    assert shown.name == "2026-12"
    assert [m.name for m in months] == ["2026-12"]
    truth.reached(_plan("A", december - timedelta(days=60)), 2)
    shown, months = official.run_periods(truth, december)
    assert shown.name == "2026-Q4"
    assert [m.name for m in months] == ["2026-10", "2026-12"]
    january = datetime(2027, 1, 5, 3, 0, tzinfo=UTC)
    truth.reached(_plan("B", january - timedelta(days=60)), 2)
    shown, _ = official.run_periods(truth, january)
    assert shown.name == "2027-01"  # no single period holds both years: the current month


def test_points_by_hand() -> None:
    card = official.Card()
    counts = {"1.4": (3, 4), "2.1": (1, 2), "3.3": (2, 4), "3.6": (0, 0), "4.3": (3, 4)}
    for indicator, (n, d) in counts.items():
        card.counts[indicator] = official.Count(n, d)
    assert card.points("1.4") == pytest.approx(4.5)  # 6 x 0.75
    assert card.points("2.1") == pytest.approx(10.0)  # 20 x 0.5
    assert card.rate("3.3") == pytest.approx(0.375)  # 0.5 x the 1.4 rate
    assert card.points("3.3") is None
    assert card.points("3.6") == 0.0  # an empty 3.6 scores 0
    assert card.points("4.3") == pytest.approx(1.875)  # 2 x 0.75 / 0.8
    assert card.points("4.2") is None  # no dossier
    assert card.total == pytest.approx(4.5 + 10.0 + 0.0 + 1.875)


def test_one_dossier_counts_where_it_was_received() -> None:
    at = datetime(2026, 11, 30, 16, 59, 0, tzinfo=UTC)  # 23:59 on 30 November in Hanoi
    truth = GroundTruth()
    truth.reached(_plan("A", at), 2)  # 1, 2 (received at 23:59:01), 4: open, due in a day
    november = official.scorecards(truth, official.span("2026-11"), at + timedelta(hours=2))
    december = official.scorecards(truth, official.span("2026-12"), at + timedelta(hours=2))
    card = november["000.00.20.H57"]
    assert (card.counts["1.4"].numerator, card.counts["1.4"].denominator) == (1, 1)
    assert (card.counts["3.3"].numerator, card.counts["3.3"].denominator) == (1, 1)
    assert (card.counts["2.1"].numerator, card.counts["2.1"].denominator) == (1, 1)
    # December: not received there, but still open, so judged in its 2.1 (and in time).
    december_card = december["000.00.20.H57"]
    assert december_card.counts["1.4"].denominator == 0
    assert (december_card.counts["2.1"].numerator, december_card.counts["2.1"].denominator) == (
        1,
        1,
    )
    # Past its due date and still open: overdue.
    late = official.scorecards(truth, official.span("2026-12"), at + timedelta(days=2))
    assert late["000.00.20.H57"].counts["2.1"].numerator == 0
    # Once finished (on 30 November, on time), it leaves December's 2.1 and counts in November's.
    truth.reached(truth.progress["A"][0], 3)
    december = official.scorecards(truth, official.span("2026-12"), at + timedelta(days=2))
    november = official.scorecards(truth, official.span("2026-11"), at + timedelta(days=2))
    assert december["000.00.20.H57"].counts["2.1"].denominator == 0
    assert november["000.00.20.H57"].counts["2.1"].numerator == 1


def _plan(code: str, start: datetime) -> DossierPlan:
    steps = (
        Step(1, start, 0.0),
        Step(2, start + timedelta(seconds=1), 1.0),
        Step(4, start + timedelta(seconds=2), 1.0),
        Step(9, start + timedelta(seconds=3), 1.0),
    )
    return DossierPlan(
        code=code,
        agency="000.00.20.H57",
        request=Request(2, PROCEDURES[0], 0),
        digitised=True,
        applicant="Nguyễn Văn An",
        phone="0900000000",
        steps=steps,
        supplement_rounds=0,
        finishes_before_due=True,
        due_at=start + timedelta(days=1),
    )
