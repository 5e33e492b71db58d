"""DossierRecord -> portal items and NDXP bodies: field names, formats and codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from schemas.dossier import (
    Applicant,
    Attachment,
    Channel,
    DossierHeader,
    DossierRecord,
    DossierStatus,
    Fee,
    IdentityDoc,
    ProgressStep,
    RecordKind,
)
from services.sync.mapping import (
    dossier_item,
    idempotency_key,
    ndxp_status,
    portal_date,
    portal_item,
    portal_service,
    progress_item,
)
from tests.support.records import dossier_record

AT = datetime(2025, 7, 1, 1, 2, 3, tzinfo=UTC)


def _record(kind: RecordKind = RecordKind.DOSSIER, **header: Any) -> DossierRecord:
    return dossier_record(
        "HS-1",
        2,
        kind,
        DossierStatus.IN_PROCESS,
        agency="000.00.10.H29",
        header=DossierHeader(**header),
        step=ProgressStep(
            handler="Cán bộ", handled_at=AT, status=DossierStatus.IN_PROCESS, due_at=AT
        ),
        source="src",
        event_id="e1",
        at=AT,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(AT, "20250701080203", id="utc-to-vietnam"),
        pytest.param(
            datetime(2025, 7, 1, 8, 2, 3, tzinfo=timezone(timedelta(hours=7))),
            "20250701080203",
            id="already-vietnam",
        ),
        pytest.param(datetime(2025, 12, 31, 20, 0, tzinfo=UTC), "20260101030000", id="next-day"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_portal_date(value: datetime | None, expected: str | None) -> None:
    assert portal_date(value) == expected


@pytest.mark.parametrize(
    ("header", "field", "expected"),
    [
        pytest.param({}, "TrangThaiHoSo", 4, id="status-from-record-as-number"),
        pytest.param({"channel": Channel.ONLINE}, "KenhThucHien", 2, id="channel-number"),
        pytest.param({"result_by_post": True}, "HinhThuc", "1", id="by-post-text-1"),
        pytest.param({}, "HinhThuc", "0", id="by-post-text-0"),
        pytest.param({"has_digitised_components": True}, "HoSoCoThanhPhanSoHoa", 1, id="flag-1"),
        pytest.param({}, "TaiKhoanDuocXacThucVoiVNeID", 0, id="flag-0"),
        pytest.param({"paid_online": 2}, "DuocThanhToanTrucTuyen", 2, id="paid-gateway"),
        pytest.param({"received_at": AT}, "NgayTiepNhan", "20250701080203", id="received"),
        pytest.param({"due_at": AT}, "NgayHenTra", "20250701080203", id="due"),
        pytest.param({"rejected_at": AT}, "NgayTuChoi", "20250701080203", id="rejected"),
        pytest.param(
            {"applicant": Applicant(name="Trần Thị B", subject_type=2)},
            "LoaiDoiTuong",
            2,
            id="subject-type",
        ),
        pytest.param(
            {"applicant": Applicant(id_number="001203004567")},
            "SoGiayToChuHoSo",
            "001203004567",
            id="id-number",
        ),
        pytest.param(
            {"applicant": Applicant(identities=(IdentityDoc(kind=1, number="001203004567"),))},
            "DinhDanhCHS",
            [{"LoaiDinhDanh": 1, "SoDinhDanh": "001203004567"}],
            id="identities",
        ),
        pytest.param(
            {"fees": (Fee(name="Lệ phí", amount=Decimal("50000")),)},
            "DanhSachLePhi",
            [{"TenPhiLePhi": "Lệ phí", "Gia": 50000}],
            id="fee-whole",
        ),
        pytest.param(
            {"fees": (Fee(amount=Decimal("12.5")),)},
            "DanhSachLePhi",
            [{"Gia": "12.5"}],
            id="fee-fraction-exact",
        ),
        pytest.param(
            {"attachments": (Attachment(file_id="7", digitised=True),)},
            "TaiLieuNop",
            [
                {
                    "TepDinhKemId": "7",
                    "IsDeleted": False,
                    "DuocSoHoa": 1,
                    "DuocTaiSuDung": 0,
                    "DuocLayTuKhoDMQG": 0,
                }
            ],
            id="attachment",
        ),
    ],
)
def test_dossier_item_fields(header: dict[str, Any], field: str, expected: object) -> None:
    assert dossier_item(_record(**header))[field] == expected


def test_dossier_item_leaves_out_empty_fields() -> None:
    item = dossier_item(_record())
    assert item["MaHoSo"] == "HS-1"
    assert "ChuHoSo" not in item
    assert "NgayTra" not in item
    assert None not in item.values()


def test_progress_item() -> None:
    record = _record(RecordKind.PROGRESS)
    assert portal_service(record) == "CapNhatTienDoHoSoMC"
    assert progress_item(record) == {
        "MaHoSo": "HS-1",
        "NguoiXuLy": "Cán bộ",
        "ThoiDiemXuLy": "20250701080203",
        "TrangThai": 4,
        "NgayKetThucTheoQuyDinh": "20250701080203",
    }
    assert portal_item(record) == progress_item(record)


def test_ndxp_status_leaves_out_the_applicant() -> None:
    body = ndxp_status(_record(applicant=Applicant(name="Trần Thị B", phone="0912345678")))
    assert body["dossier_code"] == "HS-1"
    assert body["revision"] == 2
    assert body["status"] == 4
    assert "applicant" not in body["header"]
    assert "0912345678" not in str(body)


def test_mapping_refuses_a_record_of_the_other_kind() -> None:
    with pytest.raises(ValueError, match="header"):
        dossier_item(_record(RecordKind.PROGRESS))
    with pytest.raises(ValueError, match="step"):
        progress_item(_record())


def test_idempotency_key() -> None:
    assert idempotency_key("HS-1", 3, "portal") == "HS-1:3:portal"
