"""The simulated portal's reporting API over HTTP: its figures against a count of what was sent.

Dossiers go in through the portal's own `DongBoHoSoMC`; the expected figures come from the
items sent, counted here with the test's own plain loops (DOMAIN.md §2), never with the
simulator's code or govsync's rules.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from services.simulator.departments import Department, Departments
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator

A1, A2 = "000.00.10.H29", "000.00.22.H29"
DEPARTMENT_A1 = Department("6d0c7a52-0000-4000-8000-000000000001", "H29.01", "Sở Một")
EVALUATION = "/portal/api/v1/reporting/evaluation"

Item = dict[str, Any]


def r2(value: float) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def dossiers(seed: int = 9, count: int = 80) -> list[tuple[str, Item]]:
    """(agency, DongBoHoSoMC item): received in July or August 2025, all facts varied."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        month, day = rng.choice((7, 8)), rng.randint(1, 28)
        status = rng.choice((2, 4, 9, 10))
        item: Item = {
            "MaHoSo": f"000.00.10.H29-250701-{n:04d}",
            "TrangThaiHoSo": status,
            "NgayTiepNhan": f"2025{month:02d}{day:02d}080000",
            # Due 10 days after reception (at most 38 days: never past 7 September).
            "NgayHenTra": f"2025{month + (day + 10 > 31):02d}{(day + 10 - 1) % 31 + 1:02d}170000",
            "KenhThucHien": rng.choice((1, 2, 2, 3)),
            "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí", "Gia": rng.choice((0, 50000))}],
            "DuocThanhToanTrucTuyen": rng.choice((0, 1, 2)),
            "HoSoCoThanhPhanSoHoa": rng.choice((0, 1)),
            "TaiKhoanDuocXacThucVoiVNeID": rng.choice((0, 1)),
            "TaiLieuNop": [
                {
                    "TepDinhKemId": str(n),
                    "IsDeleted": rng.random() < 0.2,
                    "DuocSoHoa": rng.choice((0, 1)),
                    "DuocLayTuKhoDMQG": rng.choice((0, 1)),
                }
            ]
            if rng.random() < 0.7
            else [],
        }
        if status in (9, 10):
            # Finished the same day it was received, or 15 days later (after the due date).
            late = rng.random() < 0.3
            item["NgayKetThucXuLy"] = f"2025{month:02d}{day:02d}160000" if not late else None
            if late:
                finish_month, finish_day = (month, day + 15) if day + 15 <= 31 else (month + 1, 3)
                item["NgayKetThucXuLy"] = f"2025{finish_month:02d}{finish_day:02d}160000"
            if rng.random() < 0.6:
                item["DanhSachGiayToKetQua"] = [{"DuongDanTepTinKetQua": f"https://kq/{n}.pdf"}]
        out.append((rng.choice((A1, A2)), item))
    return out


def in_july(item: Item) -> bool:
    return str(item["NgayTiepNhan"]).startswith("202507")


def expected_digitised(items: list[Item]) -> dict[str, tuple[int, int]]:
    """4.1-4.5b numerators and denominators, counted the plain way."""
    received = [i for i in items if in_july(i)]
    live = [[a for a in i["TaiLieuNop"] if not a["IsDeleted"]] for i in received]
    finished = [i for i in received if i["TrangThaiHoSo"] in (9, 10)]
    # Where results are listed, one must link its file.
    results = [
        not i.get("DanhSachGiayToKetQua")
        or any(r.get("DuongDanTepTinKetQua") for r in i["DanhSachGiayToKetQua"])
        for i in received
    ]
    return {
        "ORIGINAL_RESULT_AVAILABLE": (
            sum(1 for i in finished if i.get("DanhSachGiayToKetQua")),
            len(finished),
        ),
        "SO_HOA_GIAY_TO_GIAI_QUYET": (
            sum(1 for files, has in zip(live, results, strict=True) if files and has),
            len(received),
        ),
        "REUSED_DIGITIZED_DATA": (
            sum(
                1
                for i, files in zip(received, live, strict=True)
                if i["HoSoCoThanhPhanSoHoa"] == 1 or any(a["DuocSoHoa"] == 1 for a in files)
            ),
            len(received),
        ),
        "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (
            sum(1 for files in live if any(a["DuocLayTuKhoDMQG"] == 1 for a in files)),
            len(received),
        ),
        "CITIZEN_DATA_CONNECTED_DOSSIER": (
            sum(1 for i in received if i["TaiKhoanDuocXacThucVoiVNeID"] == 1),
            len(received),
        ),
    }


