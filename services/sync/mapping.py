"""Pure translation of `DossierRecord`s into what each destination receives.

Portal items use the portal's own field names (DOMAIN.md §1): dates as `yyyyMMddHHmmss` in
Asia/Ho_Chi_Minh, status, channel and subject type as numbers, `HinhThuc` as "0"/"1" and flags as
0/1. Fields without a value are left out rather than sent as null. NDXP receives the normalised
status record without the applicant's personal data, which it does not need (DOMAIN.md §5).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from schemas.dossier import DossierHeader, DossierRecord, ProgressStep, RecordKind
from services.common.dates import LOCAL_TZ
from services.sync.errors import UnmappableRecordError

PORTAL_DATE_FORMAT = "%Y%m%d%H%M%S"

SERVICE_DOSSIER = "DongBoHoSoMC"
SERVICE_PROGRESS = "CapNhatTienDoHoSoMC"
SERVICE_LOOKUP = "TraCuuHoSo"

Item = dict[str, Any]


def portal_date(value: datetime | None) -> str | None:
    """`yyyyMMddHHmmss` in Vietnam's time zone, whatever zone the record carried."""
    if value is None:
        return None
    return value.astimezone(LOCAL_TZ).strftime(PORTAL_DATE_FORMAT)


def _flag(value: bool) -> int:
    return 1 if value else 0


def _amount(value: Decimal) -> int | str:
    # Whole amounts (đồng have no subunit in practice) as numbers; anything else as exact text.
    return int(value) if value == value.to_integral_value() else str(value)


def _compact(item: Item) -> Item:
    return {key: value for key, value in item.items() if value is not None}


def dossier_item(record: DossierRecord) -> Item:
    """The DongBoHoSoMC item for a `kind=dossier` record."""
    header = record.header
    if header is None:
        raise UnmappableRecordError("a dossier record without a header cannot be mapped")
    return _header_item(record.dossier_code, int(record.status), header)


def _header_item(code: str, status: int, header: DossierHeader) -> Item:
    applicant = header.applicant
    return _compact(
        {
            "MaHoSo": code,
            "MaTTHC": header.procedure_code,
            "TenTTHC": header.procedure_name,
            "MaLinhVuc": header.sector_code,
            "TenLinhVuc": header.sector_name,
            "SoBienNhan": header.receipt_number,
            "ChuHoSo": applicant.name,
            "LoaiDoiTuong": applicant.subject_type,
            "MaDoiTuong": applicant.subject_code,
            "ThongTinKhac": applicant.other_info,
            "Email": applicant.email,
            "Fax": applicant.fax,
            "SoDienThoai": applicant.phone,
            "TrichYeuHoSo": header.summary,
            "NgayTiepNhan": portal_date(header.received_at),
            "NgayHenTra": portal_date(header.due_at),
            "NgayTra": portal_date(header.returned_at),
            "NgayKetThucXuLy": portal_date(header.finished_at),
            "NgayNopHoSo": portal_date(header.submitted_at),
            "NgayTuChoi": portal_date(header.rejected_at),
            "TrangThaiHoSo": status,
            "KenhThucHien": int(header.channel) if header.channel is not None else None,
            "ThongTinTra": header.result_info,
            "HinhThuc": "1" if header.result_by_post else "0",
            "DonViXuLy": header.handling_unit,
            "GhiChu": header.note,
            "SoGiayToChuHoSo": applicant.id_number,
            "HoSoCoThanhPhanSoHoa": _flag(header.has_digitised_components),
            "TaiKhoanDuocXacThucVoiVNeID": _flag(header.vneid_verified),
            "DuocThanhToanTrucTuyen": header.paid_online,
            "DinhDanhCHS": [
                _compact({"LoaiDinhDanh": doc.kind, "SoDinhDanh": doc.number})
                for doc in applicant.identities
            ],
            "TaiLieuNop": [
                _compact(
                    {
                        "TepDinhKemId": a.file_id,
                        "TenTepDinhKem": a.file_name,
                        "IsDeleted": a.deleted,
                        "MaThanhPhanHoSo": a.component_code,
                        "DuongDanTaiTepTin": a.url,
                        "DuocSoHoa": _flag(a.digitised),
                        "DuocTaiSuDung": _flag(a.reused),
                        "DuocLayTuKhoDMQG": _flag(a.from_national_repository),
                    }
                )
                for a in header.attachments
            ],
            "DanhSachLePhi": [
                _compact(
                    {
                        "TenPhiLePhi": fee.name,
                        "MaPhiLePhi": fee.code,
                        "HinhThucThu": fee.collection_method,
                        "Gia": _amount(fee.amount),
                        "LoaiPhiLePhi": fee.fee_type,
                    }
                )
                for fee in header.fees
            ],
            "DanhSachGiayToKetQua": [
                _compact(
                    {
                        "TenGiayTo": doc.name,
                        "MaThanhPhanHoSo": doc.component_code,
                        "GiayToId": doc.document_id,
                        "DuongDanTepTinKetQua": doc.url,
                        "MaGiayToKetQua": doc.result_code,
                    }
                )
                for doc in header.results
            ],
        }
    )


def progress_item(record: DossierRecord) -> Item:
    """The CapNhatTienDoHoSoMC item for a `kind=progress` record."""
    step = record.step
    if step is None:
        raise UnmappableRecordError("a progress record without a step cannot be mapped")
    return _step_item(record.dossier_code, step)


def _step_item(code: str, step: ProgressStep) -> Item:
    return _compact(
        {
            "MaHoSo": code,
            "NguoiXuLy": step.handler,
            "ChucDanh": step.handler_title,
            "ThoiDiemXuLy": portal_date(step.handled_at),
            "PhongBanXuLy": step.department,
            "NoiDungXuLy": step.content,
            "TrangThai": int(step.status) if step.status is not None else None,
            "NgayBatDau": portal_date(step.started_at),
            "NgayKetThucTheoQuyDinh": portal_date(step.due_at),
        }
    )


def portal_service(record: DossierRecord) -> str:
    return SERVICE_DOSSIER if record.kind is RecordKind.DOSSIER else SERVICE_PROGRESS


def portal_item(record: DossierRecord) -> Item:
    if record.kind is RecordKind.DOSSIER:
        return dossier_item(record)
    return progress_item(record)


def ndxp_status(record: DossierRecord) -> Item:
    """The status record NDXP receives: the normalised record minus the applicant."""
    body: Item = record.model_dump(mode="json", exclude={"header": {"applicant"}})
    return body


def idempotency_key(code: str, revision: int, target: str) -> str:
    """Same dossier, revision and destination: the same key, however often it is sent."""
    return f"{code}:{revision}:{target}"
