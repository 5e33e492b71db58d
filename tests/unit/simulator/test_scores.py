"""The simulated portal's own scoring, read from the portal's items (DOMAIN.md §2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.simulator.scores import (
    Period,
    held,
    on_time,
    online_rate,
    points,
    processing_days,
    sync_denominator,
    tally,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
JULY = Period.of("month", 2025, 7)


def at(day: int, hour: int = 9, month: int = 7) -> str:
    return f"2025{month:02d}{day:02d}{hour:02d}0000"


def step(day: int, status: int, hour: int = 9, month: int = 7) -> dict[str, Any]:
    return {"ThoiDiemXuLy": at(day, hour, month), "TrangThai": status}


@pytest.mark.parametrize(
    ("kind", "number", "start", "end"),
    [
        pytest.param("month", 2, (2025, 2, 1), (2025, 3, 1), id="february"),
        pytest.param("month", 12, (2025, 12, 1), (2026, 1, 1), id="december"),
        pytest.param("quarter", 3, (2025, 7, 1), (2025, 10, 1), id="q3"),
        pytest.param("year", None, (2025, 1, 1), (2026, 1, 1), id="year"),
    ],
)
def test_periods_are_vietnam_calendar_days(
    kind: str, number: int | None, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    period = Period.of(kind, 2025, number)
    assert (period.start, period.end) == (datetime(*start, tzinfo=VN), datetime(*end, tzinfo=VN))
    # 31 July 23:30 in Hanoi is 16:30 UTC: still July.
    assert Period.of("month", 2025, 7).contains(datetime(2025, 7, 31, 23, 30, tzinfo=VN))


@pytest.mark.parametrize(
    ("kind", "number"),
    [
        pytest.param("week", 1, id="unknown-type"),
        pytest.param("month", 13, id="month-13"),
        pytest.param("quarter", None, id="quarter-missing"),
    ],
)
def test_periods_the_api_refuses(kind: str, number: int | None) -> None:
    with pytest.raises(ValueError, match=r"."):
        Period.of(kind, 2025, number)


def test_reading_a_held_dossier() -> None:
    header = {
        "KenhThucHien": 2,
        "NgayHenTra": at(20),
        "DanhSachLePhi": [{"Gia": 0}, {"Gia": "15000"}],
        "DuocThanhToanTrucTuyen": 2,
        "TaiLieuNop": [
            {"IsDeleted": True, "DuocSoHoa": 1, "DuocLayTuKhoDMQG": 1},
            {"IsDeleted": False, "DuocSoHoa": 0},
        ],
        "DanhSachGiayToKetQua": [{"DuongDanTepTinKetQua": "https://kq/1.pdf"}],
    }
    steps = [step(3, 2), step(5, 5), step(7, 4), step(12, 9)]
    d = held("A", header, 9, steps)
    # No NgayTiepNhan: the first step in a received status puts it in a period.
    assert d.received_at == datetime(2025, 7, 3, 9, tzinfo=VN)
    assert (d.finished_at, d.ended_at) == (datetime(2025, 7, 12, 9, tzinfo=VN),) * 2
    assert (d.online, d.fee_bearing, d.paid_online) == (True, True, True)
    # The deleted attachment's flags do not count.
    assert (d.attachments, d.digitised, d.from_repository) == (True, False, False)
    assert (d.result_file, d.supplements, d.supplement_seconds) == (True, 1, 2 * 86400)


def _dossier(**header: Any) -> dict[str, Any]:
    return {"NgayTiepNhan": at(1), "NgayHenTra": at(10)} | header


@pytest.mark.parametrize(
    ("header", "steps", "status", "expected"),
    [
        pytest.param(_dossier(NgayKetThucXuLy=at(9)), [], 9, True, id="finished-before-due"),
        pytest.param(_dossier(NgayKetThucXuLy=at(10, 10)), [], 9, False, id="an-hour-late"),
        pytest.param(
            _dossier(NgayKetThucXuLy=at(12)), [step(2, 5), step(5, 4)], 9, True,
            id="one-supplement-stops-the-clock",
        ),
        pytest.param(
            _dossier(NgayKetThucXuLy=at(4)), [step(2, 5), step(3, 5)], 9, False,
            id="two-supplements-overdue",
        ),
        pytest.param(_dossier(NgayHenTra=at(5, month=8)), [], 4, True, id="open-within-due"),
        pytest.param(_dossier(), [], 4, False, id="open-past-due-at-period-end"),
        pytest.param(
            _dossier(NgayHenTra=at(5, month=8), NgayKetThucXuLy=at(2, month=8)), [], 9, True,
            id="finished-after-the-period-judged-at-its-end",
        ),
        pytest.param(
            _dossier(NgayHenTra=None, MaTTHC="P", NgayKetThucXuLy=at(9)), [], 9, False,
            id="legal-limit-of-5-days",
        ),
        pytest.param(
            _dossier(NgayHenTra=None, NgayKetThucXuLy=at(30)), [], 9, True,
            id="no-due-date-no-limit",
        ),
    ],
)  # fmt: skip
def test_on_time(
    header: dict[str, Any], steps: list[dict[str, Any]], status: int, expected: bool
) -> None:
    header = {k: v for k, v in header.items() if v is not None}
    assert on_time(held("A", header, status, steps), JULY, {"P": 5}) is expected


def test_tally_counts_each_population_by_its_own_date() -> None:
    dossiers = [
        # Received in July, online, finished on time with a result file, paid online.
        held("A", _dossier(KenhThucHien=2, NgayKetThucXuLy=at(5), DanhSachLePhi=[{"Gia": 10}],
                           DuocThanhToanTrucTuyen=1,
                           DanhSachGiayToKetQua=[{"DuongDanTepTinKetQua": "u"}]), 9, []),
        # Received in July in person, still open and late at the end of July.
        held("A", _dossier(KenhThucHien=1, DanhSachLePhi=[{"Gia": 0}]), 4, []),
        # Received in June, finished on 2 July: handled in July (2.1), not received in it.
        held("A", {"NgayTiepNhan": at(20, month=6), "NgayHenTra": at(10),
                   "NgayKetThucXuLy": at(2)}, 9, []),
        # Received in June and finished in June: not July's at all; last year's nothing.
        held("A", {"NgayTiepNhan": at(2, month=6), "NgayKetThucXuLy": at(3, month=6)}, 9, []),
        # Submitted only (1) and refused at intake (3, no reception): neither is received.
        held("A", {"NgayNopHoSo": at(3)}, 1, []),
        held("A", {"NgayTuChoi": at(3)}, 3, []),
    ]  # fmt: skip
    t = tally(dossiers, JULY, delta=3)
    assert (t.received, t.online, t.postal, t.fee_bearing, t.paid_online) == (2, 1, 0, 1, 1)
    assert (t.finished, t.result_file) == (1, 1)
    assert (t.handled, t.on_time, t.completed) == (3, 2, 2)
    assert (t.reported_received, t.reported_handled) == (5, 6)
    assert processing_days(t) == 4.0
    assert sync_denominator(t, JULY) == 5
    assert online_rate(t, JULY) == pytest.approx(0.5 * 2 / 5)


def test_an_empty_month_takes_a_twelfth_of_last_year_for_1_4() -> None:
    last_year = [
        held("A", {"NgayTiepNhan": f"2024{m:02d}100900{'00'}"}, 9, []) for m in range(1, 13)
    ] * 2
    t = tally(last_year, JULY)
    assert (t.received, t.last_year_received) == (0, 24)
    assert sync_denominator(t, JULY) == 2
    assert sync_denominator(t, Period.of("quarter", 2025, 3)) == 6


@pytest.mark.parametrize(
    ("maximum", "rate", "full_at", "expected"),
    [
        pytest.param(6, 0.5, 1.0, 3.0, id="linear"),
        pytest.param(2, 0.7, 0.8, 1.75, id="full-marks-at-80"),
        pytest.param(2, 0.9, 0.8, 2.0, id="capped"),
        pytest.param(20, 0.78385, 1.0, 15.68, id="half-up"),
        pytest.param(4, None, 1.0, None, id="no-data"),
    ],
)
def test_points(maximum: float, rate: float | None, full_at: float, expected: float | None) -> None:
    assert points(maximum, rate, full_at=full_at) == expected


def test_a_received_date_in_the_hour_before_midnight_stays_in_its_vietnam_day() -> None:
    d = held("A", {"NgayTiepNhan": "20250731233000"}, 2, [])
    assert d.received_at == datetime(2025, 7, 31, 16, 30, tzinfo=ZoneInfo("UTC"))
    assert tally([d], JULY).received == 1
    assert tally([d], Period.of("month", 2025, 8)).received == 0
    assert d.received_at + timedelta(hours=1) >= JULY.end
