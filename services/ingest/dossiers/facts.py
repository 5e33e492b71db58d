"""A dossier's facts: merged into its state from every accepted header and step, and read out as
`CurrentFacts`, the contract's `DossierFacts` that every record carries.

Pure. The rule of the merge is "the latest value of each fact wins, and a fact an item leaves
out keeps its earlier value" (issue 12, finding 3): a header completes or corrects the agency,
channel, procedure, dates, fees, payment, digitised components, attachments, VNeID and result
file; a step brings its status and, when no header has named one, the agency.

    fact                     from
    -----------------------  ----------------------------------------------------------------
    agency                   the latest header that names one (MaDonVi, else the envelope's
                             `agency`): a re-coded dossier moves; a step only fills a gap
    procedure, channel       the latest header that sends them (MaTTHC, KenhThucHien)
    dates                    the latest header that sends each (NgayNopHoSo, NgayTiepNhan,
                             NgayHenTra, NgayKetThucXuLy, NgayTra, NgayTuChoi); reception,
                             finish and return fall back on the time the status was reached
    status, supplements,     the status history (`state.with_change`): every accepted header's
    end                      and step's status at its time, in time order whatever the order
                             of arrival, so a supplement request reported late still counts
    supplement requests      the most any header listed, or the rounds the history shows
    fee_bearing              the latest fee list sent (DanhSachLePhi; none sent: unknown)
    paid_online              the latest DuocThanhToanTrucTuyen sent
    digitised                the latest HoSoCoThanhPhanSoHoa sent, or a non-deleted DuocSoHoa
                             attachment in the latest attachment list (TaiLieuNop)
    attachments, national    the latest attachment list sent: a non-deleted file, one with
    repository               DuocLayTuKhoDMQG
    vneid_verified           the latest TaiKhoanDuocXacThucVoiVNeID sent
    result_file              the latest result list (DanhSachGiayToKetQua): a linked file
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.codes import Channel, DossierStatus
from schemas.facts import DossierFacts
from services.common.dates import to_ms
from services.common.indicators import is_received
from services.ingest.dossiers.normalise import NormalisedDossier, NormalisedProgress
from services.ingest.dossiers.state import (
    DossierState,
    Flag,
    history_entries,
    interned,
    with_change,
    with_newest,
)

# Plain ints: an enum member's lookup costs more than the comparison it serves.
_SUPPLEMENT = int(DossierStatus.SUPPLEMENT_REQUESTED)
_WITHDRAWN = int(DossierStatus.WITHDRAWN)
_FINISHED = int(DossierStatus.FINISHED)
_RETURNED = int(DossierStatus.RETURNED)
_STOPPED = int(DossierStatus.STOPPED)
_REJECTED = int(DossierStatus.REJECTED)
_DATES = (
    ("submitted_at", "submitted_ms"),
    ("received_at", "received_ms"),
    ("due_at", "due_ms"),
    ("finished_at", "finished_ms"),
    ("returned_at", "returned_ms"),
    ("rejected_at", "rejected_ms"),
)


def _set(flags: int, bit: int, on: bool) -> int:
    return flags | bit if on else flags & ~bit


def apply_header(
    state: DossierState, dossier: NormalisedDossier, at_ms: int, *, lower_bound: bool
) -> None:
    """Merge an accepted DongBoHoSoMC item into `state` (which the caller owns)."""
    header = dossier.header
    state.agency = interned(dossier.agency) or state.agency
    state.procedure = interned(header.procedure_code) or state.procedure
    if header.channel is not None:
        state.channel = int(header.channel)
    for name, field in _DATES:
        value = getattr(header, name)
        if value is not None:
            setattr(state, field, to_ms(value))
    flags = state.flags
    if "HoSoCoThanhPhanSoHoa" in dossier.sent:
        flags = _set(flags, Flag.DIGITISED_FLAG, header.has_digitised_components)
    if "TaiKhoanDuocXacThucVoiVNeID" in dossier.sent:
        flags = _set(flags, Flag.VNEID, header.vneid_verified)
    if header.attachments:
        kept = [a for a in header.attachments if not a.deleted]
        flags = _set(flags, Flag.ATTACHED, bool(kept))
        flags = _set(flags, Flag.ATTACHED_DIGITISED, any(a.digitised for a in kept))
        flags = _set(flags, Flag.ATTACHED_NATIONAL, any(a.from_national_repository for a in kept))
    if header.fees:
        flags |= Flag.FEES_KNOWN
        flags = _set(flags, Flag.FEE_BEARING, any(f.amount > 0 for f in header.fees))
    if header.results:
        flags = _set(flags, Flag.RESULT_FILE, any(r.url for r in header.results))
    state.flags = flags
    if header.paid_online is not None:
        state.paid_online = header.paid_online
    state.listed_supplements = max(state.listed_supplements, header.supplement_requests)
    # An item whose time is only a lower bound (a bare item at a status with no date of its own)
    # is, once accepted, the newest word on the status: it reports a change that came after
    # everything already applied.
    if lower_bound:
        state.history = with_newest(state.history, at_ms, int(dossier.status))
    else:
        state.history = with_change(state.history, at_ms, int(dossier.status))


def apply_step(state: DossierState, progress: NormalisedProgress, at_ms: int) -> None:
    """Merge an accepted CapNhatTienDoHoSoMC step into `state` (which the caller owns)."""
    state.agency = state.agency or interned(progress.agency)
    if progress.step.status is not None:
        state.history = with_change(state.history, at_ms, int(progress.step.status))


_STATUS = {int(s): s for s in DossierStatus}
_CHANNEL = {int(c): c for c in Channel}


@dataclass(slots=True)
class CurrentFacts:
    """The dossier's current facts as ingest reads them out of its state: `DossierFacts`' fields,
    in its order and with its types, built without its validation (every value comes from the
    state this module merged). The counting rules read it (`indicators.Facts`); the record
    carries it as JSON (`decide.Accepted.json`), which consumers read as the contract.

    Not frozen, as ingest's other per-event values: see `decide.Decision`.
    """

    agency: str | None
    procedure_code: str | None
    status: DossierStatus
    channel: Channel | None
    submitted_at: datetime | None
    received_at: datetime | None
    due_at: datetime | None
    legal_limit_days: int | None
    finished_at: datetime | None
    returned_at: datetime | None
    ended_at: datetime | None
    end_status: DossierStatus | None
    supplement_requests: int
    supplement_seconds: int
    supplement_since: datetime | None
    fee_bearing: bool | None
    paid_online: int | None
    digitised: bool
    attachments: bool
    from_national_repository: bool
    vneid_verified: bool
    result_file: bool

    def contract(self) -> DossierFacts:
        return DossierFacts.model_validate(
            {name: getattr(self, name) for name in DossierFacts.model_fields}
        )


def _at(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def facts_of(state: DossierState, *, legal_time_limits_days: Mapping[str, int]) -> CurrentFacts:
    """The dossier's current facts, as the contract states them."""
    entries = history_entries(state.history)
    first: dict[int, int] = {}
    received_ms = 0
    rounds = supplement_ms = since_ms = 0
    for i, (ms, status) in enumerate(entries):
        first.setdefault(status, ms)
        if not received_ms and is_received(status) and status != _WITHDRAWN:
            received_ms = ms
        if status == _SUPPLEMENT:
            rounds += 1
            if i + 1 < len(entries):
                supplement_ms += entries[i + 1][0] - ms
            else:
                since_ms = ms
    if not received_ms:
        received_ms = first.get(_WITHDRAWN, 0)
    received_ms = state.received_ms or received_ms
    finished_ms = state.finished_ms or first.get(_FINISHED, 0)
    returned_ms = state.returned_ms or first.get(_RETURNED, 0)
    ended_ms, end_status = _end(state, first, finished_ms, returned_ms)
    flags = state.flags
    return CurrentFacts(
        agency=state.agency,
        procedure_code=state.procedure,
        status=_STATUS[entries[-1][1]] if entries else DossierStatus.SUBMITTED,
        channel=_CHANNEL.get(state.channel),
        submitted_at=_at(state.submitted_ms),
        received_at=_at(received_ms),
        due_at=_at(state.due_ms),
        legal_limit_days=legal_time_limits_days.get(state.procedure) if state.procedure else None,
        finished_at=_at(finished_ms),
        returned_at=_at(returned_ms),
        ended_at=_at(ended_ms),
        end_status=_STATUS.get(end_status),
        supplement_requests=max(state.listed_supplements, rounds),
        supplement_seconds=supplement_ms // 1000,
        supplement_since=_at(since_ms),
        fee_bearing=bool(flags & Flag.FEE_BEARING) if flags & Flag.FEES_KNOWN else None,
        paid_online=state.paid_online if state.paid_online >= 0 else None,
        digitised=bool(flags & (Flag.DIGITISED_FLAG | Flag.ATTACHED_DIGITISED)),
        attachments=bool(flags & Flag.ATTACHED),
        from_national_repository=bool(flags & Flag.ATTACHED_NATIONAL),
        vneid_verified=bool(flags & Flag.VNEID),
        result_file=bool(flags & Flag.RESULT_FILE),
    )


def _end(
    state: DossierState, first: dict[int, int], finished_ms: int, returned_ms: int
) -> tuple[int, int]:
    """When processing ended for 2.1, and at which status: the first of finished (9), returned
    (10), stopped (8) and refused (3), and withdrawn (7) once the dossier had been received."""
    candidates: list[tuple[int, int]] = []
    if finished_ms and (_FINISHED in first or _RETURNED in first):
        candidates.append((finished_ms, _FINISHED))
    if _RETURNED in first:
        candidates.append((returned_ms, _RETURNED))
    if _STOPPED in first:
        candidates.append((first[_STOPPED], _STOPPED))
    if _REJECTED in first:
        rejected = state.rejected_ms or first[_REJECTED]
        candidates.append((rejected, _REJECTED))
    withdrawn = first.get(_WITHDRAWN)
    if withdrawn is not None:
        received_before = [ms for s, ms in first.items() if is_received(s) and s != 7]
        if state.received_ms or (received_before and min(received_before) <= withdrawn):
            candidates.append((withdrawn, _WITHDRAWN))
    if not candidates:
        return 0, 0
    return min(candidates)
