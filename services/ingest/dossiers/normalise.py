"""Normalising a validated dossier event: its values made canonical (dates, codes, Unicode text,
agency codes) into the header or the step of a `DossierRecord`.

Nothing here does I/O or reads a clock: the caller passes what it needs, so every rule is
tested with a table of inputs and expected outputs.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

import orjson

from schemas.dossier import (
    Channel,
    DossierEvent,
    DossierHeader,
    DossierStatus,
    ProgressEvent,
    ProgressStep,
)
from services.common import dates
from services.common.dates import LOCAL_TZ
from services.ingest.errors import InvalidCodeError, InvalidDateError, InvalidUrlError

# Plausible bounds: older dates are typos, later ones are misread formats.
_MIN_YEAR, _MAX_YEAR = 1990, 2100

# DOMAIN.md §3: four dot-separated groups, the last a letter and two digits.
AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
_CODE_LIKE = re.compile(r"^[0-9A-Za-z]+(?:\.[0-9A-Za-z]+){2,}$")
# C0 and C1 controls except tab and newline, plus the zero-width and bidi marks that hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


# --- values -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192, typed=True)
def _cached_dt(value: str | int, field: str) -> datetime:
    return _parse_datetime(value, field=field)


def parse_datetime(value: str | int, *, field: str) -> datetime:
    return _cached_dt(value, field)


def _parse_datetime(value: str | int, *, field: str) -> datetime:
    """Read any date format real systems send (`services.common.dates.DOSSIER_DATES`); local
    times are Asia/Ho_Chi_Minh, the result is too.

    Integers and short digit strings are epoch milliseconds; 14 and 8 digits are the portal's
    `yyyyMMddHHmmss` and `yyyyMMdd`. A date that does not exist is an error, never a guess.
    """
    if isinstance(value, bool):
        raise InvalidDateError(f"{field} is a boolean, not a date")
    if isinstance(value, int) and not -(10**20) < value < 10**20:
        # str() of a huge integer raises; no date has that many digits anyway.
        raise InvalidDateError(f"{field} is not a valid date in any accepted format")
    text = str(value).strip()
    if not text:
        raise InvalidDateError(f"{field} is empty")
    try:
        # With ISO 8601 among the forms, a text in none of them raises rather than giving None.
        parsed = dates.parse(text, dates.DOSSIER_DATES)
        if parsed is None:  # pragma: no cover - see above
            raise ValueError("in no form")
        # An offset can carry year 1 or 9999 out of datetime's range.
        local = parsed.astimezone(LOCAL_TZ)
    except (ValueError, OverflowError, OSError):
        raise InvalidDateError(f"{field} is not a valid date in any accepted format") from None
    if not _MIN_YEAR <= local.year <= _MAX_YEAR:
        raise InvalidDateError(f"{field} is outside {_MIN_YEAR}-{_MAX_YEAR}")
    return local


def optional_datetime(value: str | int | None, *, field: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_datetime(value, field=field)


def clean_text(value: str | None, *, max_chars: int) -> str | None:
    """NFC, no control characters, trimmed and bounded; empty text becomes None."""
    if value is None:
        return None
    # Most text is printable (so holds none of `_CONTROL`, all of which are Cc or Cf) and already
    # NFC: Vietnamese as case-handling systems send it is precomposed.
    if value.isprintable() and (value.isascii() or unicodedata.is_normalized("NFC", value)):
        text = value.strip()
    else:
        # Controls go first: one between a letter and its combining mark would otherwise keep
        # the pair decomposed.
        text = unicodedata.normalize("NFC", _CONTROL.sub("", value)).strip()
    return text[:max_chars] if text else None


def parse_code(
    value: str | int,
    *,
    field: str,
    allowed: type[DossierStatus] | type[Channel],
    vocabulary: Mapping[str, int],
) -> int:
    """A code sent as a number, a numeric string or a word of the source's own vocabulary."""
    if isinstance(value, bool):
        raise InvalidCodeError(f"{field} is a boolean, not a code")
    code: int | None = None
    if isinstance(value, int):
        code = value
    else:
        text = value.strip()
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        if text.lstrip("-").isdecimal() and len(text) < 6:
            code = int(text)
        else:
            code = vocabulary.get(unicodedata.normalize("NFC", text).lower().replace(" ", "_"))
            if code is None:
                raise InvalidCodeError(f"{field} is a word no vocabulary of this source maps")
    try:
        return int(allowed(code))
    except ValueError:
        raise InvalidCodeError(f"{field} {code} is not a known code") from None


