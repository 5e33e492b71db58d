"""The simulator's bookkeeping: regressions, revisions and fault settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.simulator.faults import Faults
from services.simulator.simulator import Simulator
from services.simulator.state import SimulatorState


@pytest.mark.parametrize(
    ("had", "received", "regressed"),
    [
        pytest.param(3, 2, True, id="backwards"),
        pytest.param(3, 3, False, id="repeat"),
        pytest.param(3, 4, False, id="forwards"),
        pytest.param(None, 1, False, id="first"),
        pytest.param(3, None, False, id="unknown-revision"),
    ],
)
def test_check_revision(had: int | None, received: int | None, regressed: bool) -> None:
    state = SimulatorState()
    state.check_revision("portal", "HS-1", had, received)
    assert bool(state.regressions) is regressed


def test_batch_is_all_or_nothing() -> None:
    sim = Simulator(Faults(reject_dossiers={"BAD"}))
    session = sim.portal_login({"username": "govsync", "password": "secret"}, "DVCQG")["session"]
    answer = sim.portal_integration(
        {
            "session": session,
            "service": "DongBoHoSoMC",
            "isUpdating": "False",
            "data": [{"MaHoSo": "OK", "TrangThaiHoSo": 1}, {"MaHoSo": "BAD", "TrangThaiHoSo": 1}],
        },
        [1, 1],
    )
    assert answer["error_code"] == 3
    assert sim.state.portal == {}


def test_faults_are_validated() -> None:
    with pytest.raises(ValidationError):
        Faults(error_rate=1.5)


def _call(
    sim: Simulator, service: str, items: list[dict[str, object]], revisions: list[int]
) -> int:
    session = sim.portal_login({"username": "govsync", "password": "secret"}, "DVCQG")["session"]
    answer = sim.portal_integration(
        {"session": session, "service": service, "isUpdating": "False", "data": items},
        list(revisions),
    )
    return int(answer["error_code"])


def _step(code: str, status: int) -> dict[str, object]:
    return {"MaHoSo": code, "ThoiDiemXuLy": "20250701090000", "TrangThai": status}


def test_a_step_for_a_dossier_the_portal_does_not_hold_is_refused_and_kept_as_an_orphan() -> None:
    sim = Simulator()
    assert _call(sim, "CapNhatTienDoHoSoMC", [_step("NONE", 2)], [2]) == 4
    # Repeated item by item after the batch was refused: still one orphan.
    assert _call(sim, "CapNhatTienDoHoSoMC", [_step("NONE", 2)], [2]) == 4
    assert [(o.dossier, o.revision, o.status) for o in sim.state.orphans] == [("NONE", 2, 2)]
    assert sim.state.portal == {}


def test_a_dossier_created_elsewhere_takes_steps() -> None:
    sim = Simulator(Faults(existing_dossiers={"OLD"}))
    assert _call(sim, "CapNhatTienDoHoSoMC", [_step("OLD", 4)], [1]) == 0
    assert sim.state.portal["OLD"].status == 4
    assert sim.state.orphans == []


def test_a_step_older_than_the_header_is_history_and_leaves_the_status() -> None:
    sim = Simulator()
    header = {"MaHoSo": "A", "TrangThaiHoSo": 4}
    assert _call(sim, "DongBoHoSoMC", [header], [2]) == 0
    assert _call(sim, "CapNhatTienDoHoSoMC", [_step("A", 2)], [1]) == 0
    held = sim.state.portal["A"]
    assert (held.status, held.revision, len(held.steps)) == (4, 2, 1)
    assert (sim.state.late_steps, sim.state.regressions) == (1, [])
    assert _call(sim, "CapNhatTienDoHoSoMC", [_step("A", 9)], [3]) == 0
    assert (held.status, held.revision, sim.state.late_steps) == (9, 3, 1)
