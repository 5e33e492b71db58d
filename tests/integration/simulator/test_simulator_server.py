"""The simulator as a real server: httpx against uvicorn, protocol answers, faults, inspection."""

from __future__ import annotations

import httpx
import pytest

from services.simulator.faults import Faults
from services.simulator.server import RunningSimulator, running_simulator
from services.simulator.simulator import Simulator
from tests.integration.sync.helpers import wait_until


async def _login(client: httpx.AsyncClient) -> str:
    answer = await client.post(
        "/portal/api/auth/login",
        json={"username": "govsync", "password": "secret"},
        headers={"dstcode": "DVCQG"},
    )
    session: str = answer.json()["session"]
    return session


def _envelope(session: str, data: list[dict[str, object]], *, updating: bool) -> dict[str, object]:
    return {
        "session": session,
        "madonvi": "000.00.10.H29",
        "service": "DongBoHoSoMC",
        "isUpdating": "True" if updating else "False",
        "data": data,
    }


async def test_portal_create_update_exists_and_regression() -> None:
    async with running_simulator() as running, httpx.AsyncClient(base_url=running.base_url) as c:
        session = await _login(c)
        item = {"MaHoSo": "HS-1", "TrangThaiHoSo": 2}
        first = await c.post(
            "/portal/api/integration",
            json=_envelope(session, [item], updating=False),
            headers={"Govsync-Revisions": "2", "Idempotency-Key": "HS-1:2:portal"},
        )
        assert first.json()["error_code"] == 0
        again = await c.post(
            "/portal/api/integration",
            json=_envelope(session, [item], updating=False),
            headers={"Govsync-Revisions": "3"},
        )
        assert again.json()["error_code"] == -3
        assert "đã tồn tại" in again.json()["message"]
        older = await c.post(
            "/portal/api/integration",
            json=_envelope(session, [item | {"TrangThaiHoSo": 1}], updating=True),
            headers={"Govsync-Revisions": "1"},
        )
        assert older.json()["error_code"] == 0
        regressions = (await c.get("/_sim/regressions")).json()
        assert [(r["dossier"], r["had_revision"], r["received_revision"]) for r in regressions] == [
            ("HS-1", 2, 1)
        ]
        dossier = (await c.get("/_sim/portal/dossiers/HS-1")).json()
        assert dossier["status"] == 1
        calls = (await c.get("/_sim/calls", params={"destination": "portal"})).json()
        assert [call["service"] for call in calls] == ["login"] + ["DongBoHoSoMC"] * 3


async def test_idempotency_key_repeat_is_not_applied_twice() -> None:
    async with running_simulator() as running, httpx.AsyncClient(base_url=running.base_url) as c:
        session = await _login(c)
        headers = {"Govsync-Revisions": "1", "Idempotency-Key": "HS-2:1:portal"}
        body = _envelope(session, [{"MaHoSo": "HS-2", "TrangThaiHoSo": 1}], updating=False)
        assert (await c.post("/portal/api/integration", json=body, headers=headers)).json()[
            "error_code"
        ] == 0
        # The same request again (an answer lost on the way back): success, applied once.
        assert (await c.post("/portal/api/integration", json=body, headers=headers)).json()[
            "error_code"
        ] == 0
        calls = (await c.get("/_sim/calls")).json()
        assert calls[-1]["replayed"] is True
        assert (await c.get("/_sim/portal/dossiers/HS-2")).json()["updates"] == 0


async def test_faults_outage_rate_limit_and_expired_session() -> None:
    sim = Simulator(Faults(rate_limit_rate=1.0, retry_after_seconds=3))
    async with running_simulator(sim) as running, httpx.AsyncClient(base_url=running.base_url) as c:
        limited = await c.post("/portal/api/auth/login", json={})
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "3"
        await c.post("/_sim/faults", json={"rate_limit_rate": 0, "outage_seconds": 0.3})
        assert (await c.post("/ndxp/token", data={})).status_code == 503

        async def recovered() -> bool:
            return (await c.post("/portal/api/auth/login", json={})).status_code != 503

        await wait_until(recovered, within=5)
        session = await _login(c)
        await c.post("/_sim/sessions/expire")
        body = _envelope(session, [{"MaHoSo": "HS-3", "TrangThaiHoSo": 1}], updating=False)
        assert (await c.post("/portal/api/integration", json=body)).json()["error_code"] == -2


