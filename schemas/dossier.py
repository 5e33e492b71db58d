"""Dossier contracts: the portal-shaped items sources send, the normalised record ingest publishes.

Inbound models (`...Event`) use the Public Service Portal's own field names (DongBoHoSoMC and
CapNhatTienDoHoSoMC items) as aliases, tolerate extra fields and accept the loose value types real
case-handling systems send; the normaliser turns them into a strict `DossierRecord`.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# The codes live in `schemas.codes` (the facts contract shares them); re-exported from here,
# where every caller has always found them.
from schemas.codes import (
    FINISHED_STATUSES,
    RECEIVED_STATUSES,
    Channel,
    DossierStatus,
    Timeliness,
)
from schemas.facts import DossierFacts

__all__ = [
    "FINISHED_STATUSES",
    "RECEIVED_STATUSES",
    "Applicant",
    "Attachment",
    "AttachmentEvent",
    "Channel",
    "DossierEvent",
    "DossierFacts",
    "DossierHeader",
    "DossierRecord",
    "DossierStatus",
    "Fee",
    "FeeEvent",
    "IdentityDoc",
    "IdentityDocEvent",
    "ProgressEvent",
    "ProgressStep",
    "RecordKind",
    "ResultDocument",
    "ResultDocumentEvent",
    "Timeliness",
]

# Values that real systems send as numbers, numeric strings or their own words.
Loose = Annotated[str | int, Field(union_mode="left_to_right")]
# Dates: yyyyMMddHHmmss, ISO 8601, dd/MM/yyyy HH:mm:ss, yyyy/MM/dd HH:mm:ss or epoch milliseconds.
LooseDate = Annotated[str | int, Field(union_mode="left_to_right")]
Flag = Annotated[int | str | bool, Field(union_mode="left_to_right")]

_INBOUND = ConfigDict(extra="allow", populate_by_name=False, str_strip_whitespace=True)
_OUTBOUND = ConfigDict(extra="forbid", frozen=True)


class IdentityDocEvent(BaseModel):
    model_config = _INBOUND
    kind: Loose | None = Field(default=None, alias="LoaiDinhDanh")
    number: str | None = Field(default=None, alias="SoDinhDanh", max_length=64)


class AttachmentEvent(BaseModel):
    model_config = _INBOUND
    file_id: Loose | None = Field(default=None, alias="TepDinhKemId")
    file_name: str | None = Field(default=None, alias="TenTepDinhKem")
    deleted: Flag | None = Field(default=None, alias="IsDeleted")
    component_code: str | None = Field(default=None, alias="MaThanhPhanHoSo")
    url: str | None = Field(default=None, alias="DuongDanTaiTepTin")
    digitised: Flag | None = Field(default=None, alias="DuocSoHoa")
    reused: Flag | None = Field(default=None, alias="DuocTaiSuDung")
    from_national_repository: Flag | None = Field(default=None, alias="DuocLayTuKhoDMQG")


class FeeEvent(BaseModel):
    model_config = _INBOUND
    name: str | None = Field(default=None, alias="TenPhiLePhi")
    code: str | None = Field(default=None, alias="MaPhiLePhi")
    collection_method: Loose | None = Field(default=None, alias="HinhThucThu")
    amount: Decimal | None = Field(default=None, alias="Gia", ge=0, max_digits=20)
    fee_type: Loose | None = Field(default=None, alias="LoaiPhiLePhi")


class ResultDocumentEvent(BaseModel):
    model_config = _INBOUND
    name: str | None = Field(default=None, alias="TenGiayTo")
    component_code: str | None = Field(default=None, alias="MaThanhPhanHoSo")
    document_id: Loose | None = Field(default=None, alias="GiayToId")
    url: str | None = Field(default=None, alias="DuongDanTepTinKetQua")
    result_code: str | None = Field(default=None, alias="MaGiayToKetQua")


class DossierEvent(BaseModel):
    """A DongBoHoSoMC item: the dossier header as the portal knows it (DOMAIN.md §1)."""

    model_config = _INBOUND

    dossier_code: str = Field(alias="MaHoSo", min_length=1, max_length=100)
    agency: str | None = Field(
        default=None,
        alias="MaDonVi",
        description="Agency code (madonvi); else the CloudEvent `agency` attribute gives it.",
    )
    procedure_code: str | None = Field(default=None, alias="MaTTHC", max_length=100)
    procedure_name: str | None = Field(default=None, alias="TenTTHC")
    sector_code: str | None = Field(default=None, alias="MaLinhVuc", max_length=100)
    sector_name: str | None = Field(default=None, alias="TenLinhVuc")
    receipt_number: str | None = Field(default=None, alias="SoBienNhan")
    applicant_name: str | None = Field(default=None, alias="ChuHoSo")
    subject_type: Loose | None = Field(default=None, alias="LoaiDoiTuong")
    subject_code: str | None = Field(default=None, alias="MaDoiTuong")
    other_info: str | None = Field(default=None, alias="ThongTinKhac")
    email: str | None = Field(default=None, alias="Email")
    fax: str | None = Field(default=None, alias="Fax")
    phone: str | None = Field(default=None, alias="SoDienThoai")
    summary: str | None = Field(default=None, alias="TrichYeuHoSo")
    received_at: LooseDate | None = Field(default=None, alias="NgayTiepNhan")
    due_at: LooseDate | None = Field(default=None, alias="NgayHenTra")
    returned_at: LooseDate | None = Field(default=None, alias="NgayTra")
    finished_at: LooseDate | None = Field(default=None, alias="NgayKetThucXuLy")
    submitted_at: LooseDate | None = Field(default=None, alias="NgayNopHoSo")
    rejected_at: LooseDate | None = Field(default=None, alias="NgayTuChoi")
    status: Loose = Field(alias="TrangThaiHoSo")
    channel: Loose | None = Field(default=None, alias="KenhThucHien")
    result_info: str | None = Field(default=None, alias="ThongTinTra")
    result_by_post: Flag | None = Field(default=None, alias="HinhThuc")
    handling_unit: str | None = Field(default=None, alias="DonViXuLy")
    note: str | None = Field(default=None, alias="GhiChu")
    applicant_id_number: str | None = Field(default=None, alias="SoGiayToChuHoSo", max_length=64)
    has_digitised_components: Flag | None = Field(default=None, alias="HoSoCoThanhPhanSoHoa")
    vneid_verified: Flag | None = Field(default=None, alias="TaiKhoanDuocXacThucVoiVNeID")
    paid_online: Loose | None = Field(default=None, alias="DuocThanhToanTrucTuyen")
    identities: list[IdentityDocEvent] = Field(
        default_factory=list, alias="DinhDanhCHS", max_length=50
    )
    attachments: list[AttachmentEvent] = Field(
        default_factory=list, alias="TaiLieuNop", max_length=500
    )
    fees: list[FeeEvent] = Field(default_factory=list, alias="DanhSachLePhi", max_length=100)
    supplements: list[dict[str, object]] = Field(
        default_factory=list, alias="DanhSachHoSoBoSung", max_length=100
    )
    results: list[ResultDocumentEvent] = Field(
        default_factory=list, alias="DanhSachGiayToKetQua", max_length=200
    )


class ProgressEvent(BaseModel):
    """A CapNhatTienDoHoSoMC item: one processing step of a dossier."""

    model_config = _INBOUND

    dossier_code: str = Field(alias="MaHoSo", min_length=1, max_length=100)
    agency: str | None = Field(default=None, alias="MaDonVi")
    handler: str | None = Field(default=None, alias="NguoiXuLy")
    handler_title: str | None = Field(default=None, alias="ChucDanh")
    handled_at: LooseDate = Field(alias="ThoiDiemXuLy", description="Required by the portal.")
    department: str | None = Field(default=None, alias="PhongBanXuLy")
    content: str | None = Field(default=None, alias="NoiDungXuLy")
    status: Loose | None = Field(default=None, alias="TrangThai")
    started_at: LooseDate | None = Field(default=None, alias="NgayBatDau")
    due_at: LooseDate | None = Field(default=None, alias="NgayKetThucTheoQuyDinh")


# --- normalised -------------------------------------------------------------------------------


class RecordKind(StrEnum):
    DOSSIER = "dossier"
    PROGRESS = "progress"


class IdentityDoc(BaseModel):
    model_config = _OUTBOUND
    kind: int | None
    number: str


class Attachment(BaseModel):
    model_config = _OUTBOUND
    file_id: str | None = None
    file_name: str | None = None
    deleted: bool = False
    component_code: str | None = None
    url: str | None = None
    digitised: bool = False
    reused: bool = False
    from_national_repository: bool = False


class Fee(BaseModel):
    model_config = _OUTBOUND
    name: str | None = None
    code: str | None = None
    collection_method: str | None = None
    amount: Decimal = Decimal(0)
    fee_type: str | None = None


class ResultDocument(BaseModel):
    model_config = _OUTBOUND
    name: str | None = None
    component_code: str | None = None
    document_id: str | None = None
    url: str | None = None
    result_code: str | None = None


class Applicant(BaseModel):
    """Personal data: moved only to destinations that need it, never logged."""

    model_config = _OUTBOUND
    name: str | None = None
    subject_type: int | None = Field(default=None, ge=1, le=4)
    subject_code: str | None = None
    id_number: str | None = None
    identities: tuple[IdentityDoc, ...] = ()
    email: str | None = None
    phone: str | None = None
    fax: str | None = None
    other_info: str | None = None


class DossierHeader(BaseModel):
    """The dossier as the latest accepted DongBoHoSoMC item described it."""

    model_config = _OUTBOUND
    procedure_code: str | None = None
    procedure_name: str | None = None
    sector_code: str | None = None
    sector_name: str | None = None
    receipt_number: str | None = None
    summary: str | None = Field(default=None, max_length=1000)
    submitted_at: AwareDatetime | None = None
    received_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    returned_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    rejected_at: AwareDatetime | None = None
    channel: Channel | None = None
    result_info: str | None = None
    result_by_post: bool = False
    handling_unit: str | None = None
    note: str | None = None
    has_digitised_components: bool = False
    vneid_verified: bool = False
    paid_online: int | None = Field(default=None, ge=0, le=2)
    applicant: Applicant = Applicant()
    attachments: tuple[Attachment, ...] = ()
    fees: tuple[Fee, ...] = ()
    supplement_requests: int = Field(default=0, ge=0)
    results: tuple[ResultDocument, ...] = ()


class ProgressStep(BaseModel):
    """One processing step (CapNhatTienDoHoSoMC)."""

    model_config = _OUTBOUND
    handler: str | None = Field(default=None, max_length=50)
    handler_title: str | None = None
    handled_at: AwareDatetime
    department: str | None = None
    content: str | None = None
    status: DossierStatus | None = None
    started_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None


class DossierRecord(BaseModel):
    """One accepted change of one dossier, published on the normalised topic keyed by its code.

    `revision` starts at 1 and grows by exactly one with each accepted change of the dossier
    (a dossier that comes back after eviction continues its sequence), so a consumer orders a
    dossier's records and drops stale ones without any other state.
    """

    model_config = _OUTBOUND

    dossier_code: str = Field(min_length=1, max_length=100)
    agency: str | None = Field(description="Agency code (madonvi) in the four-group form.")
    revision: int = Field(ge=1)
    kind: RecordKind
    status: DossierStatus = Field(description="The dossier's status after this change.")
    timeliness: Timeliness = Field(
        description="Indicator 2.1 as of this change (an open dossier is judged by the clock)."
    )
    source: str
    event_id: str
    event_time: AwareDatetime = Field(description="When the source says the change happened.")
    ingested_at: AwareDatetime
    header: DossierHeader | None = Field(default=None, description="Set when kind is dossier.")
    step: ProgressStep | None = Field(default=None, description="Set when kind is progress.")
    facts: DossierFacts = Field(
        description="The dossier's current facts after this change, accumulated over every "
        "accepted header and step: the latest record of a dossier is enough to recompute every "
        "indicator."
    )
