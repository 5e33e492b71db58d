"""The simulator's damage faults: dossiers the portal loses, or keeps at an older status."""

from __future__ import annotations

from typing import Any

from services.simulator.faults import Faults
from services.simulator.simulator import Simulator

CODES = [f"000.00.10.H29-{n:05d}" for n in range(400)]


def _session(sim: Simulator) -> str:
    answer = sim.portal_login({"username": "govsync", "password": "secret"}, "DVCQG")
    session: str = answer["session"]
    return session


def _sync(
    sim: Simulator, items: list[dict[str, Any]], revision: int, *, updating: bool, key: str | None
) -> int:
    envelope = {
        "session": _session(sim),
        "madonvi": "000.00.10.H29",
        "service": "DongBoHoSoMC",
        "isUpdating": "True" if updating else "False",
        "data": items,
    }
    answer = sim.portal_integration(envelope, [revision] * len(items), key)
    return int(answer["error_code"])


def _step(sim: Simulator, code: str, status: int, revision: int) -> int:
    envelope = {
        "session": _session(sim),
        "madonvi": "000.00.10.H29",
        "service": "CapNhatTienDoHoSoMC",
        "isUpdating": "False",
        "data": [{"MaHoSo": code, "ThoiDiemXuLy": "20250701090000", "TrangThai": status}],
    }
    return int(sim.portal_integration(envelope, [revision])["error_code"])


def _lookup(sim: Simulator, code: str) -> list[dict[str, Any]]:
    answer = sim.portal_share({"session": _session(sim), "service": "TraCuuHoSo", "mahoso": code})
    rows: list[dict[str, Any]] = answer["result"]
    return rows


def test_lost_dossiers_are_acknowledged_not_kept_and_come_back_once_re_sent() -> None:
    sim = Simulator(Faults(lose_share=0.25, damage_seed=7))
    for code in CODES:
        assert _sync(sim, [{"MaHoSo": code, "TrangThaiHoSo": 2}], 1, updating=False, key=code) == 0
        assert _step(sim, code, 4, 2) == 0
    lost = sim.state.lost
    assert 60 < len(lost) < 140  # a quarter of 400, give or take
    assert set(sim.state.portal) == set(CODES) - lost
    assert sim.state.orphans == []  # its steps were lost too, not refused
    victim = sorted(lost)[0]
    assert _lookup(sim, victim) == []
    assert sim.replayed_status(victim) is None  # never applied: a re-send must be
    sim.faults.lose_share = 0
    assert _sync(sim, [{"MaHoSo": victim, "TrangThaiHoSo": 4}], 2, updating=True, key=None) == 4
    assert _sync(sim, [{"MaHoSo": victim, "TrangThaiHoSo": 4}], 2, updating=False, key=None) == 0
    assert _lookup(sim, victim)[0]["TrangThaiHoSo"] == 4
    assert victim not in sim.state.lost


def test_switching_the_loss_on_takes_away_dossiers_already_held() -> None:
    sim = Simulator()
    for code in CODES[:100]:
        _sync(sim, [{"MaHoSo": code, "TrangThaiHoSo": 2}], 1, updating=False, key=None)
    sim.faults.lose_share = 0.5
    sim.faults_changed()
    assert sim.state.lost
    assert sim.state.lost.isdisjoint(sim.state.portal)
    assert len(sim.state.lost) + len(sim.state.portal) == 100


def test_stale_dossiers_keep_their_older_status_and_are_disjoint_from_lost_ones() -> None:
    sim = Simulator(Faults(lose_share=0.1, stale_share=0.2, damage_seed=3))
    for code in CODES:
        _sync(sim, [{"MaHoSo": code, "TrangThaiHoSo": 2}], 1, updating=False, key=None)
        _sync(sim, [{"MaHoSo": code, "TrangThaiHoSo": 4}], 2, updating=True, key=None)
        _step(sim, code, 9, 3)
    stale, lost = sim.state.stale, sim.state.lost
    assert 40 < len(stale) < 120
    assert stale.isdisjoint(lost)
    for code in CODES:
        if code in lost:
            continue
        expected = 2 if code in stale else 9
        assert _lookup(sim, code)[0]["TrangThaiHoSo"] == expected, code
    sim.faults.stale_share = 0
    victim = sorted(stale)[0]
    assert _sync(sim, [{"MaHoSo": victim, "TrangThaiHoSo": 9}], 3, updating=True, key=None) == 0
    assert _lookup(sim, victim)[0]["TrangThaiHoSo"] == 9
    assert victim not in sim.state.stale


def test_a_call_a_fault_dropped_is_not_remembered_for_replay() -> None:
    sim = Simulator(Faults(lose_share=1.0))
    assert _sync(sim, [{"MaHoSo": "A", "TrangThaiHoSo": 2}], 1, updating=False, key="A:1") == 0
    assert sim.replayed_status("A:1") is None
    sim.faults.lose_share = 0
    assert _sync(sim, [{"MaHoSo": "B", "TrangThaiHoSo": 2}], 1, updating=False, key="B:1") == 0
    assert sim.replayed_status("B:1") == 200