async def _send(client: httpx.AsyncClient, sent: list[tuple[str, Item]]) -> None:
    login = await client.post(
        "/portal/api/auth/login",
        json={"username": "govsync", "password": "secret"},
        headers={"dstcode": "DVCQG"},
    )
    session = login.json()["session"]
    for agency, item in sent:
        data = [{k: v for k, v in item.items() if v is not None}]
        body = {"session": session, "madonvi": agency, "service": "DongBoHoSoMC",
                "isUpdating": "False", "data": data}  # fmt: skip
        answer = await client.post("/portal/api/integration", json=body)
        assert answer.json()["error_code"] == 0


async def _ask(client: httpx.AsyncClient, endpoint: str, **question: object) -> dict[str, Any]:
    body = {"timeType": "month", "year": 2025, "month": 7, "currentPage": 1, "pageSize": 200}
    answer = await client.post(f"{EVALUATION}/{endpoint}", json=body | question)
    assert answer.status_code == 201, answer.text
    envelope = answer.json()
    assert (envelope["code"], envelope["message"]) == ("OK", "OK")
    data: dict[str, Any] = envelope["data"]
    return data


def _metrics(row: dict[str, Any]) -> dict[str, tuple[Any, Any, Any, Any]]:
    return {
        m["code"]: (m["numerator"], m["denominator"], m["ratio"], m["score"])
        for m in row["metrics"]
    }


MAXIMA: dict[str, tuple[float, float]] = {
    "ORIGINAL_RESULT_AVAILABLE": (6, 1.0),
    "SO_HOA_GIAY_TO_GIAI_QUYET": (4, 1.0),
    "REUSED_DIGITIZED_DATA": (2, 0.8),
    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (4, 1.0),
    "CITIZEN_DATA_CONNECTED_DOSSIER": (2, 1.0),
}


def _row(n: int, d: int, maximum: float, full_at: float = 1.0) -> tuple[Any, Any, Any, Any]:
    if not d:
        return (n, d, None, None)
    return (n, d, r2(100 * n / d), r2(min(maximum, maximum * (n / d) / full_at)))


@pytest.fixture
def sent() -> list[tuple[str, Item]]:
    return dossiers()


