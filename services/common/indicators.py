"""The counting rules of the scored indicators: what a dossier or an e-document adds to them.

Pure: plain facts in, plain values out, the clock passed in. Ingest calls it for every accepted
change (`services/ingest/dossiers/decide.py`) and every counted e-document; sync calls it for
1.4 (`services/sync/consumer.py`). The counters it feeds are turned into rates per agency and
window by the Prometheus recording rules (`deploy/helm/govsync/files/rules/`), which cannot import
this module and follow the same table. The status sets are contracts (`schemas/dossier.py`).

How govsync counts each indicator today (DOMAIN.md §2 has the portal's definitions). Every
dossier counts at most once per counter; "period" is what puts a count in a window.

    id      counter (`..._total`)          facts read                      counted when
    ------  -----------------------------  ------------------------------  ------------------------
    1.4     govsync_portal_synced_         the status of the revision the  sync (portal): the first
            dossiers{agency} over          portal acknowledged:            acknowledgement of the
            govsync_dossiers_received      `is_received`                   dossier in a received
                                                                           status
    2.1     govsync_dossiers_finished      `timeliness`: the end (first    ingest: the change that
            {agency, timeliness},          `END_STATUSES` status, or the   first puts it in a
            on_time over all               header's finish, return or      `FINISHED_STATUSES`
                                           refusal date if earlier) vs     status (7, 9, 10)
                                           the due date (`NgayHenTra`,
                                           else reception + the legal
                                           limit); one supplement request
                                           adds its duration, two or more
                                           make it late
    3.3     govsync_dossiers_received      `is_received`; the channel      ingest: the change that
            {agency, channel}, online      (`KenhThucHien`) it has then,   first puts it in a
            over all                       `unknown` when none yet         received status
    3.6     govsync_dossiers_paid_online   received, a header with a fee   ingest: the first header
            over govsync_dossiers_         over 0 (`is_fee_bearing`);      that shows it while the
            fee_bearing                    paid: also `pays_online`        dossier is received
                                           (`DuocThanhToanTrucTuyen` 1, 2)
    4.3     govsync_dossiers_digitised     received, a header with         ingest: the first header
            over govsync_dossiers_         `is_digitised` (`HoSoCoThanh-   that shows it while the
            received                       PhanSoHoa` or a non-deleted     dossier is received
                                           `DuocSoHoa` attachment)
    e-doc   govsync_edocuments{agency,     the package's verdict           ingest: the document's
    signed  direction, signature},         (`is_signed`: verified; the     first counted package
            outgoing verified over         rules' weak rate also takes     (edocuments/ledger.py)
            outgoing                       untrusted); outgoing: issuer
                                           in `GOVSYNC_OWN_AGENCIES`

    The date that decides the period, for every row: when govsync counts it (the counter's
    increase, cut into Vietnam days by indicator-windows.yaml), not a date the dossier carries.

Where this differs from the portal's definitions, knowingly: the period is decided by when govsync
counts a dossier, not by its reception date `NgayTiepNhan`; 2.1 counts dossiers as they finish,
not those received or handled in the period with open ones judged at its end; a dossier that
ends stopped or refused (8, 3) is not counted unless a later change finishes it, while one
withdrawn (7) is counted whether it was received or not; 3.3 is not multiplied by the 1.4 rate,
and a dossier with no channel is `unknown`, not in person; 1.4's denominator is govsync's own
received count (the rules cap the rate at 1).

Not counted yet: 2.2 (mean processing days), 4.1 (electronic results), 4.2 (digitised
components), 4.4 (reuse from the national repository), 4.5b (VNeID-verified applicants), the
overdue part of 5.4; 1.1 to 1.3, 3.1, 3.2, 3.5, 4.5a and 5.1 to 5.3 are the portal's alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from schemas.dossier import (
    FINISHED_STATUSES,
    RECEIVED_STATUSES,
    Channel,
    DossierHeader,
    DossierStatus,
    Timeliness,
)
from schemas.edocument import Direction, SignatureVerdict
from services.common.dates import to_ms

END_STATUSES = FINISHED_STATUSES | {DossierStatus.STOPPED, DossierStatus.REJECTED}
"""Statuses at which processing has ended for 2.1 (finished, returned, stopped, rejected,
withdrawn): the first time one is reached is the dossier's end."""
_DAY_MS = 86_400_000


def is_received(status: int) -> bool:
    """Received (2, 4-10): in the denominators of 1.4, 3.3, 3.6, 4.3; 1 and 3 are not."""
    return status in RECEIVED_STATUSES


def is_finished(status: int) -> bool:
    """Withdrawn, finished or returned (7, 9, 10): counted for 2.1."""
    return status in FINISHED_STATUSES


def is_end(status: int) -> bool:
    """Processing has ended (3, 7, 8, 9, 10): the end date 2.1 compares with the due date."""
    return status in END_STATUSES


# --- 2.1 ----------------------------------------------------------------------------------------


class TimelinessFacts(Protocol):
    """What 2.1 reads of a dossier, in epoch milliseconds (0: not known)."""

    @property
    def due_ms(self) -> int: ...
    @property
    def received_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def supplements(self) -> int: ...
    @property
    def supplement_since_ms(self) -> int:
        """Start of the supplement request still open, 0 when none is."""
        ...

    @property
    def supplement_total_ms(self) -> int:
        """Time spent in supplement requests that have ended."""
        ...

    @property
    def procedure(self) -> str | None: ...


