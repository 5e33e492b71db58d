"""The simulator's HTTP app: the portal under `/portal`, NDXP under `/ndxp`, control under `/_sim`.

Portal (DOMAIN.md §1): `POST /portal/api/auth/login`, `/portal/api/integration` and
`/portal/api/share` with the session envelope. A batch is applied all or nothing; the answer names
the first item it refused. NDXP (§4): `POST /ndxp/token` (client credentials) and
`POST /ndxp/dossier/v1/status` with a bearer token.

Revisions are not part of the portal's items, so the simulator learns them from the
`Govsync-Revisions` header (one per item, in order) to notice a dossier going backwards.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import urllib.parse
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.simulator.faults import Faults
from services.simulator.state import Call, PortalDossier, SimulatorState

PORTAL = "portal"
NDXP = "ndxp"
REVISIONS_HEADER = "Govsync-Revisions"

ERR_OK = 0
ERR_EXISTS = -3
ERR_INVALID = 3
ERR_MISSING = 4
ERR_SESSION = -2
ERR_RETRY = -1
SESSION_REJECTED = "Phiên làm việc không hợp lệ hoặc đã hết hạn"

NDXP_AUTH = 100
NDXP_NOT_FOUND = 201
NDXP_INCORRECT = 500


class Simulator:
    """State, faults and credentials of one simulated portal and NDXP."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        username: str = "govsync",
        password: str = "secret",  # noqa: S107 - the simulator's own test credential
        client_id: str = "govsync",
        client_secret: str = "secret",  # noqa: S107
        seed: int | None = None,
    ) -> None:
        self.faults = faults or Faults()
        self.state = SimulatorState()
        self.username = username
        self.password = password
        self.client_id = client_id
        self.client_secret = client_secret
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.sessions: dict[str, int] = {}
        self.tokens: dict[str, float] = {}
        self.outage_until = 0.0
        if self.faults.outage_seconds:
            self.start_outage(self.faults.outage_seconds)

    def start_outage(self, seconds: float) -> None:
        self.outage_until = time.monotonic() + seconds

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def reset(self) -> None:
        self.state = SimulatorState()
        self.sessions.clear()
        self.tokens.clear()
        self.outage_until = 0.0

    # --- faults ----------------------------------------------------------------------------

    async def fault(self, destination: str, service: str) -> JSONResponse | None:
        """The failure to answer instead of handling the call, if any; records it as a call."""
        if self.faults.latency_seconds:
            await asyncio.sleep(self.faults.latency_seconds)
        answer: JSONResponse | None = None
        name = None
        if time.monotonic() < self.outage_until:
            name = "outage"
            answer = JSONResponse({"message": "Service Unavailable"}, status_code=503)
        elif self.faults.rate_limit_rate and self.random.random() < self.faults.rate_limit_rate:
            name = "rate_limited"
            answer = JSONResponse(
                {"message": "Too Many Requests"},
                status_code=429,
                headers={"Retry-After": f"{self.faults.retry_after_seconds:g}"},
            )
        elif self.faults.error_rate and self.random.random() < self.faults.error_rate:
            name = "error"
            if destination == PORTAL and self.random.random() < 0.5:
                # Portals also report overload inside a 200 answer.
                answer = JSONResponse({"error_code": ERR_RETRY, "message": "Hệ thống đang bận"})
            else:
                status = self.random.choice((500, 502, 503, 504))
                answer = JSONResponse({"message": "upstream error"}, status_code=status)
        if answer is not None:
            self.state.record_call(
                Call(
                    self.state.next_seq(),
                    time.time(),
                    destination,
                    service,
                    answer.status_code,
                    None,
                    [],
                    [],
                    None,
                    fault=name,
                )
            )
        return answer

    # --- portal ----------------------------------------------------------------------------

    def portal_login(self, body: dict[str, Any], dstcode: str | None) -> dict[str, Any]:
        if not dstcode:
            return {"error_code": ERR_INVALID, "message": "Thiếu dstcode"}
        if body.get("username") != self.username or body.get("password") != self.password:
            return {"error_code": ERR_INVALID, "message": "Sai tên đăng nhập hoặc mật khẩu"}
        session = secrets.token_hex(16)
        self.sessions[session] = 0
        self.state.logins += 1
        return {"session": session, "error_code": ERR_OK, "message": "Đăng nhập thành công"}

    def _session_ok(self, session: object) -> bool:
        if not isinstance(session, str) or session not in self.sessions:
            return False
        self.sessions[session] += 1
        limit = self.faults.session_max_uses
        if limit is not None and self.sessions[session] > limit:
            del self.sessions[session]
            return False
        return True

    def portal_integration(
        self, envelope: dict[str, Any], revisions: list[int | None]
    ) -> dict[str, Any]:
        if not self._session_ok(envelope.get("session")):
            return {
                "error_code": ERR_SESSION,
                "message": "Phiên làm việc không hợp lệ hoặc đã hết hạn",
            }
        service = envelope.get("service")
        data = envelope.get("data")
        if not isinstance(data, list) or not data:
            return {"error_code": ERR_INVALID, "message": "Thiếu dữ liệu"}
        madonvi = str(envelope.get("madonvi") or "")
        if service == "DongBoHoSoMC":
            updating = str(envelope.get("isUpdating")) == "True"
            return self._sync_dossiers(data, revisions, madonvi, updating=updating)
        if service == "CapNhatTienDoHoSoMC":
            return self._add_steps(data, revisions)
        return {"error_code": ERR_INVALID, "message": f"Dịch vụ không hỗ trợ: {service}"}

    def _sync_dossiers(
        self, data: list[Any], revisions: list[int | None], madonvi: str, *, updating: bool
    ) -> dict[str, Any]:
        portal = self.state.portal
        for item in data:
            code = item.get("MaHoSo") if isinstance(item, dict) else None
            if not isinstance(code, str) or not code:
                return {"error_code": ERR_INVALID, "message": "Thiếu MaHoSo"}
            status = item.get("TrangThaiHoSo")
            if not isinstance(status, int) or not 1 <= status <= 10:
                return {"error_code": ERR_INVALID, "message": f"TrangThaiHoSo không hợp lệ: {code}"}
            if code in self.faults.reject_dossiers:
                message = f"Dữ liệu không hợp lệ: hồ sơ {code}"
                if self.faults.echo_personal_data:
                    phone, number = item.get("SoDienThoai"), item.get("SoGiayToChuHoSo")
                    message += f"; số điện thoại {phone}, số giấy tờ {number} không khớp"
                return {"error_code": ERR_INVALID, "message": message}
            exists = code in portal or code in self.faults.existing_dossiers
            if not updating and exists:
                return {"error_code": ERR_EXISTS, "message": f"Hồ sơ {code} đã tồn tại"}
            if updating and not exists:
                return {"error_code": ERR_MISSING, "message": f"Hồ sơ {code} không tồn tại"}
        for index, item in enumerate(data):
            code = item["MaHoSo"]
            revision = revisions[index] if index < len(revisions) else None
            known = portal.get(code)
            if known is None:
                portal[code] = PortalDossier(code, madonvi, item, item["TrangThaiHoSo"], revision)
                continue
            self.state.check_revision(PORTAL, code, known.revision, revision)
            known.header = item
            known.status = item["TrangThaiHoSo"]
            known.revision = revision
            known.madonvi = madonvi
            known.updates += 1
        return {"error_code": ERR_OK, "message": "Thành công"}

    def _add_steps(self, data: list[Any], revisions: list[int | None]) -> dict[str, Any]:
        portal = self.state.portal
        for item in data:
            code = item.get("MaHoSo") if isinstance(item, dict) else None
            if not isinstance(code, str) or code not in portal:
                return {"error_code": ERR_MISSING, "message": f"Hồ sơ {code} không tồn tại"}
            if not item.get("ThoiDiemXuLy"):
                return {"error_code": ERR_INVALID, "message": f"Thiếu ThoiDiemXuLy: {code}"}
            if code in self.faults.reject_dossiers:
                message = f"Dữ liệu không hợp lệ: hồ sơ {code}"
                if self.faults.echo_personal_data:
                    phone, number = item.get("SoDienThoai"), item.get("SoGiayToChuHoSo")
                    message += f"; số điện thoại {phone}, số giấy tờ {number} không khớp"
                return {"error_code": ERR_INVALID, "message": message}
        for index, item in enumerate(data):
            dossier = portal[item["MaHoSo"]]
            revision = revisions[index] if index < len(revisions) else None
            self.state.check_revision(PORTAL, dossier.code, dossier.revision, revision)
            dossier.steps.append(item)
            if isinstance(item.get("TrangThai"), int):
                dossier.status = item["TrangThai"]
            dossier.revision = revision
        return {"error_code": ERR_OK, "message": "Thành công"}

    def portal_share(self, envelope: dict[str, Any]) -> dict[str, Any]:
        if not self._session_ok(envelope.get("session")):
            return {
                "error_code": ERR_SESSION,
                "message": "Phiên làm việc không hợp lệ hoặc đã hết hạn",
            }
        if envelope.get("service") != "TraCuuHoSo":
            return {"error_code": ERR_INVALID, "message": "Dịch vụ không hỗ trợ"}
        code = envelope.get("mahoso")
        if code is None and isinstance(envelope.get("data"), dict):
            code = envelope["data"].get("mahoso")
        found = self.state.portal.get(str(code))
        if found is not None:
            rows = [found.header | {"TrangThaiHoSo": found.status}]
        elif code in self.faults.existing_dossiers:
            rows = [{"MaHoSo": code}]
        else:
            rows = []
        return {"error_code": ERR_OK, "message": "Thành công", "result": rows}

    # --- NDXP ------------------------------------------------------------------------------

    def ndxp_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return 401, {"errorCode": NDXP_AUTH, "error": "invalid_client"}
        token = secrets.token_hex(16)
        ttl = self.faults.token_ttl_seconds
        self.tokens[token] = time.monotonic() + ttl
        self.state.tokens_issued += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl}

    def _token_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        expiry = self.tokens.get(authorization.removeprefix("Bearer "))
        return expiry is not None and time.monotonic() < expiry

    def ndxp_status(self, authorization: str | None, body: Any) -> tuple[int, dict[str, Any]]:
        if not self._token_ok(authorization):
            return 401, {"errorCode": NDXP_AUTH, "message": "Xác thực không thành công"}
        if not isinstance(body, dict):
            return 400, {"errorCode": NDXP_INCORRECT, "message": "Dữ liệu không chính xác"}
        code = body.get("dossier_code")
        revision = body.get("revision")
        if not isinstance(code, str) or not isinstance(revision, int) or "status" not in body:
            return 400, {"errorCode": 200, "message": "Bản ghi thiếu thông tin"}
        if code in self.faults.reject_dossiers:
            return 400, {"errorCode": NDXP_INCORRECT, "message": f"Dữ liệu không chính xác: {code}"}
        known = self.state.ndxp.get(code)
        if known is not None:
            self.state.check_revision(NDXP, code, known["revision"], revision)
        self.state.ndxp[code] = body
        return 200, {"errorCode": 0, "message": "Thành công"}


