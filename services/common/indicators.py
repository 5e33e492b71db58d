"""The counting rules of the scored indicators, read from a dossier's current facts.

Pure: a dossier's facts in (`Facts`: the contract's `schemas.facts.DossierFacts`, or ingest's
own read-out of its state), plain values out, the clock passed in. Ingest keeps every dossier's
current facts (accumulated over every accepted header and step) and calls these rules on them;
sync calls `is_received` for 1.4 (`services/sync/consumer.py`). The status sets are contracts
(`schemas/codes.py`).

The exact figures are gauges: ingest exports, per agency, how many of the dossiers whose state
it holds (open, and evicted but archived, see `services/ingest/worker.py`) count in each
indicator's numerator and denominator, `govsync_dossiers_counted{agency,indicator,part}`. They
are recomputed from the facts whenever a dossier changes and rebuilt from the durable state on
every start and partition assignment, so a crash, a replay or a rebalance never counts a
dossier twice or loses one. The agency is the dossier's current one: a re-coded dossier moves.

    id    numerator (part="numerator")            denominator (part="denominator")
    ----  --------------------------------------  ----------------------------------------------
    2.1   on time (`timeliness`: the end, first   finished (status 7, 9 or 10) with an end date:
          of 9, 10, 8, 3 and 7 once received,     on time, late, and `no_due_date` (nothing to
          by the due date `NgayHenTra`, else      judge it by: counted against the rate, never
          reception + the procedure's legal       for it)
          limit; one supplement request adds
          its duration, two or more: late)
    3.3   received online (`KenhThucHien` 2)      received (status 2, 4-10)
    3.6   received, fee-bearing, paid online      received with a fee list that has a fee over 0
          (`DuocThanhToanTrucTuyen` 1 or 2)
    4.2   received with a component file          received
          attached (a non-deleted `TaiLieuNop`)
    4.3   received and digitised (`HoSoCoThanh-   received
          PhanSoHoa` or a non-deleted `DuocSoHoa`
          attachment)
    4.4   received with a file from the national  received
          repository (`DuocLayTuKhoDMQG`)
    4.5b  received, applicant verified with       received
          VNeID (`TaiKhoanDuocXacThucVoiVNeID`)
    sig   e-documents: outgoing, verified         outgoing documents counted (each once; a
          (`govsync_edocuments_counted`)          revoked one no longer, a replaced one by its
                                                  replacement's verdict)

What the gauges are not: they are not cut into periods (the scores service does that from the
records: the date that puts a dossier in a period is its reception date); a dossier counts while
ingest holds it (`GOVSYNC_ARCHIVE_RETENTION_DAYS` after its last change). 1.4 is sync's
(`govsync_portal_synced_dossiers`); 4.2 leaves out "an electronic result where one is issued"
and 4.1 is not counted (both need the procedure catalogue); 2.2 and 5.4 are the scores service's.

The operational counters (`govsync_dossiers_received_total` …) count first occurrences as they
are decided (`count_dossier`): operational throughput (no recording rule divides them; the
scored rates are the scores service's gauges), and they may count a dossier again after a crash;
the gauges are the exact figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from schemas.codes import (
    FINISHED_STATUSES,
    RECEIVED_STATUSES,
    Channel,
    DossierStatus,
    Timeliness,
)
from schemas.edocument import Direction, SignatureVerdict

END_STATUSES = FINISHED_STATUSES | {DossierStatus.STOPPED, DossierStatus.REJECTED}
"""Statuses at which processing has ended for 2.1 (finished, returned, stopped, rejected,
withdrawn): the first time one is reached is the dossier's end."""


class Facts(Protocol):
    """What the rules read of a dossier's facts, by `DossierFacts`' field names and types.

    Ingest passes its own read-out of the state (`services/ingest/dossiers/facts.py`), built
    without the contract's validation on every event; scores and reconcile pass the contract.
    """

    @property
    def agency(self) -> str | None: ...
    @property
    def status(self) -> DossierStatus: ...
    @property
    def channel(self) -> Channel | None: ...
    @property
    def received_at(self) -> datetime | None: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def legal_limit_days(self) -> int | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def supplement_requests(self) -> int: ...
    @property
    def supplement_seconds(self) -> int: ...
    @property
    def supplement_since(self) -> datetime | None: ...
    @property
    def fee_bearing(self) -> bool | None: ...
    @property
    def paid_online(self) -> int | None: ...
    @property
    def digitised(self) -> bool: ...
    @property
    def attachments(self) -> bool: ...
    @property
    def from_national_repository(self) -> bool: ...
    @property
    def vneid_verified(self) -> bool: ...


def is_received(status: int) -> bool:
    """Received (2, 4-10): in the denominators of 1.4, 3.3, 3.6, 4.x; 1 and 3 are not."""
    return status in RECEIVED_STATUSES


def is_finished(status: int) -> bool:
    """Withdrawn, finished or returned (7, 9, 10): counted for 2.1."""
    return status in FINISHED_STATUSES


def is_end(status: int) -> bool:
    """Processing has ended (3, 7, 8, 9, 10): the end date 2.1 compares with the due date."""
    return status in END_STATUSES


# --- 2.1 ----------------------------------------------------------------------------------------


def due_date(facts: Facts) -> datetime | None:
    """`NgayHenTra`, else reception plus the procedure's legal limit, else None."""
    if facts.due_at is not None:
        return facts.due_at
    if facts.legal_limit_days and facts.received_at is not None:
        return facts.received_at + timedelta(days=facts.legal_limit_days)
    return None


