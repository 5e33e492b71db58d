"""Contracts of the facts downstream consumers score: a dossier's current facts, an acknowledgement.

`DossierFacts` rides on every `DossierRecord`: the dossier as govsync knows it after that change,
accumulated over every accepted header and step, so that the latest record of each dossier is
enough to recompute every indicator of DOMAIN.md §2 (the scores service does exactly that).
`SyncAck` is the value of the compacted acknowledgement topics (`govsync.sync.<target>.acked.v1`),
keyed by dossier code: what a destination holds of each dossier.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.codes import Channel, DossierStatus

_OUTBOUND = ConfigDict(extra="forbid", frozen=True)


class DossierFacts(BaseModel):
    """What every scored indicator reads, as of one revision; the latest value of each fact wins.

    A fact a later header leaves out keeps its earlier value; one it sends corrects it (and the
    correction is a new revision). Dates are offset-aware; `None` means "not known".
    """

    model_config = _OUTBOUND

    agency: str | None = Field(description="MaDonVi, as sent (a re-coded dossier moves).")
    procedure_code: str | None = Field(default=None, description="MaTTHC.")
    status: DossierStatus = Field(description="The dossier's status after this change.")
    channel: Channel | None = Field(
        default=None, description="KenhThucHien; None: not known (the portal counts it in person)."
    )
    submitted_at: AwareDatetime | None = Field(default=None, description="NgayNopHoSo.")
    received_at: AwareDatetime | None = Field(
        default=None,
        description="NgayTiepNhan, else the time a received status was first reached: the date "
        "that puts the dossier in a period.",
    )
    due_at: AwareDatetime | None = Field(default=None, description="NgayHenTra (latest sent).")
    legal_limit_days: int | None = Field(
        default=None,
        ge=0,
        description="The procedure's legal time limit (configuration), used when due_at is None.",
    )
    finished_at: AwareDatetime | None = Field(
        default=None, description="NgayKetThucXuLy, else the time status 9 was reached."
    )
    returned_at: AwareDatetime | None = Field(
        default=None, description="NgayTra, else the time status 10 was reached."
    )
    ended_at: AwareDatetime | None = Field(
        default=None,
        description="When processing ended for indicator 2.1: finished (9) before returned (10), "
        "then stopped (8) or refused (3); withdrawn (7) only once received.",
    )
    end_status: DossierStatus | None = Field(
        default=None, description="The status that ended processing (the one `ended_at` is of)."
    )
    supplement_requests: int = Field(
        default=0, ge=0, description="Supplement requests: the most any header listed or seen."
    )
    supplement_seconds: int = Field(
        default=0, ge=0, description="Time spent in completed supplement rounds."
    )
    supplement_since: AwareDatetime | None = Field(
        default=None, description="A supplement request still pending, since when."
    )
    fee_bearing: bool | None = Field(
        default=None,
        description="Some fee of the latest fee list is above 0; None: no fee list was ever sent.",
    )
    paid_online: int | None = Field(
        default=None, ge=0, le=2, description="DuocThanhToanTrucTuyen: 1 national portal, 2 local."
    )
    digitised: bool = Field(
        default=False,
        description="4.3: HoSoCoThanhPhanSoHoa = 1 or a non-deleted TaiLieuNop with DuocSoHoa = 1.",
    )
    attachments: bool = Field(
        default=False, description="4.2: a non-deleted TaiLieuNop component file is attached."
    )
    from_national_repository: bool = Field(
        default=False, description="4.4: a non-deleted TaiLieuNop with DuocLayTuKhoDMQG = 1."
    )
    vneid_verified: bool = Field(default=False, description="4.5b: TaiKhoanDuocXacThucVoiVNeID.")
    result_file: bool = Field(
        default=False, description="4.1: a DanhSachGiayToKetQua entry links a result file."
    )


class SyncAck(BaseModel):
    """What a destination acknowledged of one dossier (the acked topics' value).

    Values written before `header`, `status` and `agency` existed read with their defaults.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    revision: int = Field(ge=1, description="The latest revision the destination acknowledged.")
    received: bool = Field(
        default=False, description="The destination holds the dossier in a received status."
    )
    at: AwareDatetime | None = Field(default=None, description="When it was acknowledged.")
    header: bool = Field(
        default=False,
        description="The portal accepted a DongBoHoSoMC header for the dossier (it holds it).",
    )
    status: DossierStatus | None = Field(default=None, description="The status acknowledged.")
    agency: str | None = Field(default=None, description="The agency code acknowledged.")