def timeliness(
    dossier: TimelinessFacts, *, now: datetime, legal_time_limits_days: Mapping[str, int]
) -> Timeliness:
    """Indicator 2.1 for the dossier as it stands.

    Time spent on one supplement request does not count against the due date; two or more
    requests make a finished dossier late. Without a due date the procedure's legal limit from
    configuration applies; without either, nothing can be late.
    """
    due_ms = dossier.due_ms
    if not due_ms and dossier.procedure and dossier.received_ms:
        days = legal_time_limits_days.get(dossier.procedure)
        if days:
            due_ms = dossier.received_ms + days * _DAY_MS
    if dossier.end_ms:
        if dossier.supplements >= 2:
            return Timeliness.LATE
        if not due_ms:
            return Timeliness.ON_TIME
        allowance = dossier.supplement_total_ms if dossier.supplements == 1 else 0
        return Timeliness.ON_TIME if dossier.end_ms <= due_ms + allowance else Timeliness.LATE
    if not due_ms:
        return Timeliness.IN_PROGRESS
    allowance = dossier.supplement_total_ms
    if dossier.supplement_since_ms:
        allowance += max(0, to_ms(now) - dossier.supplement_since_ms)
    return Timeliness.OVERDUE if to_ms(now) > due_ms + allowance else Timeliness.IN_PROGRESS


# --- 3.6 and 4.3: what a header shows -----------------------------------------------------------


def is_digitised(header: DossierHeader) -> bool:
    """4.3: `HoSoCoThanhPhanSoHoa` = 1, or an attachment not deleted with `DuocSoHoa` = 1."""
    return header.has_digitised_components or any(
        a.digitised and not a.deleted for a in header.attachments
    )


def is_fee_bearing(header: DossierHeader) -> bool:
    """3.6's denominator: some fee (`DanhSachLePhi.Gia`) is over 0."""
    return any(f.amount > 0 for f in header.fees)


def pays_online(header: DossierHeader) -> bool:
    """3.6's numerator, for a fee-bearing dossier: paid through the national portal (1) or a
    local gateway (2)."""
    return header.paid_online in (1, 2)


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """What one header shows for 3.6 and 4.3."""

    digitised: bool
    fee_bearing: bool
    paid_online: bool

    @classmethod
    def of(cls, header: DossierHeader) -> HeaderFacts:
        return cls(is_digitised(header), is_fee_bearing(header), pays_online(header))


# --- what a change adds -------------------------------------------------------------------------


class CountedFlag:
    """Bits of a dossier's `counted`: which indicators already counted it. Part of ingest's
    state on its compacted topic: the values never change."""

    RECEIVED = 1
    FINISHED = 2
    DIGITISED = 4
    FEE_BEARING = 8
    PAID_ONLINE = 16


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """A dossier after an accepted change, as the counting rules read it."""

    agency: str | None
    status: int
    channel: int
    """`KenhThucHien`, 0 when no header has given it."""
    timeliness: Timeliness
    """`timeliness()` of the dossier after the change."""
    header: HeaderFacts | None = None
    """What the change's header shows; None for a progress step."""


@dataclass(frozen=True, slots=True)
class Indicators:
    """What a change adds to the scored counters (each dossier is counted at most once)."""

    agency: str | None
    received_channel: Channel | None = None
    received: bool = False
    finished: Timeliness | None = None
    digitised: bool = False
    fee_bearing: bool = False
    paid_online: bool = False


def count_dossier(already: int, facts: DossierFacts) -> tuple[int, Indicators]:
    """What a change adds, given the `CountedFlag` bits that already counted the dossier; and the
    bits after it."""
    counted = already
    result: dict[str, object] = {}
    received = is_received(facts.status)
    if received and not already & CountedFlag.RECEIVED:
        counted |= CountedFlag.RECEIVED
        result["received"] = True
        result["received_channel"] = Channel(facts.channel) if facts.channel else None
    if is_finished(facts.status) and not already & CountedFlag.FINISHED:
        counted |= CountedFlag.FINISHED
        result["finished"] = facts.timeliness
    header = facts.header
    if header is not None and received:
        if header.digitised and not already & CountedFlag.DIGITISED:
            counted |= CountedFlag.DIGITISED
            result["digitised"] = True
        if header.fee_bearing and not already & CountedFlag.FEE_BEARING:
            counted |= CountedFlag.FEE_BEARING
            result["fee_bearing"] = True
        if header.fee_bearing and header.paid_online and not already & CountedFlag.PAID_ONLINE:
            counted |= CountedFlag.PAID_ONLINE
            result["paid_online"] = True
    return counted, Indicators(agency=facts.agency, **result)  # type: ignore[arg-type]


# --- e-documents ----------------------------------------------------------------------------------


def is_signed(verdict: SignatureVerdict) -> bool:
    """A counted document counts towards the signed share when its signature was verified."""
    return verdict is SignatureVerdict.VERIFIED


@dataclass(frozen=True, slots=True)
class Counted:
    """What one counted document adds to `govsync_edocuments_total`."""

    agency: str | None
    direction: Direction
    signature: SignatureVerdict
