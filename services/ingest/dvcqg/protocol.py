"""The portal adapter protocol as the intake reads and answers it (DOMAIN.md §1). Pure.

A call is the portal's envelope `{session, madonvi, service, isUpdating, data}`; each item of a
write becomes one CloudEvent for the dossier topic, stamped with the moment it arrived. The portal
applies calls in the order they arrive, whatever dates the items carry; the arrival time as the
event time makes ingest do the same. Answers are the portal's `{error_code, message}`, with
`errors` (item, field, problem) added for machines; "thành công" in the message for the adapter
that looks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.cloudevents import EventType
from services.common.dates import LOCAL_TZ, from_ms
from services.ingest.dossiers.normalise import AGENCY_CODE
from services.ingest.dossiers.state import DossierState
from services.ingest.dvcqg.accounts import Account
from services.ingest.errors import (
    AccountAgencyNotAllowedError,
    MalformedCallError,
    PortalCallRefusedError,
    SessionRefusedError,
)

SERVICE_DOSSIER = "DongBoHoSoMC"
SERVICE_PROGRESS = "CapNhatTienDoHoSoMC"
SERVICE_LOOKUP = "TraCuuHoSo"
WRITES: dict[str, EventType] = {
    SERVICE_DOSSIER: EventType.DOSSIER,
    SERVICE_PROGRESS: EventType.PROGRESS,
}

# `error_code`s: 0 and the portal's own -2 (session) and 3 (invalid data), as adapters branch on
# them; -1 is "busy, send again" (sync's own client retries it); 5 names a forbidden agency.
OK = 0
RETRY = -1
SESSION = -2
INVALID = 3
FORBIDDEN = 5
SUCCESS = "Thành công"
LOGIN_OK = "Đăng nhập thành công"
LOGIN_REFUSED = "Sai tên đăng nhập hoặc mật khẩu"
BUSY = "Hệ thống đang bận, gửi lại sau (the events could not be stored; send the call again)"
PORTAL_DATE = "%Y%m%d%H%M%S"


@dataclass(frozen=True, slots=True)
class Call:
    """A portal envelope, read."""

    session: object
    madonvi: str
    service: str
    updating: bool
    data: Any
    body: Mapping[str, Any]


def answer(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"error_code": code, "message": message, **extra}


def refusal(error: PortalCallRefusedError) -> dict[str, Any]:
    """The answer to a call refused as a whole."""
    if isinstance(error, SessionRefusedError):
        return answer(SESSION, f"Phiên làm việc không hợp lệ hoặc đã hết hạn ({error})")
    if isinstance(error, AccountAgencyNotAllowedError):
        return answer(FORBIDDEN, f"Không được phép ghi cho đơn vị này ({error})")
    return answer(INVALID, f"Dữ liệu không hợp lệ ({error})")


def _flag(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"true", "1"}


def read_call(body: object) -> Call:
    """The envelope's parts; raises `MalformedCallError` naming what is wrong."""
    if not isinstance(body, Mapping):
        raise MalformedCallError("the body is not the portal's envelope (a JSON object)")
    service = body.get("service")
    if not isinstance(service, str) or not service.strip():
        raise MalformedCallError("service is missing")
    madonvi = body.get("madonvi")
    if not isinstance(madonvi, str) or not madonvi.strip():
        raise MalformedCallError("madonvi is missing")
    code = madonvi.strip().upper()
    return Call(
        session=body.get("session"),
        madonvi=code,
        service=service.strip(),
        updating=_flag(body.get("isUpdating")),
        data=body.get("data"),
        body=body,
    )


def check_agency(account: Account, code: str, *, where: str = "madonvi") -> None:
    """Checked once the session is: the form of a code says nothing to an unknown caller."""
    if not AGENCY_CODE.match(code):
        raise MalformedCallError(f"{where} is not an agency code of the form 000.00.00.G22")
    if code not in account.agencies:
        raise AccountAgencyNotAllowedError(
            f"{where} {code} is not an agency this account may write"
        )


def write_items(call: Call, *, max_items: int) -> tuple[EventType, list[Any]]:
    """The event type and the items of a DongBoHoSoMC or CapNhatTienDoHoSoMC call."""
    event_type = WRITES.get(call.service)
    if event_type is None:
        supported = ", ".join(WRITES)
        raise MalformedCallError(
            f"service {call.service[:50]!r} is not served at /api/integration ({supported})"
        )
    if not isinstance(call.data, list) or not call.data:
        raise MalformedCallError("data must be a non-empty list of items")
    if len(call.data) > max_items:
        raise MalformedCallError(
            f"data holds {len(call.data)} items, at most {max_items} are accepted in one call:"
            " send them in smaller calls"
        )
    return event_type, call.data


def item_label(index: int, item: object) -> str:
    """`data[2] (MaHoSo X)`: names the item, quoting its code only (a code, not personal data)."""
    code = None
    if isinstance(item, Mapping):
        code = next(
            (v for k, v in item.items() if isinstance(k, str) and k.strip().lower() == "mahoso"),
            None,
        )
    if isinstance(code, str) and code.strip() and len(code) <= 100:
        return f"data[{index}] (MaHoSo {code.strip()})"
    return f"data[{index}]"


def cloudevent(
    item: Any, *, event_id: str, source: str, event_type: EventType, agency: str, now: datetime
) -> dict[str, Any]:
    """One item as the structured-mode CloudEvent the dossier topic carries."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type.value,
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        "agency": agency,
        "data": item,
    }


def lookup_code(call: Call) -> str:
    """TraCuuHoSo's `mahoso`: top-level or in `data` (an object or a one-item list)."""
    candidates: list[object] = [call.body.get("mahoso"), call.body.get("MaHoSo")]
    data = call.data[0] if isinstance(call.data, list) and call.data else call.data
    if isinstance(data, Mapping):
        candidates += [v for k, v in data.items() if isinstance(k, str) and k.lower() == "mahoso"]
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise MalformedCallError("TraCuuHoSo needs mahoso")


def _date(ms: int) -> str | None:
    return from_ms(ms).astimezone(LOCAL_TZ).strftime(PORTAL_DATE) if ms else None


def lookup_row(code: str, state: DossierState) -> dict[str, Any]:
    """What govsync knows of a dossier, in the portal's field names (absent values left out)."""
    row: dict[str, Any] = {
        "MaHoSo": code,
        "MaDonVi": state.agency,
        "TrangThaiHoSo": state.status or None,
        "MaTTHC": state.procedure,
        "KenhThucHien": state.channel or None,
        "NgayTiepNhan": _date(state.received_ms),
        "NgayHenTra": _date(state.due_ms),
    }
    return {key: value for key, value in row.items() if value is not None}