def _revisions(request: Request) -> list[int | None]:
    raw = request.headers.get(REVISIONS_HEADER, "")
    values: list[int | None] = []
    for part in raw.split(","):
        part = part.strip()
        values.append(int(part) if part.isdigit() else None)
    return values if raw else []


def _dossiers(data: object) -> list[str]:
    if not isinstance(data, list):
        return []
    return [str(item.get("MaHoSo")) for item in data if isinstance(item, dict)]


def create_app(sim: Simulator) -> FastAPI:
    """The HTTP face of `sim`; everything it answers comes from `sim`'s state and faults."""
    app = FastAPI(title="govsync simulator", version="1")

    def state_of() -> SimulatorState:
        return sim.state  # `reset` replaces the state object

    def log_call(destination: str, service: str, status: int, code: object) -> None:
        state_of().record_call(
            Call(
                state_of().next_seq(),
                time.time(),
                destination,
                service,
                status,
                code if isinstance(code, int) else None,
                [],
                [],
                None,
            )
        )

    def _replay(key: str | None) -> JSONResponse | None:
        if key is None or key not in state_of().idempotent:
            return None
        status, body = state_of().idempotent[key]
        return JSONResponse(body, status_code=status)

    def _remember(key: str | None, status: int, body: dict[str, Any], ok: bool) -> None:
        if key is not None and ok:
            state_of().idempotent[key] = (status, body)

    @app.post("/portal/api/auth/login")
    async def portal_login(request: Request) -> JSONResponse:
        if (failed := await sim.fault(PORTAL, "login")) is not None:
            return failed
        body = await request.json()
        answer = sim.portal_login(
            body if isinstance(body, dict) else {}, request.headers.get("dstcode")
        )
        state_of().record_call(
            Call(
                state_of().next_seq(),
                time.time(),
                PORTAL,
                "login",
                200,
                answer["error_code"],
                [],
                [],
                None,
            )
        )
        return JSONResponse(answer)

    @app.post("/portal/api/integration")
    async def portal_integration(request: Request) -> JSONResponse:
        envelope = await request.json()
        service = str(envelope.get("service")) if isinstance(envelope, dict) else "?"
        if (failed := await sim.fault(PORTAL, service)) is not None:
            return failed
        key = request.headers.get("Idempotency-Key")
        revisions = _revisions(request)
        dossiers = _dossiers(envelope.get("data") if isinstance(envelope, dict) else None)
        replayed = _replay(key)
        if replayed is not None:
            for code, revision in zip(dossiers, revisions, strict=False):
                known = state_of().portal.get(code)
                if known is not None:
                    state_of().check_revision(PORTAL, code, known.revision, revision)
            answer: dict[str, Any] = {"error_code": ERR_OK, "message": "Thành công"}
        else:
            answer = sim.portal_integration(
                envelope if isinstance(envelope, dict) else {}, revisions
            )
            _remember(key, 200, answer, answer["error_code"] == ERR_OK)
        state_of().record_call(
            Call(
                state_of().next_seq(),
                time.time(),
                PORTAL,
                service,
                200,
                answer["error_code"],
                dossiers,
                revisions,
                key,
                replayed=replayed is not None,
            )
        )
        return JSONResponse(answer)

    @app.post("/portal/api/share")
    async def portal_share(request: Request) -> JSONResponse:
        if (failed := await sim.fault(PORTAL, "TraCuuHoSo")) is not None:
            return failed
        envelope = await request.json()
        answer = sim.portal_share(envelope if isinstance(envelope, dict) else {})
        state_of().record_call(
            Call(
                state_of().next_seq(),
                time.time(),
                PORTAL,
                "TraCuuHoSo",
                200,
                answer["error_code"],
                [],
                [],
                None,
            )
        )
        return JSONResponse(answer)

    @app.post("/ndxp/token")
    async def ndxp_token(request: Request) -> JSONResponse:
        if (failed := await sim.fault(NDXP, "token")) is not None:
            return failed
        # application/x-www-form-urlencoded, parsed here to need no multipart library.
        parsed = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        fields = {k: v[0] for k, v in parsed.items() if v}
        status, body = sim.ndxp_token(fields)
        state_of().record_call(
            Call(
                state_of().next_seq(),
                time.time(),
                NDXP,
                "token",
                status,
                body.get("errorCode"),
                [],
                [],
                None,
            )
        )
        return JSONResponse(body, status_code=status)

    @app.post("/ndxp/dossier/v1/status")
    async def ndxp_status(request: Request) -> JSONResponse:
        if (failed := await sim.fault(NDXP, "status")) is not None:
            return failed
        body = await request.json()
        key = request.headers.get("Idempotency-Key")
        code = str(body.get("dossier_code")) if isinstance(body, dict) else "?"
        revision = body.get("revision") if isinstance(body, dict) else None
        replayed = _replay(key)
        if replayed is not None and sim._token_ok(request.headers.get("Authorization")):
            known = state_of().ndxp.get(code)
            if known is not None and isinstance(revision, int):
                state_of().check_revision(NDXP, code, known["revision"], revision)
            status, answer = replayed.status_code, {"errorCode": 0, "message": "Thành công"}
        else:
            replayed = None
            status, answer = sim.ndxp_status(request.headers.get("Authorization"), body)
            _remember(key, status, answer, status == 200)
        error_code = answer.get("errorCode")
        state_of().record_call(
            Call(
                state_of().next_seq(),
                time.time(),
                NDXP,
                "status",
                status,
                error_code if isinstance(error_code, int) else None,
                [code],
                [revision if isinstance(revision, int) else None],
                key,
                replayed=replayed is not None,
            )
        )
        return JSONResponse(answer, status_code=status)

    # --- inspection and control ------------------------------------------------------------

    @app.get("/_sim/portal/dossiers")
    async def portal_dossiers() -> dict[str, Any]:
        return {code: d.view() for code, d in state_of().portal.items()}

    @app.get("/_sim/portal/dossiers/{code}")
    async def portal_dossier(code: str) -> JSONResponse:
        found = state_of().portal.get(code)
        if found is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(found.view())

    @app.get("/_sim/ndxp/dossiers")
    async def ndxp_dossiers() -> dict[str, Any]:
        return dict(state_of().ndxp)

    @app.get("/_sim/ndxp/dossiers/{code}")
    async def ndxp_dossier(code: str) -> JSONResponse:
        found = state_of().ndxp.get(code)
        if found is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(found)

    @app.get("/_sim/calls")
    async def calls(destination: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return [
            c.view()
            for c in state_of().calls
            if c.seq > since and (destination is None or c.destination == destination)
        ]

    @app.get("/_sim/revisions")
    async def revisions() -> dict[str, dict[str, int | None]]:
        """The latest revision of every dossier at each destination (cheap to poll)."""
        state = state_of()
        return {
            "portal": {code: d.revision for code, d in state.portal.items()},
            "ndxp": {code: body.get("revision") for code, body in state.ndxp.items()},
        }

    @app.get("/_sim/regressions")
    async def regressions() -> list[dict[str, Any]]:
        return [r.view() for r in state_of().regressions]

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        state = state_of()
        return {
            "portal_dossiers": len(state.portal),
            "ndxp_dossiers": len(state.ndxp),
            "calls": len(state.calls),
            "regressions": len(state.regressions),
            "logins": state.logins,
            "tokens_issued": state.tokens_issued,
        }

    @app.get("/_sim/faults")
    async def get_faults() -> Faults:
        return sim.faults

    @app.post("/_sim/faults")
    async def set_faults(request: Request) -> Faults:
        changes = await request.json()
        sim.faults = sim.faults.model_copy(
            update=Faults.model_validate(sim.faults.model_dump() | changes).model_dump()
        )
        if "outage_seconds" in changes:
            sim.start_outage(sim.faults.outage_seconds)
        return sim.faults

    @app.post("/_sim/sessions/expire")
    async def expire_sessions() -> dict[str, str]:
        sim.expire_sessions()
        return {"status": "ok"}

    @app.post("/_sim/tokens/expire")
    async def expire_tokens() -> dict[str, str]:
        sim.expire_tokens()
        return {"status": "ok"}

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        sim.reset()
        return {"status": "ok"}

    return app
