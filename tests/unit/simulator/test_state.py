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
