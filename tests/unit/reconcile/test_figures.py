"""The portal's figures read from its reporting answers (shapes as DOMAIN.md §2 and the
simulator's README give them), percentages turned into fractions, rows missing left out."""

from __future__ import annotations

from typing import Any

import pytest

from services.reconcile.figures import Figure, portal_figures, side_by_side
from services.reconcile.reporting import question
from services.scores.periods import Period


def _metrics(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"overview": {"metrics": list(rows)}, "evaluation": []}


ANSWERS: dict[str, Any] = {
    "transparency": _metrics(
        {"code": "PUBLISH_ON_TIME", "numerator": None, "denominator": None, "ratio": None,
         "score": None, "maxScore": 6},
        {"code": "DOSSIER_SYNC", "numerator": 97, "denominator": 100, "ratio": 97.0,
         "score": 5.82, "maxScore": 6},
    ),
    "dvc-progress-tree": {"parent": {"totalReceived": 80, "totalOnTime": 60, "ratio": 75.0,
                                     "totalScore": 15.0, "avgProcessingDays": 2.5}},
    "provide-online-tree": {"parent": {"channelOnlineSum": 40, "channelTotalSum": 100,
                                       "ratio": 38.8, "totalScore": None}},
    "formality-online-payment-tree": {"parent": {"totalDossierOnlinePaymentSuccess": 5,
                                                 "totalDossierFinancialObligation": 10,
                                                 "ratio": 50.0, "totalScore": 3.0}},
    "dossier-digitized": _metrics(
        {"code": "REUSED_DIGITIZED_DATA", "numerator": 30, "denominator": 100, "ratio": 30.0,
         "score": 0.75, "maxScore": 2},
    ),
}  # fmt: skip


def test_each_indicator_from_its_endpoint() -> None:
    got = portal_figures(ANSWERS)
    online = got.pop("3.3")
    assert (online.numerator, online.denominator, online.points) == (40, 100, None)
    assert online.rate == pytest.approx(0.388)
    assert got == {
        "1.4": Figure(97, 100, 0.97, 5.82),
        "2.1": Figure(60, 80, 0.75, 15.0),
        "2.2": Figure(rate=2.5),
        "3.6": Figure(5, 10, 0.5, 3.0),
        "4.3": Figure(30, 100, 0.3, 0.75),
    }


def test_answers_without_figures_give_nothing() -> None:
    assert portal_figures({"transparency": None, "dvc-progress-tree": {"parent": []}}) == {}


def test_side_by_side_in_govsync_order_with_differences() -> None:
    ours = {"1.4": Figure(100, 100, 1.0, 6.0), "2.1": Figure(60, 80, 0.75, 15.0)}
    sides = side_by_side(ours, portal_figures(ANSWERS))
    assert [s.indicator for s in sides][:2] == ["1.4", "2.1"]
    assert sides[0].points_difference == pytest.approx(-0.18)
    assert sides[1].points_difference == 0


@pytest.mark.parametrize(
    ("period", "extra"),
    [
        pytest.param("2026-11", {"month": 11}, id="month"),
        pytest.param("2026-Q4", {"quarter": 4}, id="quarter"),
        pytest.param("2026", {}, id="year"),
    ],
)
def test_the_question(period: str, extra: dict[str, int]) -> None:
    p = Period.parse(period)
    assert (
        question("dep", p)
        == {
            "rootDepartmentId": "dep",
            "timeType": str(p.kind),
            "year": 2026,
            "currentPage": 1,
            "pageSize": 200,
        }
        | extra
    )
