"""The agency crosswalk: old codes rolled into the new agency for the periods after the change."""

from __future__ import annotations

import pytest

from services.scores.crosswalk import parse_crosswalk
from services.scores.errors import ConfigurationError
from services.scores.periods import Period

OLD_A, OLD_B, NEW, LATER = "000.00.10.H29", "000.00.11.H29", "000.00.01.H44", "000.00.02.H44"
TEXT = f"""old_code,new_code,valid_from,valid_to
{OLD_A},{NEW},2025-07-01,
{OLD_B},{NEW},2025-07-01,2025-12-31
{NEW},{LATER},2026-04-01
"""


@pytest.mark.parametrize(
    ("code", "period", "scored_as"),
    [
        pytest.param(OLD_A, "2025-06", OLD_A, id="before-the-change"),
        pytest.param(OLD_A, "2025-07", NEW, id="month-of-the-change"),
        pytest.param(OLD_A, "2025-Q3", NEW, id="quarter-of-the-change"),
        pytest.param(OLD_A, "2025", NEW, id="year-of-the-change"),
        pytest.param(OLD_B, "2025-12", NEW, id="last-month-valid"),
        pytest.param(OLD_B, "2026-01", OLD_B, id="after-valid-to"),
        pytest.param(OLD_A, "2026-Q2", LATER, id="chain-followed"),
        pytest.param(NEW, "2026-03", NEW, id="new-code-itself"),
        pytest.param("000.00.99.H01", "2026-03", "000.00.99.H01", id="not-in-crosswalk"),
    ],
)
def test_scored_as(code: str, period: str, scored_as: str) -> None:
    assert parse_crosswalk(TEXT).scored_as(code, Period.parse(period)) == scored_as


def test_codes_for_an_agency() -> None:
    crosswalk = parse_crosswalk(TEXT)
    assert crosswalk.codes_for(NEW, Period.parse("2025-11")) == [NEW, OLD_A, OLD_B]
    assert crosswalk.codes_for(NEW, Period.parse("2026-02")) == [NEW, OLD_A]
    assert crosswalk.codes_for(NEW, Period.parse("2026-05")) == []  # rolled into LATER
    assert crosswalk.codes_for(OLD_A, Period.parse("2025-05")) == [OLD_A]
    assert crosswalk.group([OLD_A, NEW, "X"], Period.parse("2025-11")) == {
        NEW: [NEW, OLD_A],
        "X": ["X"],
    }


def test_unknown_codes() -> None:
    crosswalk = parse_crosswalk(TEXT, current=["000.00.03.H44"])
    unknown = crosswalk.unknown([OLD_A, NEW, "000.00.03.H44", "000.00.04.H44", "H44-bad", ""])
    assert [(u.code, u.regular) for u in unknown] == [("000.00.04.H44", True), ("H44-bad", False)]


def test_no_header_and_comments() -> None:
    crosswalk = parse_crosswalk(f"# re-coding of July 2025\n{OLD_A},{NEW},2025-07-01\n")
    assert crosswalk.scored_as(OLD_A, Period.parse("2025-08")) == NEW


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a,b\n", "expected old_code", id="too-few"),
        pytest.param("a,b,2025-13-01\n", "not a date", id="bad-date"),
        pytest.param("a,a,2025-07-01\n", "itself", id="self"),
        pytest.param("a,b,2025-07-01,2025-06-01\n", "before", id="reversed"),
        pytest.param(",b,2025-07-01\n", "empty code", id="empty"),
    ],
)
def test_malformed_crosswalk(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_crosswalk(text)
