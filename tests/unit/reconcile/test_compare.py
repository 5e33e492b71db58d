"""One dossier against the portal's answer: the verdict table of `compare.py`, case by case."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from services.reconcile.compare import Known, State, compare

VN = timezone(timedelta(hours=7))
RECEIVED = datetime(2026, 11, 3, 9, 30, tzinfo=VN)
DUE = datetime(2026, 11, 10, 17, 0, tzinfo=VN)
OURS = Known(
    code="D1",
    agency="000.00.10.H29",
    revision=3,
    ack_revision=3,
    status=4,
    dates={"received_at": RECEIVED, "due_at": DUE, "finished_at": None, "returned_at": None},
)


@pytest.mark.parametrize(
    ("rows", "state", "differences"),
    [
        pytest.param([], State.MISSING, (), id="no-row-missing"),
        pytest.param([{"MaHoSo": "D1"}], State.MATCHED, (), id="bare-row-held"),
        pytest.param(
            [{"MaHoSo": "D1", "TrangThaiHoSo": 4, "NgayTiepNhan": "20261103093000",
              "NgayHenTra": "20261110170000"}],
            State.MATCHED, (), id="same-status-and-dates",
        ),
        pytest.param(
            [{"mahoso": "D1", "trangthaihoso": "4", "ngaytiepnhan": "20261103093000"}],
            State.MATCHED, (), id="keys-in-any-case-status-as-text",
        ),
        pytest.param(
            [{"MaHoSo": "D1", "TrangThaiHoSo": 2}],
            State.DIFFERENT, ("TrangThaiHoSo",), id="older-status",
        ),
        pytest.param(
            [{"MaHoSo": "D1", "TrangThaiHoSo": 4, "NgayHenTra": "20261111170000"}],
            State.DIFFERENT, ("NgayHenTra",), id="other-due-date",
        ),
        pytest.param(
            [{"MaHoSo": "D1", "TrangThaiHoSo": 9, "NgayKetThucXuLy": "20261105100000"}],
            State.DIFFERENT, ("TrangThaiHoSo", "NgayKetThucXuLy"),
            id="finished-on-portal-not-in-govsync",
        ),
        pytest.param(
            [{"MaHoSo": "D1", "NgayTiepNhan": "03/11/2026"}],
            State.DIFFERENT, ("NgayTiepNhan",), id="unreadable-date-differs",
        ),
        pytest.param(
            [{"MaHoSo": "D1", "TrangThaiHoSo": "bốn", "NgayTra": ""}],
            State.MATCHED, (), id="status-not-a-number-and-empty-date-not-compared",
        ),
        pytest.param(
            [{"MaHoSo": "D1", "NgayTiepNhan": "20261103093059"}],
            State.DIFFERENT, ("NgayTiepNhan",), id="a-second-apart",
        ),
    ],
)  # fmt: skip
def test_verdicts(rows: list[dict[str, Any]], state: State, differences: tuple[str, ...]) -> None:
    verdict = compare(OURS, rows)
    assert verdict.state is state
    assert verdict.differences == differences


def test_the_portal_status_is_kept_for_the_page() -> None:
    assert compare(OURS, [{"TrangThaiHoSo": "2"}]).portal_status == 2