def parse_flag(value: int | str | bool | None) -> bool:
    """`1`, `"1"`, `true`, `"True"` are true; anything else, missing included, is false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "co", "có"}


def _text_id(value: str | int | None) -> str | None:
    return None if value is None else str(value).strip() or None


def _small_int(value: str | int | None, *, field: str, low: int, high: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidCodeError(f"{field} is not a number") from None
    if not low <= number <= high:
        raise InvalidCodeError(f"{field} {number} is outside {low}-{high}")
    return number


# Names that resolve only inside a network, never on the Internet the portal fetches from.
_INTERNAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".lan", ".home.arpa")
_NUMERIC_LABEL = re.compile(r"^(?:\d+|0x[0-9a-f]*)$")


def _internal_host(host: str) -> bool:
    """Loopback, private, link-local or otherwise non-global, by address or by name.

    By the text alone (no DNS lookup here): an IP literal must be global; a name must have a
    dot, no internal suffix and no numeric last label (`127.1`, `2130706433` and `0x7f.1` are
    addresses to most HTTP clients).
    """
    name = host.lower().rstrip(".")
    try:
        return not ipaddress.ip_address(name).is_global
    except ValueError:
        pass
    if name == "localhost" or name.endswith(_INTERNAL_SUFFIXES) or "." not in name:
        return True
    return bool(_NUMERIC_LABEL.match(name.rsplit(".", 1)[1]))


def file_url(value: str | None, *, field: str, internal: bool) -> str | None:
    """A file link the portal will be sent: http or https, no credentials, and a public host
    unless `internal` (configuration) allows others. Never quoted in the error."""
    text = clean_text(value, max_chars=2000)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
        credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise InvalidUrlError(f"{field} is not a URL") from None
    if parts.scheme.lower() not in ("https", "http") or not host:
        raise InvalidUrlError(f"{field} is not an http or https URL")
    if credentials:
        raise InvalidUrlError(f"{field} carries credentials")
    if not internal and _internal_host(host):
        raise InvalidUrlError(f"{field} names an internal, loopback or link-local host")
    return text


def validate_agency_code(value: str, *, field: str) -> str:
    """The four-group form, validated; an unknown but well-formed code is kept as sent."""
    code = value.strip().upper()
    if not AGENCY_CODE.match(code):
        raise InvalidCodeError(f"{field} is not an agency code of the form 000.00.00.G22")
    return code


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vocabularies:
    status: Mapping[str, int]
    channel: Mapping[str, int]


@dataclass(slots=True)  # not frozen: one per event (see `decide.Decision`)
class NormalisedDossier:
    agency: str | None
    status: DossierStatus
    header: DossierHeader
    header_json: bytes
    """`header` as `model_dump_json` writes it, from the values it was validated from."""
    sent: frozenset[str] = frozenset()
    """Which of the yes/no facts the item sent (`SENT_FLAGS`): the header model reads a flag
    left out as false, but a fact a header leaves out keeps its earlier value."""


@dataclass(slots=True)  # not frozen: one per event (see `decide.Decision`)
class NormalisedProgress:
    agency: str | None
    step: ProgressStep


def resolve_agency(data_agency: str | None, hint: str | None) -> str | None:
    """The agency code from the data, else from the envelope's `agency` attribute."""
    for field, value in (("MaDonVi", data_agency), ("agency", hint)):
        if value is not None and value.strip():
            return validate_agency_code(value, field=field)
    return None


def _handling_unit(value: str | None, max_chars: int) -> str | None:
    text = clean_text(value, max_chars=max_chars)
    if text is not None and _CODE_LIKE.match(text):
        return validate_agency_code(text, field="DonViXuLy")
    return text


_MOMENTS = (
    ("submitted_at", "NgayNopHoSo"),
    ("received_at", "NgayTiepNhan"),
    ("due_at", "NgayHenTra"),
    ("returned_at", "NgayTra"),
    ("finished_at", "NgayKetThucXuLy"),
    ("rejected_at", "NgayTuChoi"),
)
"""The header's dates, in its field order, with the portal's names."""


