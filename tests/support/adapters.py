"""Two clients that behave like the public portal adapters of DOMAIN.md §1, and their dossiers.

They know nothing of govsync: each is given a base URL and the portal's credentials and speaks
the adapter protocol (login, the `{session, madonvi, service, isUpdating, data}` envelope,
`error_code`). Pointed at the simulator's portal or at govsync's `/dvcqg`, they run unchanged.

- `OpenCpsLikeAdapter`: an outbox filled on each status change, read in order per dossier. Each
  row: TraCuuHoSo decides create or update, DongBoHoSoMC sends the header ("đã tồn tại" turns a
  create into an update), and CapNhatTienDoHoSoMC sends the row's steps only if that succeeded.
  A failure marks the dossier's later rows failed, never retried.
- `ChunkedProgressAdapter`: a "not synced" flag per dossier and per progress row; each poll sends
  every unsynced header in one DongBoHoSoMC (create or update from its own acknowledgement), then
  the unsynced steps of acknowledged dossiers in chunks of 10. Its success test also wants
  "thành công" in the message.

`dossier_lives` gives both the same kind of data: full items in the portal's own field names,
each change a header at its new status and the steps that led to it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PortalAccess:
    """What an adapter's configuration holds: the adapter URL, the paths and the credentials."""

    url: str
    username: str
    password: str
    dstcode: str = "000.00.00.G22"
    auth_path: str = "/api/auth/login"
    integration_path: str = "/api/integration"
    share_path: str = "/api/share"


class AdapterError(Exception):
    """The portal (or what stands in for it) refused a call; `answer` is its body."""

    def __init__(self, service: str, answer: dict[str, Any]) -> None:
        super().__init__(f"{service}: {answer.get('error_code')} {answer.get('message')}")
        self.answer = answer


def _ok(answer: dict[str, Any]) -> bool:
    return str(answer.get("error_code")).strip() == "0"


def _exists(answer: dict[str, Any]) -> bool:
    message = unicodedata.normalize("NFC", str(answer.get("message") or "")).casefold()
    code = str(answer.get("error_code")).strip()
    return code in {"0", "3", "-3"} and "đã tồn tại" in message


class _Session:
    """Login once, reuse the session until the portal rejects it, then log in again once."""

    def __init__(self, access: PortalAccess, http: httpx.AsyncClient) -> None:
        self.access = access
        self.http = http
        self.session: str | None = None
        self.logins = 0

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "dstcode": self.access.dstcode,
        }

    async def login(self) -> str:
        response = await self.http.post(
            self.access.url + self.access.auth_path,
            json={"username": self.access.username, "password": self.access.password},
            headers=self._headers(),
        )
        answer = response.json()
        if not _ok(answer) or not answer.get("session"):
            raise AdapterError("login", answer)
        self.logins += 1
        self.session = str(answer["session"])
        return self.session

    async def call(
        self, path: str, service: str, madonvi: str, data: Any, *, updating: bool = False
    ) -> dict[str, Any]:
        for attempt in range(2):
            session = self.session or await self.login()
            envelope = {
                "session": session,
                "madonvi": madonvi,
                "service": service,
                "isUpdating": "True" if updating else "False",
                "data": data,
            }
            response = await self.http.post(
                self.access.url + path, json=envelope, headers=self._headers()
            )
            answer: dict[str, Any] = response.json()
            if str(answer.get("error_code")).strip() == "-2" and attempt == 0:
                self.session = None
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(slots=True)
class Change:
    """One status change of one dossier: its header at the new status and the steps to it."""

    code: str
    header: Item
    steps: list[Item]


@dataclass(slots=True)
class _OutboxRow:
    change: Change
    state: str = "pending"  # pending, done, failed