async def test_every_endpoint_reports_what_the_portal_holds(sent: list[tuple[str, Item]]) -> None:
    sim = Simulator(departments=Departments(configured={A1: DEPARTMENT_A1}))
    by_agency = {a: [i for b, i in sent if b == a] for a in (A1, A2)}
    every = [i for _, i in sent]
    async with (
        running_simulator(sim) as running,
        httpx.AsyncClient(base_url=running.base_url) as client,
    ):
        await _send(client, sent)
        units = (await client.get("/_sim/portal/departments")).json()
        assert units["children"][A1]["id"] == DEPARTMENT_A1.id

        # 4.x: the root, then each department, by its own count of the items.
        data = await _ask(client, "dossier-digitized")
        expect: Callable[[list[Item]], dict[str, tuple[Any, Any, Any, Any]]] = lambda items: {  # noqa: E731
            code: _row(n, d, *MAXIMA[code]) for code, (n, d) in expected_digitised(items).items()
        }
        got = _metrics(data["overview"])
        assert {k: got[k] for k in MAXIMA} == expect(every)
        assert got["ELECTRONIC_CERTIFIED_COPY"] == (None, None, None, None)
        rows = {row["departmentId"]: row for row in data["evaluation"]}
        for agency, department_id in ((A1, DEPARTMENT_A1.id), (A2, units["children"][A2]["id"])):
            got = _metrics(rows[department_id])
            assert {k: got[k] for k in MAXIMA} == expect(by_agency[agency]), agency
        assert data["pagination"] == {
            "total": 2,
            "currentPage": 1,
            "pageSize": 200,
            "totalPages": 1,
        }

        # 1.4: every dossier the portal holds; the count is its own, so the rate is 100 %.
        july = [i for i in every if in_july(i)]
        data = await _ask(client, "transparency")
        assert _metrics(data["overview"])["DOSSIER_SYNC"] == _row(len(july), len(july), 6)

        # 3.3 channel sums and 3.6 over the fee-bearing ones.
        tree = await _ask(client, "provide-online-tree", timeType="quarter", quarter=3)
        q3 = every  # all were received in July or August
        channels = [i["KenhThucHien"] for i in q3]
        assert (
            tree["parent"]["channelOnlineSum"],
            tree["parent"]["channelDirectSum"],
            tree["parent"]["channelPostalSum"],
            tree["parent"]["channelTotalSum"],
        ) == (channels.count(2), channels.count(1), channels.count(3), len(q3))
        assert tree["parent"]["ratio"] == r2(100 * channels.count(2) / len(q3))
        pay = await _ask(client, "formality-online-payment-tree")
        fee = [i for i in july if i["DanhSachLePhi"][0]["Gia"] > 0]
        paid = [i for i in fee if i["DuocThanhToanTrucTuyen"] in (1, 2)]
        assert (
            pay["parent"]["totalDossierOnlinePaymentSuccess"],
            pay["parent"]["totalDossierFinancialObligation"],
            pay["parent"]["totalScore"],
        ) == (len(paid), len(fee), r2(6 * len(paid) / len(fee)))

        # 2.1: every one received in July (none ended before it). One finished in July is on
        # time if it finished by its due date; one still open at the end of July (finished in
        # August or not at all) if its due date is after the end of July.
        progress = await _ask(client, "dvc-progress-tree")

        def timely(i: Item) -> bool:
            finished = str(i.get("NgayKetThucXuLy") or "")
            if finished.startswith("202507"):
                return finished <= str(i["NgayHenTra"])
            return str(i["NgayHenTra"]) >= "20250801000000"

        handled = [
            i for i in july if not str(i.get("NgayKetThucXuLy") or "9").startswith("2025060")
        ]
        on_time = [i for i in handled if timely(i)]
        parent = progress["parent"]
        assert (parent["totalReceived"], parent["totalOnTime"], parent["totalOverdue"]) == (
            len(handled),
            len(on_time),
            len(handled) - len(on_time),
        )
        assert parent["totalScore"] == r2(20 * len(on_time) / len(handled))
        assert [m["month"] for m in progress["monthlyChart"]] == [f"{m:02d}" for m in range(1, 13)]
        assert progress["monthlyChart"][6]["onTimePct"] == parent["ratio"]
        assert progress["monthlyChart"][7] == {"month": "08", "onTimePct": 0.0, "overduePct": 0.0}

        # One department alone; an unknown one is refused.
        alone = await _ask(client, "dvc-progress-tree", rootDepartmentId=DEPARTMENT_A1.id)
        assert alone["parent"]["departmentCode"] == "H29.01"
        assert alone["children"] == []
        refused = await client.post(
            f"{EVALUATION}/transparency",
            json={"timeType": "month", "year": 2025, "month": 7, "rootDepartmentId": "nope"},
        )
        assert (refused.status_code, refused.json()["code"]) == (400, "BAD_REQUEST")
        bad = await client.post(f"{EVALUATION}/transparency", json={"timeType": "week"})
        assert bad.status_code == 400


async def test_faults_change_what_the_portal_reports(sent: list[tuple[str, Item]]) -> None:
    sim = Simulator()
    async with (
        running_simulator(sim) as running,
        httpx.AsyncClient(base_url=running.base_url) as client,
    ):
        await _send(client, sent)
        july = [i for _, i in sent if in_july(i)]
        before = await _ask(client, "dvc-progress-tree")

        # A different received count: each department's count moves by the delta.
        await client.post("/_sim/faults", json={"received_count_delta": 4})
        data = await _ask(client, "transparency")
        rows = [_metrics(row)["DOSSIER_SYNC"] for row in data["evaluation"]]
        assert [(n, d) for n, d, _, _ in rows] == [(n, n + 4) for n, _, _, _ in rows]
        numerator, denominator, _, score = _metrics(data["overview"])["DOSSIER_SYNC"]
        assert (numerator, denominator) == (len(july), len(july) + 4 * len(rows))
        assert score == r2(6 * len(july) / (len(july) + 4 * len(rows)))
        after = await _ask(client, "dvc-progress-tree")
        assert after["parent"]["totalReceived"] == before["parent"]["totalReceived"] + 4 * 2
        assert after["parent"]["totalOnTime"] == before["parent"]["totalOnTime"]

        # Lost dossiers are no longer held, so no longer counted.
        await client.post("/_sim/faults", json={"received_count_delta": 0, "lose_share": 0.25})
        lost = set((await client.get("/_sim/portal/damaged")).json()["lost"])
        assert lost
        held = [i for i in july if i["MaHoSo"] not in lost]
        data = await _ask(client, "transparency")
        assert _metrics(data["overview"])["DOSSIER_SYNC"][:2] == (len(held), len(held))