def _decimal_text(value: object) -> str:
    """A fee amount as pydantic writes a `Decimal` in JSON: its text."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def normalise_dossier(
    event: DossierEvent,
    *,
    vocabularies: Vocabularies,
    agency_hint: str | None,
    max_chars: int,
    internal_urls: bool = False,
) -> NormalisedDossier:
    """A DongBoHoSoMC item in any dialect to the canonical header.

    File links (`DuongDanTaiTepTin`, `DuongDanTepTinKetQua`) go to the portal as they are, so
    only public http(s) links pass, unless `internal_urls` (configuration) allows internal hosts.
    """

    def text(value: str | None, limit: int = max_chars) -> str | None:
        if value is None:  # most optional fields: no call below
            return None
        return clean_text(value, max_chars=limit if limit < max_chars else max_chars)

    status = DossierStatus(
        parse_code(
            event.status,
            field="TrangThaiHoSo",
            allowed=DossierStatus,
            vocabulary=vocabularies.status,
        )
    )
    channel = (
        Channel(
            parse_code(
                event.channel,
                field="KenhThucHien",
                allowed=Channel,
                vocabulary=vocabularies.channel,
            )
        )
        if event.channel is not None and str(event.channel).strip()
        else None
    )
    # The header's values in `DossierHeader`'s shape and field order, each of its final type: one
    # validation of the whole tree checks them (the nested models in pydantic-core, not built one
    # by one), and the same values give the header's JSON (`header_json`).
    values = {
        "procedure_code": text(event.procedure_code, 100),
        "procedure_name": text(event.procedure_name),
        "sector_code": text(event.sector_code, 100),
        "sector_name": text(event.sector_name),
        "receipt_number": text(event.receipt_number, 100),
        "summary": text(event.summary, 1000),
        **{name: optional_datetime(getattr(event, name), field=alias) for name, alias in _MOMENTS},
        "channel": channel,
        "result_info": text(event.result_info),
        "result_by_post": parse_flag(event.result_by_post),
        "handling_unit": _handling_unit(event.handling_unit, max_chars),
        "note": text(event.note),
        "has_digitised_components": parse_flag(event.has_digitised_components),
        "vneid_verified": parse_flag(event.vneid_verified),
        "paid_online": _small_int(event.paid_online, field="DuocThanhToanTrucTuyen", low=0, high=2),
        "applicant": {
            "name": text(event.applicant_name, 500),
            "subject_type": _small_int(event.subject_type, field="LoaiDoiTuong", low=1, high=4),
            "subject_code": text(event.subject_code, 100),
            "id_number": text(event.applicant_id_number, 64),
            "identities": [
                {
                    "kind": _small_int(doc.kind, field="DinhDanhCHS.LoaiDinhDanh", low=0, high=99),
                    "number": doc.number.strip(),
                }
                for doc in event.identities
                if doc.number and doc.number.strip()
            ],
            "email": text(event.email, 320),
            "phone": text(event.phone, 50),
            "fax": text(event.fax, 50),
            "other_info": text(event.other_info),
        },
        "attachments": [
            {
                "file_id": _text_id(a.file_id),
                "file_name": text(a.file_name, 500),
                "deleted": parse_flag(a.deleted),
                "component_code": text(a.component_code, 100),
                "url": file_url(
                    a.url, field="TaiLieuNop.DuongDanTaiTepTin", internal=internal_urls
                ),
                "digitised": parse_flag(a.digitised),
                "reused": parse_flag(a.reused),
                "from_national_repository": parse_flag(a.from_national_repository),
            }
            for a in event.attachments
        ],
        "fees": [
            {
                "name": text(f.name, 500),
                "code": text(f.code, 100),
                "collection_method": _text_id(f.collection_method),
                "amount": f.amount if f.amount is not None else Decimal(0),
                "fee_type": _text_id(f.fee_type),
            }
            for f in event.fees
        ],
        "supplement_requests": len(event.supplements),
        "results": [
            {
                "name": text(r.name, 500),
                "component_code": text(r.component_code, 100),
                "document_id": _text_id(r.document_id),
                "url": file_url(
                    r.url,
                    field="DanhSachGiayToKetQua.DuongDanTepTinKetQua",
                    internal=internal_urls,
                ),
                "result_code": text(r.result_code, 100),
            }
            for r in event.results
        ],
    }
    return NormalisedDossier(
        agency=resolve_agency(event.agency, agency_hint),
        status=status,
        header=DossierHeader.model_validate(values),
        header_json=orjson.dumps(values, default=_decimal_text),
        sent=frozenset(name for name in SENT_FLAGS if _is_sent(getattr(event, SENT_FLAGS[name]))),
    )


SENT_FLAGS = {
    "HoSoCoThanhPhanSoHoa": "has_digitised_components",
    "TaiKhoanDuocXacThucVoiVNeID": "vneid_verified",
}
"""The yes/no facts whose absence must not read as "no": portal name to the event's field."""


def _is_sent(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def normalise_progress(
    event: ProgressEvent, *, vocabularies: Vocabularies, agency_hint: str | None, max_chars: int
) -> NormalisedProgress:
    """A CapNhatTienDoHoSoMC item to a processing step; the portal requires its date."""
    status = (
        DossierStatus(
            parse_code(
                event.status,
                field="TrangThai",
                allowed=DossierStatus,
                vocabulary=vocabularies.status,
            )
        )
        if event.status is not None and str(event.status).strip()
        else None
    )
    step = ProgressStep(
        handler=clean_text(event.handler, max_chars=50),
        handler_title=clean_text(event.handler_title, max_chars=200),
        handled_at=parse_datetime(event.handled_at, field="ThoiDiemXuLy"),
        department=clean_text(event.department, max_chars=500),
        content=clean_text(event.content, max_chars=max_chars),
        status=status,
        started_at=optional_datetime(event.started_at, field="NgayBatDau"),
        due_at=optional_datetime(event.due_at, field="NgayKetThucTheoQuyDinh"),
    )
    return NormalisedProgress(agency=resolve_agency(event.agency, agency_hint), step=step)