class OpenCpsLikeAdapter:
    """Outbox rows in order per dossier: look up, create or update, then the steps."""

    def __init__(self, access: PortalAccess, http: httpx.AsyncClient, madonvi: str) -> None:
        self._session = _Session(access, http)
        self.access = access
        self.madonvi = madonvi
        self.outbox: list[_OutboxRow] = []
        self.failures: list[str] = []

    def record(self, change: Change) -> None:
        self.outbox.append(_OutboxRow(change))

    async def exists(self, code: str) -> bool:
        answer = await self._session.call(
            self.access.share_path, "TraCuuHoSo", self.madonvi, {"mahoso": code}
        )
        if not _ok(answer):
            raise AdapterError("TraCuuHoSo", answer)
        return bool(answer.get("result"))

    async def _sync_row(self, row: _OutboxRow) -> None:
        change = row.change
        known = await self.exists(change.code)
        path = self.access.integration_path
        answer = await self._session.call(
            path, "DongBoHoSoMC", self.madonvi, [change.header], updating=known
        )
        if not known and _exists(answer):
            answer = await self._session.call(
                path, "DongBoHoSoMC", self.madonvi, [change.header], updating=True
            )
        if not _ok(answer):
            raise AdapterError("DongBoHoSoMC", answer)
        if change.steps:
            answer = await self._session.call(
                path, "CapNhatTienDoHoSoMC", self.madonvi, change.steps
            )
            if not _ok(answer):
                raise AdapterError("CapNhatTienDoHoSoMC", answer)

    async def run_once(self, limit: int = 100) -> None:
        """One scheduler pass over up to `limit` pending rows."""
        failed: set[str] = set()
        for row in [r for r in self.outbox if r.state == "pending"][:limit]:
            if row.change.code in failed:
                row.state = "failed"
                continue
            try:
                await self._sync_row(row)
            except AdapterError as exc:
                row.state = "failed"
                failed.add(row.change.code)
                self.failures.append(str(exc))
            else:
                row.state = "done"


@dataclass(slots=True)
class _Flagged:
    item: Item
    synced: bool = False


@dataclass(slots=True)
class _Dossier:
    header: _Flagged
    acknowledged: bool = False
    steps: list[_Flagged] = field(default_factory=list)


class ChunkedProgressAdapter:
    """Polls what is not synced: headers in one call, then steps in chunks of 10."""

    CHUNK = 10

    def __init__(self, access: PortalAccess, http: httpx.AsyncClient, madonvi: str) -> None:
        self._session = _Session(access, http)
        self.access = access
        self.madonvi = madonvi
        self.dossiers: dict[str, _Dossier] = {}
        self.failures: list[str] = []

    def record(self, change: Change) -> None:
        dossier = self.dossiers.get(change.code)
        if dossier is None:
            dossier = self.dossiers[change.code] = _Dossier(_Flagged(change.header))
        else:
            dossier.header = _Flagged(change.header)
        dossier.steps.extend(_Flagged(step) for step in change.steps)

    @staticmethod
    def _succeeded(answer: dict[str, Any]) -> bool:
        message = unicodedata.normalize("NFC", str(answer.get("message") or "")).casefold()
        return _ok(answer) and "thành công" in message

    async def _send_headers(self, updating: bool, dossiers: list[_Dossier]) -> None:
        if not dossiers:
            return
        answer = await self._session.call(
            self.access.integration_path,
            "DongBoHoSoMC",
            self.madonvi,
            [d.header.item for d in dossiers],
            updating=updating,
        )
        if not self._succeeded(answer):
            self.failures.append(f"DongBoHoSoMC: {answer.get('message')}")
            return
        for dossier in dossiers:
            dossier.header.synced = True
            dossier.acknowledged = True

    async def poll(self) -> None:
        pending = [d for d in self.dossiers.values() if not d.header.synced]
        creates = [d for d in pending if not d.acknowledged]
        updates = [d for d in pending if d.acknowledged]
        await self._send_headers(False, creates)
        await self._send_headers(True, updates)
        rows = [
            s for d in self.dossiers.values() if d.acknowledged for s in d.steps if not s.synced
        ]
        for start in range(0, len(rows), self.CHUNK):
            chunk = rows[start : start + self.CHUNK]
            answer = await self._session.call(
                self.access.integration_path,
                "CapNhatTienDoHoSoMC",
                self.madonvi,
                [row.item for row in chunk],
            )
            if not self._succeeded(answer):
                self.failures.append(f"CapNhatTienDoHoSoMC: {answer.get('message')}")
                return
            for row in chunk:
                row.synced = True


# --- the dossiers both clients send ------------------------------------------------------------

LIFE = (2, 4, 5, 4, 9, 10)
"""Statuses of a full life: received, in process, supplement asked, in process, done, returned."""