@pytest.mark.parametrize("code", ["HS-BAD"])
async def test_rejected_dossier_and_ndxp_token(code: str) -> None:
    sim = Simulator(Faults(reject_dossiers={code}, token_ttl_seconds=60))
    async with running_simulator(sim) as running, httpx.AsyncClient(base_url=running.base_url) as c:
        await _check_ndxp(c, running, code)


async def _check_ndxp(c: httpx.AsyncClient, running: RunningSimulator, code: str) -> None:
    assert (
        await c.post("/ndxp/token", data={"grant_type": "client_credentials"})
    ).status_code == 401
    token = (
        await c.post(
            "/ndxp/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "govsync",
                "client_secret": "secret",
            },
        )
    ).json()
    assert token["expires_in"] == 60
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    ok = await c.post(
        "/ndxp/dossier/v1/status",
        json={"dossier_code": "HS-4", "revision": 1, "status": 2},
        headers=auth,
    )
    assert ok.status_code == 200
    refused = await c.post(
        "/ndxp/dossier/v1/status",
        json={"dossier_code": code, "revision": 1, "status": 2},
        headers=auth,
    )
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == 500
    assert (await c.get("/_sim/ndxp/dossiers/HS-4")).json()["status"] == 2
    assert running.simulator.state.tokens_issued == 1


async def _lookup(c: httpx.AsyncClient, session: str, code: str) -> list[dict[str, object]]:
    answer = await c.post(
        "/portal/api/share",
        json={"session": session, "madonvi": "000.00.10.H29", "service": "TraCuuHoSo",
              "isUpdating": "False", "data": {"mahoso": code}},
    )  # fmt: skip
    body = answer.json()
    assert body["error_code"] == 0
    rows: list[dict[str, object]] = body["result"]
    return rows


async def test_lookup_answers_what_the_portal_holds_through_loss_and_staleness() -> None:
    sim = Simulator(seed=4)
    async with running_simulator(sim) as running, httpx.AsyncClient(base_url=running.base_url) as c:
        session = await _login(c)
        codes = [f"HS-L{n}" for n in range(40)]
        for code in codes:
            item = {"MaHoSo": code, "TrangThaiHoSo": 2, "NgayTiepNhan": "20250701080000"}
            await c.post("/portal/api/integration", json=_envelope(session, [item], updating=False))
        step = {"MaHoSo": "HS-L0", "ThoiDiemXuLy": "20250702080000", "TrangThai": 4}
        await c.post(
            "/portal/api/integration",
            json=_envelope(session, [step], updating=False) | {"service": "CapNhatTienDoHoSoMC"},
        )
        [row] = await _lookup(c, session, "HS-L0")
        assert (row["MaHoSo"], row["TrangThaiHoSo"], row["NgayTiepNhan"]) == (
            "HS-L0",
            4,
            "20250701080000",
        )
        assert await _lookup(c, session, "HS-NONE") == []

        faults = await c.post("/_sim/faults", json={"lose_share": 0.2, "stale_share": 0.2})
        assert faults.json()["lose_share"] == 0.2
        for code in codes:
            item = {"MaHoSo": code, "TrangThaiHoSo": 9, "NgayTiepNhan": "20250701080000"}
            await c.post("/portal/api/integration", json=_envelope(session, [item], updating=True))
        damaged = (await c.get("/_sim/portal/damaged")).json()
        assert damaged["lost"]
        assert damaged["stale"]
        for code in codes:
            rows = await _lookup(c, session, code)
            if code in damaged["lost"]:
                assert rows == [], code
            elif code in damaged["stale"]:
                assert rows[0]["TrangThaiHoSo"] == (4 if code == "HS-L0" else 2), code
            else:
                assert rows[0]["TrangThaiHoSo"] == 9, code
