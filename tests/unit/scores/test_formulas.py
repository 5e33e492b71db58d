"""The Decision 766 formulas against hand-computed tables (tests/support/scores_cases.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from schemas.dossier import Channel, DossierStatus
from services.scores.catalogue import Catalogue, Procedure, parse_catalogue
from services.scores.errors import ConfigurationError
from services.scores.formulas import (
    BY_ID,
    INDICATORS,
    RECEPTION_PARTS,
    Figure,
    Part,
    Reason,
    Sums,
    derive,
    figures,
    judge,
    points,
    sum_period,
    total,
)
from services.scores.periods import Period
from tests.support.scores_cases import (
    NOVEMBER,
    NOVEMBER_FIGURES,
    NOVEMBER_POINTS,
    NOW_AFTER,
    Case,
    at,
    facts,
    finished,
)

EMPTY = Catalogue()
NOVEMBER_2026 = Period.parse("2026-11")


def _figures(
    cases: tuple[Case, ...], period: Period, now: datetime, catalogue: Catalogue = EMPTY
) -> list[Figure]:
    derived = [derive(c.facts, portal_holds=c.portal_holds, catalogue=catalogue) for c in cases]
    return figures(sum_period(derived, period, now=now), catalogue_configured=catalogue.configured)


def test_november_figures_match_the_hand_computed_table() -> None:
    got = {f.id: f for f in _figures(NOVEMBER, NOVEMBER_2026, NOW_AFTER)}
    assert list(got) == [i.id for i in INDICATORS]
    for indicator, (num, den, rate, score) in NOVEMBER_FIGURES.items():
        figure = got[indicator]
        assert (figure.numerator, figure.denominator) == (num, den), indicator
        assert figure.rate == pytest.approx(rate), indicator
        assert figure.points == pytest.approx(score), indicator
    assert total(list(got.values())) == pytest.approx(NOVEMBER_POINTS)


@pytest.mark.parametrize(
    ("code", "period", "now", "counted", "reason"),
    [
        pytest.param("D1", "2026-11", NOW_AFTER, True, Reason.ON_TIME, id="finished-on-time"),
        pytest.param("D2", "2026-11", NOW_AFTER, False, Reason.LATE, id="finished-late"),
        pytest.param("D3", "2026-11", NOW_AFTER, False, Reason.LATE, id="carried-over-late"),
        pytest.param("D3", "2026-10", NOW_AFTER, True, Reason.IN_TIME, id="open-at-october-end"),
        pytest.param("D3", "2026-Q4", NOW_AFTER, False, Reason.LATE, id="quarter-sees-the-end"),
        pytest.param("D4", "2026-11", NOW_AFTER, None, None, id="ended-before-the-period"),
        pytest.param("D5", "2026-11", NOW_AFTER, True, Reason.IN_TIME, id="open-within-due"),
        pytest.param("D6", "2026-11", NOW_AFTER, False, Reason.OVERDUE, id="open-overdue"),
        pytest.param("D6", "2026-11", at(11, 20, 12), True, Reason.IN_TIME, id="current-month"),
        pytest.param("D6", "2026-12", NOW_AFTER, False, Reason.OVERDUE, id="still-open-december"),
        pytest.param("D7", "2026-11", NOW_AFTER, True, Reason.ON_TIME, id="one-supplement"),
        pytest.param("D8", "2026-11", NOW_AFTER, False, Reason.SUPPLEMENTS, id="two-supplements"),
        pytest.param("D9", "2026-11", NOW_AFTER, True, Reason.ON_TIME, id="legal-limit"),
        pytest.param("D10", "2026-11", NOW_AFTER, False, Reason.NO_DUE_DATE, id="no-due-date"),
        pytest.param("D11", "2026-11", NOW_AFTER, True, Reason.IN_TIME, id="pending-supplement"),
        pytest.param("D12", "2026-11", NOW_AFTER, None, None, id="submitted-only"),
        pytest.param("D13", "2026-11", NOW_AFTER, None, None, id="refused-at-intake"),
        pytest.param("D14", "2026-11", NOW_AFTER, True, Reason.IN_TIME, id="last-half-hour"),
        pytest.param("D15", "2026-11", NOW_AFTER, None, None, id="first-minute-after"),
        pytest.param("D15", "2026-12", NOW_AFTER, True, Reason.IN_TIME, id="december-current"),
    ],
)
def test_timeliness_table(
    code: str, period: str, now: datetime, counted: bool | None, reason: Reason | None
) -> None:
    case = next(c for c in NOVEMBER if c.code == code)
    derived = derive(case.facts, portal_holds=case.portal_holds, catalogue=EMPTY)
    verdict = judge("2.1", case.facts, derived, Period.parse(period), now=now, catalogue=EMPTY)
    assert (verdict.counted, verdict.reason) == (counted, reason)


def test_october_sees_d3_and_d4_only() -> None:
    # October (final): D4 ended 30 Oct on time; D3 open at 1 Nov, due 4 Nov: 2/2. Received in
    # October: D3, D4 -> 1.4 0/2 (neither synced).
    got = {f.id: f for f in _figures(NOVEMBER, Period.parse("2026-10"), NOW_AFTER)}
    assert (got["2.1"].numerator, got["2.1"].denominator) == (2, 2)
    assert (got["1.4"].numerator, got["1.4"].denominator, got["1.4"].points) == (0, 2, 0.0)


def test_quarter_and_year_add_the_months_up() -> None:
    # Q4, judged 15 Dec (current quarter, cutoff now): received in Q4 = the 10 of November, D3,
    # D4 and D15 = 13. 2.1: ended in Q4 - November's 7 plus D4 (ok) = 4/8; open now: D5 (due
    # 5 Dec, now 15 Dec: overdue), D6 overdue, D11 ok (judged at its supplement), D14 ok (due
    # 10 Dec... overdue at 15 Dec), D15 ok (due 20 Dec) -> D11 D15 = 2/5. Together 6/13.
    got = {f.id: f for f in _figures(NOVEMBER, Period.parse("2026-Q4"), NOW_AFTER)}
    assert (got["1.4"].numerator, got["1.4"].denominator) == (4, 13)
    assert (got["2.1"].numerator, got["2.1"].denominator) == (6, 13)
    year = {f.id: f for f in _figures(NOVEMBER, Period.parse("2026"), NOW_AFTER)}
    assert (year["2.1"].numerator, year["2.1"].denominator) == (6, 13)
    assert year["3.3"].numerator == 4  # D1 D7 D14 D15


def test_nothing_received_scores_zero_for_sync_and_nothing_elsewhere() -> None:
    got = {f.id: f for f in _figures((), NOVEMBER_2026, NOW_AFTER)}
    assert (got["1.4"].rate, got["1.4"].points) == (0.0, 0.0)
    assert (got["3.6"].rate, got["3.6"].points) == (0.0, 0.0)
    assert (got["2.1"].rate, got["2.1"].points) == (None, None)
    assert got["4.3"].points is None
    assert total(list(got.values())) == (0.0, 12.0)  # 1.4 and 3.6 only were scored


@pytest.mark.parametrize(
    ("indicator", "rate", "expected"),
    [
        pytest.param("1.4", 0.57, 6 * 0.57, id="sync-linear"),
        pytest.param("2.1", 1.0, 20.0, id="progress-full"),
        pytest.param("3.6", 0.25, 1.5, id="payment"),
        pytest.param("4.2", 0.9, 3.6, id="digitisation-linear"),
        pytest.param("4.3", 0.4, 1.0, id="reuse-half-of-80"),
        pytest.param("4.3", 0.8, 2.0, id="reuse-full-at-80"),
        pytest.param("4.3", 0.95, 2.0, id="reuse-capped"),
        pytest.param("4.4", 0.5, 2.0, id="repository"),
        pytest.param("4.5b", 0.5, 1.0, id="vneid"),
        pytest.param("3.3", 0.9, None, id="online-unresolved"),
        pytest.param("2.2", 3.0, None, id="mean-days-no-points"),
        pytest.param("signature", 1.0, None, id="signature-no-text"),
    ],
)
def test_points(indicator: str, rate: float, expected: float | None) -> None:
    assert points(BY_ID[indicator], rate) == pytest.approx(expected)


def test_online_rate_is_multiplied_by_the_sync_rate() -> None:
    # 6 of 10 online, 5 of 10 synced: 3.3 = 0.6 x 0.5 = 0.3 (the example, 57% vs 58%).
    parts = {Part.RECEIVED: 10, Part.ONLINE: 6, Part.SYNCED: 5}
    got = {f.id: f for f in figures(Sums(parts), catalogue_configured=False)}
    assert (got["3.3"].numerator, got["3.3"].denominator) == (6, 10)
    assert got["3.3"].rate == pytest.approx(0.3)


CATALOGUE = Catalogue(
    {
        "P-PAPER": Procedure(paper_result=True, fee_bearing=True),
        "P-FREE": Procedure(paper_result=False, fee_bearing=False),
    }
)


def test_catalogue_rules_for_paper_results_and_fees() -> None:
    # E1 paper, online, finished with a result file: 4.1 for, 3.3 online, 4.2 files + result.
    # E2 paper, online, finished without a result file: 4.1 against, 3.3 not online, 4.2 no.
    # E3 paper, open: not in 4.1; no fee list: fee-bearing by the catalogue, not paid.
    # E4 free procedure, online: 3.3 online; fee list never sent: not in 3.6.
    received, ended = at(11, 3, 9), at(11, 5, 9)
    cases = (
        Case("E1", finished(received, ended, procedure_code="P-PAPER", channel=Channel.ONLINE,
                            result_file=True, attachments=True, paid_online=2)),
        Case("E2", finished(received, ended, procedure_code="P-PAPER", channel=Channel.ONLINE,
                            attachments=True, fee_bearing=False)),
        Case("E3", facts(received_at=received, procedure_code="P-PAPER")),
        Case("E4", facts(received_at=received, procedure_code="P-FREE", channel=Channel.ONLINE)),
    )  # fmt: skip
    got = {f.id: f for f in _figures(cases, NOVEMBER_2026, NOW_AFTER, CATALOGUE)}
    assert (got["4.1"].numerator, got["4.1"].denominator, got["4.1"].points) == (1, 2, 3.0)
    assert (got["3.3"].numerator, got["3.3"].denominator) == (2, 4)
    assert (got["4.2"].numerator, got["4.2"].denominator) == (1, 4)
    # 3.6: E1 (paid 2) and E3 are fee-bearing; E2's fees are all 0; E4's procedure is free.
    assert (got["3.6"].numerator, got["3.6"].denominator) == (1, 2)
    e2 = cases[1]
    derived = derive(e2.facts, portal_holds=False, catalogue=CATALOGUE)
    why = judge("3.3", e2.facts, derived, NOVEMBER_2026, now=NOW_AFTER, catalogue=CATALOGUE)
    assert why.reason is Reason.ONLINE_NO_RESULT
    why = judge("4.2", e2.facts, derived, NOVEMBER_2026, now=NOW_AFTER, catalogue=CATALOGUE)
    assert why.reason is Reason.ATTACHED_NO_RESULT


def test_catalogue_legal_limit_applies_when_the_facts_have_none() -> None:
    catalogue = Catalogue({"P-10": Procedure(legal_limit_days=10)})
    late = finished(at(11, 1, 9), at(11, 12, 9), procedure_code="P-10")  # 11 days
    derived = derive(late, portal_holds=False, catalogue=catalogue)
    verdict = judge("2.1", late, derived, NOVEMBER_2026, now=NOW_AFTER, catalogue=catalogue)
    assert verdict.reason is Reason.LATE


def test_an_end_before_the_reception_stays_in_the_reception_period() -> None:
    odd = finished(at(11, 10, 9), at(10, 30, 9), due_at=at(11, 12, 17))
    derived = derive(odd, portal_holds=False, catalogue=EMPTY)
    verdict = judge("2.1", odd, derived, NOVEMBER_2026, now=NOW_AFTER, catalogue=EMPTY)
    assert verdict.reason is Reason.ON_TIME


def test_withdrawn_status_counts_as_received() -> None:
    withdrawn = facts(status=DossierStatus.WITHDRAWN, received_at=at(11, 3, 9))
    derived = derive(withdrawn, portal_holds=False, catalogue=EMPTY)
    assert derived.received
    assert derived.parts[Part.RECEIVED] == 1


def test_reception_parts_lead_the_part_order() -> None:
    # The store writes a dossier's parts as a tuple by position: the table's counter columns,
    # `derive`'s tuple and `RECEPTION_PARTS` must list them alike.
    others = (Part.ENDED, Part.ENDED_ON_TIME, Part.DOCUMENTS, Part.SIGNED)
    assert tuple(p for p in Part if p not in others) == RECEPTION_PARTS
    assert tuple(Part)[: len(RECEPTION_PARTS)] == RECEPTION_PARTS
    paid = facts(received_at=at(11, 3, 9), fee_bearing=True, paid_online=2, vneid_verified=True)
    parts = derive(paid, portal_holds=True, catalogue=EMPTY).parts
    on = {p for p, v in parts.items() if v}
    assert on == {Part.RECEIVED, Part.SYNCED, Part.FEE_DUE, Part.PAID, Part.VNEID}


def test_catalogue_csv() -> None:
    text = "\ufeffprocedure_code,paper_result,fee_bearing,legal_limit_days\nP1,1,,5\nP2,no,yes,\n"
    catalogue = parse_catalogue(text)
    assert catalogue.paper_result("P1")
    assert not catalogue.paper_result("P2")
    assert catalogue.fee_bearing("P1") is None
    assert catalogue.fee_bearing("P2") is True
    assert catalogue.legal_limit_days("P1") == 5
    assert catalogue.fingerprint() != Catalogue().fingerprint()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("code,paper_result\nP1,1\n", "procedure_code column", id="no-column"),
        pytest.param("procedure_code,paper_result\nP1,maybe\n", "line 2", id="bad-flag"),
        pytest.param("procedure_code,legal_limit_days\nP1,ten\n", "not a number", id="bad-days"),
        pytest.param("procedure_code,paper_result\n,1\n", "empty", id="empty-code"),
    ],
)
def test_malformed_catalogue(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_catalogue(text)