def timeliness(facts: Facts, *, now: datetime) -> Timeliness:
    """Indicator 2.1 for the dossier as it stands, from its whole history.

    Ended: two or more supplement requests are late whatever the dates; else the end is compared
    with the due date, which one supplement request moves by its duration; with no due date and
    no legal limit, `no_due_date`. Open: overdue once the clock passes the due date (moved by the
    supplement time so far, the pending request included).
    """
    due = due_date(facts)
    if facts.ended_at is not None:
        if facts.supplement_requests >= 2:
            return Timeliness.LATE
        if due is None:
            return Timeliness.NO_DUE_DATE
        seconds = facts.supplement_seconds if facts.supplement_requests == 1 else 0
        on_time = facts.ended_at <= due + timedelta(seconds=seconds)
        return Timeliness.ON_TIME if on_time else Timeliness.LATE
    if due is None:
        return Timeliness.IN_PROGRESS
    allowance = timedelta(seconds=facts.supplement_seconds)
    if facts.supplement_since is not None:
        allowance += max(timedelta(), now - facts.supplement_since)
    return Timeliness.OVERDUE if now > due + allowance else Timeliness.IN_PROGRESS


def is_judged_finished(facts: Facts) -> bool:
    """In 2.1's figure: finished (7, 9, 10) with an end date."""
    return is_finished(facts.status) and facts.ended_at is not None


# --- what the facts show for the other indicators -----------------------------------------------


def is_fee_bearing(facts: Facts) -> bool:
    """3.6's denominator: the latest fee list has a fee (`DanhSachLePhi.Gia`) over 0."""
    return facts.fee_bearing is True


def pays_online(facts: Facts) -> bool:
    """3.6's numerator: paid through the national portal (1) or a local gateway (2)."""
    return facts.paid_online in (1, 2)


# --- the exact figures: which parts of which indicators a dossier counts in --------------------

NUMERATOR, DENOMINATOR = "numerator", "denominator"
INDICATOR_PARTS: tuple[tuple[str, str], ...] = tuple(
    (indicator, part)
    for indicator in ("2.1", "3.3", "3.6", "4.2", "4.3", "4.4", "4.5b")
    for part in (NUMERATOR, DENOMINATOR)
)
"""Every (indicator, part) of `govsync_dossiers_counted`; bit `i` of `counted_parts` is entry i."""
_BIT = {part: 1 << i for i, part in enumerate(INDICATOR_PARTS)}


def counted_parts(facts: Facts) -> int:
    """The (indicator, part) pairs the dossier counts in, as bits of `INDICATOR_PARTS`."""
    bits = 0

    def count(indicator: str, numerator: bool) -> None:
        nonlocal bits
        bits |= _BIT[(indicator, DENOMINATOR)]
        if numerator:
            bits |= _BIT[(indicator, NUMERATOR)]

    ended = facts.ended_at
    if ended is not None and is_finished(facts.status):
        # Ended: the judgement does not read the clock.
        count("2.1", timeliness(facts, now=ended) is Timeliness.ON_TIME)
    if is_received(facts.status):
        count("3.3", facts.channel is Channel.ONLINE)
        if is_fee_bearing(facts):
            count("3.6", pays_online(facts))
        count("4.2", facts.attachments)
        count("4.3", facts.digitised)
        count("4.4", facts.from_national_repository)
        count("4.5b", facts.vneid_verified)
    return bits


def parts_of(bits: int) -> list[tuple[str, str]]:
    """The (indicator, part) pairs set in `bits`."""
    return [part for part, bit in _BIT.items() if bits & bit]


# --- the operational counters: what a change adds ----------------------------------------------


class CountedFlag:
    """Bits of a dossier's `counted`: which operational counters already counted it. Part of
    ingest's state on its compacted topic: the values never change."""

    RECEIVED = 1
    FINISHED = 2
    DIGITISED = 4
    FEE_BEARING = 8
    PAID_ONLINE = 16


@dataclass(frozen=True, slots=True)
class Indicators:
    """What a change adds to the operational counters (each dossier at most once each)."""

    agency: str | None
    received_channel: Channel | None = None
    received: bool = False
    finished: Timeliness | None = None
    digitised: bool = False
    fee_bearing: bool = False
    paid_online: bool = False


def count_dossier(already: int, facts: Facts, judged: Timeliness) -> tuple[int, Indicators]:
    """What a change adds to the counters, given the `CountedFlag` bits that already counted the
    dossier and its facts after the change; and the bits after it."""
    counted = already
    result: dict[str, object] = {}
    received = is_received(facts.status)
    if received and not already & CountedFlag.RECEIVED:
        counted |= CountedFlag.RECEIVED
        result["received"] = True
        result["received_channel"] = facts.channel
    if is_finished(facts.status) and not already & CountedFlag.FINISHED:
        counted |= CountedFlag.FINISHED
        result["finished"] = judged
    if received:
        if facts.digitised and not already & CountedFlag.DIGITISED:
            counted |= CountedFlag.DIGITISED
            result["digitised"] = True
        fee_bearing = is_fee_bearing(facts)
        if fee_bearing and not already & CountedFlag.FEE_BEARING:
            counted |= CountedFlag.FEE_BEARING
            result["fee_bearing"] = True
        if fee_bearing and pays_online(facts) and not already & CountedFlag.PAID_ONLINE:
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
