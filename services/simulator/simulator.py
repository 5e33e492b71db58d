"""The simulated portal and NDXP themselves: credentials, sessions, tokens, faults and their rules.

Portal (DOMAIN.md §1): login, then `DongBoHoSoMC` / `CapNhatTienDoHoSoMC` batches applied all or
nothing (the answer names the first item refused) and `TraCuuHoSo` lookups. A step for a dossier
the portal does not hold is refused ("không tồn tại", as the real portal answers) and kept in
`state.orphans`: a sync that sends one has not waited for the dossier's header. NDXP (§4): client
credentials tokens and one status per dossier. Every call, refused or not, is recorded in the
state. The HTTP routes are in `portal.py`, `ndxp.py` and `control.py`; nothing here speaks HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.simulator.departments import Departments
from services.simulator.faults import Faults
from services.simulator.scores import Held
from services.simulator.state import Call, Orphan, PortalDossier, SimulatorState

PORTAL = "portal"
NDXP = "ndxp"

ERR_OK = 0
ERR_EXISTS = -3
ERR_INVALID = 3
ERR_MISSING = 4
ERR_SESSION = -2
ERR_RETRY = -1
SESSION_REJECTED = "Phiên làm việc không hợp lệ hoặc đã hết hạn"
SUCCESS = "Thành công"

NDXP_AUTH = 100
NDXP_NOT_FOUND = 201
NDXP_INCORRECT = 500


@dataclass(frozen=True, slots=True)
class FaultAnswer:
    """The answer an injected fault gives instead of handling the call."""

    fault: str
    """`outage`, `rate_limited` or `error`: the `fault` of the recorded call."""
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


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
        departments: Departments | None = None,
        legal_limits_days: Mapping[str, int] | None = None,
    ) -> None:
        """`departments`: the reporting API's units (agency codes not in it get their own);
        `legal_limits_days`: per procedure code (`MaTTHC`), for 2.1 without `NgayHenTra`."""
        self.faults = faults or Faults()
        self.departments = departments or Departments()
        self.legal_limits_days: Mapping[str, int] = legal_limits_days or {}
        self.scored: dict[str, tuple[tuple[object, ...], Held]] = {}
        """What the reporting API read of each held dossier, and of which version of it."""
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
        self.faults_changed()

    def faults_changed(self) -> None:
        """Apply what a fault does at once: the dossiers `lose_share` picks are gone now."""
        portal = self.state.portal
        for code in [c for c in portal if self._damage(c) == "lost"]:
            del portal[code]
            self.state.lost.add(code)

    def _damage(self, code: str) -> str | None:
        """`lost`, `stale` or None: what `lose_share` and `stale_share` do to dossier `code`."""
        faults = self.faults
        if not faults.lose_share and not faults.stale_share:
            return None
        digest = hashlib.sha256(f"{faults.damage_seed}:{code}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        if share < faults.lose_share:
            return "lost"
        if share < faults.lose_share + faults.stale_share:
            return "stale"
        return None

    def start_outage(self, seconds: float) -> None:
        self.outage_until = time.monotonic() + seconds

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def reset(self) -> None:
        self.state = SimulatorState()
        self.scored.clear()
        self.sessions.clear()
        self.tokens.clear()
        self.outage_until = 0.0

    # --- calls -----------------------------------------------------------------------------

    def record(
        self,
        destination: str,
        service: str,
        http_status: int,
        error_code: object,
        dossiers: list[str] | None = None,
        revisions: list[int | None] | None = None,
        idempotency_key: str | None = None,
        *,
        replayed: bool = False,
        fault: str | None = None,
        at: float | None = None,
    ) -> None:
        """Record one call in the current state (`reset` replaces it); `at`: when it arrived
        (default now)."""
        state = self.state
        state.record_call(
            Call(
                state.next_seq(),
                time.time() if at is None else at,
                destination,
                service,
                http_status,
                error_code if isinstance(error_code, int) else None,
                [] if dossiers is None else dossiers,
                [] if revisions is None else revisions,
                idempotency_key,
                replayed=replayed,
                fault=fault,
            )
        )

    def replayed_status(self, key: str | None) -> int | None:
        """The HTTP status of the first successful call with idempotency key `key`, if any."""
        if key is None or key not in self.state.idempotent:
            return None
        return self.state.idempotent[key][0]

    def remember(self, key: str | None, status: int, body: dict[str, Any]) -> None:
        """Keep a successful answer under its idempotency key, so a repeat is not applied twice."""
        if key is not None:
            self.state.idempotent[key] = (status, body)

    # --- faults ----------------------------------------------------------------------------

    async def fault(self, destination: str, service: str) -> FaultAnswer | None:
        """The failure to answer instead of handling the call, if any; records it as a call."""
        arrived = time.time()
        if self.faults.latency_seconds:
            await asyncio.sleep(self.faults.latency_seconds)
        answer: FaultAnswer | None = None
        if time.monotonic() < self.outage_until:
            answer = FaultAnswer("outage", 503, {"message": "Service Unavailable"})
        elif self.faults.rate_limit_rate and self.random.random() < self.faults.rate_limit_rate:
            answer = FaultAnswer(
                "rate_limited",
                429,
                {"message": "Too Many Requests"},
                {"Retry-After": f"{self.faults.retry_after_seconds:g}"},
            )
        elif self.faults.error_rate and self.random.random() < self.faults.error_rate:
            if destination == PORTAL and self.random.random() < 0.5:
                # Portals also report overload inside a 200 answer.
                answer = FaultAnswer(
                    "error", 200, {"error_code": ERR_RETRY, "message": "Hệ thống đang bận"}
                )
            else:
                status = self.random.choice((500, 502, 503, 504))
                answer = FaultAnswer("error", status, {"message": "upstream error"})
        if answer is not None:
            self.record(destination, service, answer.status, None, fault=answer.fault, at=arrived)
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
        self, envelope: dict[str, Any], revisions: list[int | None], key: str | None = None
    ) -> dict[str, Any]:
        """Apply one business call; a success is kept under `key` unless a fault dropped some of
        it (the portal never applied that part, so a re-send must be applied)."""
        if not self._session_ok(envelope.get("session")):
            return {"error_code": ERR_SESSION, "message": SESSION_REJECTED}
        service = envelope.get("service")
        data = envelope.get("data")
        if not isinstance(data, list) or not data:
            return {"error_code": ERR_INVALID, "message": "Thiếu dữ liệu"}
        madonvi = str(envelope.get("madonvi") or "")
        dropped: list[str] = []
        if service == "DongBoHoSoMC":
            updating = str(envelope.get("isUpdating")) == "True"
            answer = self._sync_dossiers(data, revisions, madonvi, dropped, updating=updating)
        elif service == "CapNhatTienDoHoSoMC":
            answer = self._add_steps(data, revisions, madonvi, dropped)
        else:
            return {"error_code": ERR_INVALID, "message": f"Dịch vụ không hỗ trợ: {service}"}
        if answer["error_code"] == ERR_OK and not dropped:
            self.remember(key, 200, answer)
        return answer

    def _rejected(self, code: str, item: dict[str, Any]) -> dict[str, Any]:
        """The refusal of a dossier in `faults.reject_dossiers`."""
        message = f"Dữ liệu không hợp lệ: hồ sơ {code}"
        if self.faults.echo_personal_data:
            phone, number = item.get("SoDienThoai"), item.get("SoGiayToChuHoSo")
            message += f"; số điện thoại {phone}, số giấy tờ {number} không khớp"
        return {"error_code": ERR_INVALID, "message": message}

    def _sync_dossiers(
        self,
        data: list[Any],
        revisions: list[int | None],
        madonvi: str,
        dropped: list[str],
        *,
        updating: bool,
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
                return self._rejected(code, item)
            exists = code in portal or code in self.faults.existing_dossiers
            if not updating and exists:
                return {"error_code": ERR_EXISTS, "message": f"Hồ sơ {code} đã tồn tại"}
            if updating and not exists:
                return {"error_code": ERR_MISSING, "message": f"Hồ sơ {code} không tồn tại"}
        for index, item in enumerate(data):
            code = item["MaHoSo"]
            revision = _revision_of(revisions, index)
            known = portal.get(code)
            damage = self._damage(code)
            if damage == "lost" or (damage == "stale" and known is not None):
                self._drop(code, damage, known, item.get("TrangThaiHoSo"), item, dropped)
                continue
            self.state.lost.discard(code)
            self.state.stale.discard(code)
            if known is None:
                portal[code] = PortalDossier(code, madonvi, item, item["TrangThaiHoSo"], revision)
                continue
            self.state.check_revision(PORTAL, code, known.revision, revision)
            known.header = item
            known.status = item["TrangThaiHoSo"]
            known.revision = revision
            known.madonvi = madonvi
            known.updates += 1
        return {"error_code": ERR_OK, "message": SUCCESS}

    def _drop(
        self,
        code: str,
        damage: str,
        known: PortalDossier | None,
        status: object,
        header: dict[str, Any] | None,
        dropped: list[str],
    ) -> None:
        """Acknowledge and do not apply (a fault): note the dossier as lost or stale."""
        dropped.append(code)
        if damage == "lost":
            self.state.lost.add(code)
        elif known is not None and (
            status != known.status or (header is not None and header != known.header)
        ):
            self.state.stale.add(code)

    def _add_steps(
        self, data: list[Any], revisions: list[int | None], madonvi: str, dropped: list[str]
    ) -> dict[str, Any]:
        portal = self.state.portal
        for index, item in enumerate(data):
            code = item.get("MaHoSo") if isinstance(item, dict) else None
            if not isinstance(code, str) or not code:
                return {"error_code": ERR_INVALID, "message": "Thiếu MaHoSo"}
            if self._damage(code) == "lost":
                continue  # acknowledged below and lost: the portal says nothing of it
            if code not in portal and code not in self.faults.existing_dossiers:
                # A step needs the dossier: the portal refuses it and we keep the orphan.
                self._orphan(code, _revision_of(revisions, index), item.get("TrangThai"))
                return {"error_code": ERR_MISSING, "message": f"Hồ sơ {code} không tồn tại"}
            if not item.get("ThoiDiemXuLy"):
                return {"error_code": ERR_INVALID, "message": f"Thiếu ThoiDiemXuLy: {code}"}
            if code in self.faults.reject_dossiers:
                return self._rejected(code, item)
        for index, item in enumerate(data):
            code = item["MaHoSo"]
            damage = self._damage(code)
            status = item.get("TrangThai")
            if damage == "lost" or (
                damage == "stale" and code in portal and status not in (None, portal[code].status)
            ):
                self._drop(code, damage, portal.get(code), status, None, dropped)
                continue
            if code not in portal:  # created elsewhere (`existing_dossiers`): held all the same
                portal[code] = PortalDossier(code, madonvi, {"MaHoSo": code}, None, None)
            dossier = portal[code]
            revision = _revision_of(revisions, index)
            dossier.steps.append(item)
            if (
                revision is not None
                and dossier.revision is not None
                and revision < dossier.revision
            ):
                # A step older than the header it follows (it waited for that header): history,
                # as existing adapters send unsynced rows after the header; the status stays.
                self.state.late_steps += 1
                continue
            self.state.check_revision(PORTAL, dossier.code, dossier.revision, revision)
            if isinstance(item.get("TrangThai"), int):
                dossier.status = item["TrangThai"]
            dossier.revision = revision
        return {"error_code": ERR_OK, "message": SUCCESS}

    def _orphan(self, code: str, revision: int | None, status: object) -> None:
        orphans = self.state.orphans
        if not any(o.dossier == code and o.revision == revision for o in orphans):
            orphans.append(Orphan(code, revision, status, time.time()))

    def portal_share(self, envelope: dict[str, Any]) -> dict[str, Any]:
        if not self._session_ok(envelope.get("session")):
            return {"error_code": ERR_SESSION, "message": SESSION_REJECTED}
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
        return {"error_code": ERR_OK, "message": SUCCESS, "result": rows}

    def portal_replayed(self, dossiers: list[str], revisions: list[int | None]) -> dict[str, Any]:
        """A repeated batch: applied once already, so only a revision going backwards is noted."""
        for code, revision in zip(dossiers, revisions, strict=False):
            known = self.state.portal.get(code)
            if known is not None:
                self.state.check_revision(PORTAL, code, known.revision, revision)
        return {"error_code": ERR_OK, "message": SUCCESS}

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

    def token_ok(self, authorization: str | None) -> bool:
        """Whether `authorization` carries a bearer token this NDXP issued and still honours."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        expiry = self.tokens.get(authorization.removeprefix("Bearer "))
        return expiry is not None and time.monotonic() < expiry

    def ndxp_status(self, authorization: str | None, body: Any) -> tuple[int, dict[str, Any]]:
        if not self.token_ok(authorization):
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
        return 200, {"errorCode": 0, "message": SUCCESS}

    def ndxp_replayed(self, code: str, revision: object) -> dict[str, Any]:
        """A repeated status: applied once already, so only a revision going backwards is noted."""
        known = self.state.ndxp.get(code)
        if known is not None and isinstance(revision, int):
            self.state.check_revision(NDXP, code, known["revision"], revision)
        return {"errorCode": 0, "message": SUCCESS}


def _revision_of(revisions: list[int | None], index: int) -> int | None:
    """The revision the `Govsync-Revisions` header gave item `index` of a batch, if any."""
    return revisions[index] if index < len(revisions) else None