def _date(at: datetime) -> str:
    return at.astimezone(LOCAL).strftime("%Y%m%d%H%M%S")


def _header(code: str, n: int, status: int, base: datetime, at: datetime) -> Item:
    """A complete DongBoHoSoMC item, every value in the form the portal keeps it."""
    item: Item = {
        "MaHoSo": code,
        "MaTTHC": "1.004567",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "HT",
        "TenLinhVuc": "Hộ tịch",
        "SoBienNhan": f"BN-{n:04d}",
        "ChuHoSo": "Nguyễn Văn An",
        "LoaiDoiTuong": 1,
        "MaDoiTuong": f"DT-{n}",
        "Email": "an.nguyen@example.vn",
        "SoDienThoai": "0912345678",
        "TrichYeuHoSo": "Đăng ký khai sinh cho con",
        "NgayNopHoSo": _date(base),
        "NgayTiepNhan": _date(base + timedelta(minutes=30)),
        "NgayHenTra": _date(base + timedelta(days=5)),
        "TrangThaiHoSo": status,
        "KenhThucHien": 2 if n % 3 else 1,
        "HinhThuc": "0",
        "DonViXuLy": "Phòng Tư pháp",
        "SoGiayToChuHoSo": "001204012345",
        "HoSoCoThanhPhanSoHoa": 1,
        "TaiKhoanDuocXacThucVoiVNeID": n % 2,
        "DuocThanhToanTrucTuyen": 1,
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "001204012345"}],
        "TaiLieuNop": [
            {
                "TepDinhKemId": f"F-{n}",
                "TenTepDinhKem": "to-khai.pdf",
                "IsDeleted": False,
                "MaThanhPhanHoSo": "TP1",
                "DuongDanTaiTepTin": f"https://dvc.example.gov.vn/files/F-{n}",
                "DuocSoHoa": 1,
                "DuocTaiSuDung": 0,
                "DuocLayTuKhoDMQG": n % 2,
            }
        ],
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": "Lệ phí đăng ký",
                "MaPhiLePhi": "LP01",
                "HinhThucThu": "1",
                "Gia": 8000,
                "LoaiPhiLePhi": "1",
            }
        ],
        "DanhSachGiayToKetQua": [],
    }
    if status >= 9:
        item["NgayKetThucXuLy"] = _date(at)
        item["DanhSachGiayToKetQua"] = [
            {
                "TenGiayTo": "Giấy khai sinh",
                "MaThanhPhanHoSo": "KQ1",
                "GiayToId": f"KQ-{n}",
                "DuongDanTepTinKetQua": f"https://dvc.example.gov.vn/results/KQ-{n}",
                "MaGiayToKetQua": "GKS",
            }
        ]
    if status == 10:
        item["NgayTra"] = _date(at)
    return item


def _step(code: str, status: int, at: datetime, base: datetime, k: int) -> Item:
    return {
        "MaHoSo": code,
        "NguoiXuLy": f"Cán bộ {k % 4 + 1}",
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": _date(at),
        "PhongBanXuLy": "Bộ phận một cửa",
        "NoiDungXuLy": f"Bước {k + 1}: chuyển trạng thái {status}",
        "TrangThai": status,
        "NgayBatDau": _date(base + timedelta(minutes=30)),
        "NgayKetThucTheoQuyDinh": _date(base + timedelta(days=5)),
    }


def dossier_lives(prefix: str, count: int, base: datetime) -> list[list[Change]]:
    """`count` dossiers, each a list of changes (dossier n goes `2 + n % 5` steps into `LIFE`);
    every change's header carries the status its last step reached, as adapters send them."""
    lives: list[list[Change]] = []
    for n in range(count):
        code = f"{prefix}-{n:04d}"
        start = base + timedelta(minutes=7 * n)
        changes: list[Change] = []
        k = 0
        for index, status in enumerate(LIFE[: 2 + n % 5]):
            at = start + timedelta(hours=index + 1)
            steps = [
                _step(code, status, at - timedelta(minutes=10 * (extra + 1)), start, k + extra)
                for extra in reversed(range(1 + (n + index) % 3))
            ]
            k += len(steps)
            changes.append(Change(code, _header(code, n, status, start, at), steps))
        lives.append(changes)
    return lives
