"""The per-dossier state machine: revisions, duplicates, stale events, indicators, timeliness."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.dossier import (
    Channel,
    DossierEvent,
    DossierStatus,
    ProgressEvent,
    RecordKind,
    Timeliness,
)
from services.common.dates import LOCAL_TZ
from services.ingest.dossiers.decide import Change, Policy, decide, evictable, expired
from services.ingest.dossiers.decode import validate_data
from services.ingest.dossiers.normalise import (
    Vocabularies,
    normalise_dossier,
    normalise_progress,
)
from services.ingest.dossiers.state import DossierState
from services.ingest.outcome import Outcome
from services.ingest.settings import DEFAULT_CHANNEL_VOCABULARY, DEFAULT_STATUS_VOCABULARY

VOCAB = Vocabularies(status=DEFAULT_STATUS_VOCABULARY, channel=DEFAULT_CHANNEL_VOCABULARY)
DAY0 = datetime(2026, 11, 2, 8, 0, tzinfo=LOCAL_TZ)
POLICY = Policy(
    legal_time_limits_days={"P-15": 15},
    finished_retention=timedelta(days=30),
    archive_retention=timedelta(days=400),
)


def at(days: float) -> datetime:
    return DAY0 + timedelta(days=days)


def header(status: int, *, when: datetime, event_id: str | None = None, **fields: Any) -> Change:
    data = {"MaHoSo": "H-1", "MaDonVi": "000.00.00.G22", "TrangThaiHoSo": status, **fields}
    event = validate_data(data, DossierEvent)
    dossier = normalise_dossier(event, vocabularies=VOCAB, agency_hint=None, max_chars=500)
    return Change(
        "H-1", "urn:src", event_id or f"h-{status}-{when.isoformat()}", when, dossier=dossier
    )


def step(
    status: int | None, *, when: datetime, event_id: str | None = None, text: str = "x"
) -> Change:
    data: dict[str, Any] = {"MaHoSo": "H-1", "ThoiDiemXuLy": when.isoformat(), "NoiDungXuLy": text}
    if status is not None:
        data["TrangThai"] = status
    progress = normalise_progress(
        validate_data(data, ProgressEvent), vocabularies=VOCAB, agency_hint=None, max_chars=500
    )
    return Change(
        "H-1", "urn:src", event_id or f"p-{when.isoformat()}-{text}", when, progress=progress
    )


class Dossier:
    """Feeds changes through `decide` the way the worker does, keeping the state."""

    def __init__(self) -> None:
        self.state: DossierState | None = None
        self.outcomes: list[Outcome] = []
        self.records: list[Any] = []
        self.indicators: list[Any] = []

    def feed(self, change: Change, *, now: datetime | None = None) -> Outcome:
        decision = decide(self.state, change, now=now or change.event_time, policy=POLICY)
        if decision.state is not None:
            self.state = decision.state
        if decision.record is not None:
            self.records.append(decision.record)
        if decision.indicators is not None:
            self.indicators.append(decision.indicators)
        self.outcomes.append(decision.outcome)
        return decision.outcome


def test_revisions_grow_by_one_per_accepted_change() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), NgayTiepNhan="20261102080000"))
    d.feed(step(4, when=at(1)))
    d.feed(header(4, when=at(2)))
    assert [r.revision for r in d.records] == [1, 2, 3]
    assert [r.kind for r in d.records] == [
        RecordKind.DOSSIER,
        RecordKind.PROGRESS,
        RecordKind.DOSSIER,
    ]
    assert d.records[1].header is None
    assert d.records[1].step is not None


def test_redelivered_event_is_a_duplicate() -> None:
    d = Dossier()
    change = header(2, when=at(0), event_id="same")
    assert d.feed(change) is Outcome.ACCEPTED
    assert d.feed(change) is Outcome.DUPLICATE
    assert len(d.records) == 1


def test_same_snapshot_under_a_new_id_is_a_duplicate() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), event_id="a"))
    assert d.feed(header(2, when=at(0), event_id="b")) is Outcome.DUPLICATE


def test_returning_to_an_earlier_snapshot_is_a_change() -> None:
    d = Dossier()
    d.feed(header(4, when=at(0)))
    d.feed(header(5, when=at(1)))
    assert d.feed(header(4, when=at(2))) is Outcome.ACCEPTED
    assert [r.status for r in d.records][-1] == DossierStatus.IN_PROCESS


def test_older_snapshot_is_stale_and_never_moves_status_back() -> None:
    d = Dossier()
    d.feed(header(4, when=at(2)))
    assert d.feed(header(2, when=at(1))) is Outcome.STALE
    assert d.state is not None
    assert d.state.status == DossierStatus.IN_PROCESS


def test_out_of_order_progress_step_is_stale() -> None:
    d = Dossier()
    d.feed(step(4, when=at(2), text="later"))
    assert d.feed(step(4, when=at(1), text="earlier")) is Outcome.STALE


def test_progress_status_after_newer_header_does_not_regress() -> None:
    d = Dossier()
    d.feed(header(9, when=at(5)))
    d.feed(step(4, when=at(3), text="late arriving step"))
    assert d.records[-1].status == DossierStatus.FINISHED


def test_progress_before_header_starts_the_dossier() -> None:
    d = Dossier()
    d.feed(step(None, when=at(0)))
    assert d.records[0].status == DossierStatus.SUBMITTED
    assert d.records[0].revision == 1


def test_received_counted_once_with_channel() -> None:
    d = Dossier()
    d.feed(header(1, when=at(0), KenhThucHien=2))
    d.feed(header(2, when=at(0.1), KenhThucHien=2))
    d.feed(header(4, when=at(0.2), KenhThucHien=2))
    received = [i for i in d.indicators if i.received]
    assert len(received) == 1
    assert received[0].received_channel == Channel.ONLINE
    assert received[0].agency == "000.00.00.G22"


def test_finished_counted_once() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), NgayHenTra="20261110170000"))
    d.feed(header(9, when=at(3)))
    d.feed(header(10, when=at(4)))
    finished = [i.finished for i in d.indicators if i.finished is not None]
    assert finished == [Timeliness.ON_TIME]


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        pytest.param([(2, 0), (9, 5)], Timeliness.ON_TIME, id="before-due"),
        pytest.param([(2, 0), (9, 12)], Timeliness.LATE, id="after-due"),
        pytest.param(
            [(2, 0), (5, 2), (4, 6), (9, 11)], Timeliness.ON_TIME, id="one-supplement-extends-due"
        ),
        pytest.param(
            [(2, 0), (5, 2), (4, 3), (9, 11)], Timeliness.LATE, id="one-short-supplement-not-enough"
        ),
        pytest.param(
            [(2, 0), (5, 1), (4, 1.5), (5, 2), (4, 2.5), (9, 3)],
            Timeliness.LATE,
            id="two-supplements-late",
        ),
        pytest.param([(2, 0), (3, 1)], None, id="rejected-is-not-finished"),
        pytest.param([(2, 0), (7, 20)], Timeliness.LATE, id="withdrawn-after-due"),
    ],
)
def test_timeliness_of_finished_dossiers(
    flow: list[tuple[int, float]], expected: Timeliness | None
) -> None:
    d = Dossier()
    for status, day in flow:
        d.feed(header(status, when=at(day), NgayHenTra="20261110080000"))
    finished = [i.finished for i in d.indicators if i.finished is not None]
    assert finished == ([expected] if expected else [])


def test_end_date_from_the_item_wins_over_event_time() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), NgayHenTra="20261110080000"))
    d.feed(header(10, when=at(20), NgayKetThucXuLy="20261105080000"))
    assert [i.finished for i in d.indicators if i.finished] == [Timeliness.ON_TIME]


def test_open_dossier_becomes_overdue_with_the_clock() -> None:
    d = Dossier()
    d.feed(header(4, when=at(0), NgayHenTra="20261110080000"))
    d.feed(step(4, when=at(7.9)), now=at(7.9))
    d.feed(step(4, when=at(8.1), text="y"), now=at(8.1))
    assert [r.timeliness for r in d.records] == [
        Timeliness.IN_PROGRESS,
        Timeliness.IN_PROGRESS,
        Timeliness.OVERDUE,
    ]


def test_legal_time_limit_when_no_due_date() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), MaTTHC="P-15", NgayTiepNhan="20261102080000"))
    d.feed(header(9, when=at(16)))
    assert [i.finished for i in d.indicators if i.finished] == [Timeliness.LATE]


def test_digitised_fee_and_online_payment_counted_once_when_received() -> None:
    d = Dossier()
    fee = [{"Gia": 50000}]
    d.feed(
        header(1, when=at(0), HoSoCoThanhPhanSoHoa=1, DanhSachLePhi=fee, DuocThanhToanTrucTuyen=1)
    )
    assert not any(i.digitised or i.fee_bearing for i in d.indicators)
    d.feed(
        header(2, when=at(1), HoSoCoThanhPhanSoHoa=1, DanhSachLePhi=fee, DuocThanhToanTrucTuyen=1)
    )
    d.feed(
        header(4, when=at(2), HoSoCoThanhPhanSoHoa=1, DanhSachLePhi=fee, DuocThanhToanTrucTuyen=1)
    )
    assert sum(i.digitised for i in d.indicators) == 1
    assert sum(i.fee_bearing for i in d.indicators) == 1
    assert sum(i.paid_online for i in d.indicators) == 1


def test_digitised_by_attachment_flag() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), TaiLieuNop=[{"TenTepDinhKem": "a.pdf", "DuocSoHoa": "1"}]))
    assert [i.digitised for i in d.indicators] == [True]


def test_free_dossier_paid_online_is_not_counted() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), DanhSachLePhi=[{"Gia": 0}], DuocThanhToanTrucTuyen=1))
    assert not d.indicators[0].fee_bearing
    assert not d.indicators[0].paid_online


def test_decide_does_not_modify_the_current_state() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0)))
    assert d.state is not None
    before = d.state.to_bytes()
    decide(d.state, header(4, when=at(1)), now=at(1), policy=POLICY)
    assert d.state.to_bytes() == before


def test_state_round_trips_through_bytes() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), NgayHenTra="20261110080000", KenhThucHien=1))
    d.feed(header(5, when=at(1)))
    assert d.state is not None
    restored = DossierState.from_bytes(d.state.to_bytes())
    assert restored == d.state
    # A redelivery after a restart is still recognised.
    again = decide(restored, header(5, when=at(1)), now=at(1), policy=POLICY)
    assert again.outcome is Outcome.DUPLICATE


def test_the_last_four_event_ids_are_remembered_across_a_restart() -> None:
    d = Dossier()
    for n, status in enumerate([2, 4, 5, 4, 9], start=1):
        d.feed(header(status, when=at(n), event_id=f"e{n}"))
    assert d.state is not None
    restored = DossierState.from_bytes(d.state.to_bytes())
    # Redelivered ids are duplicates whatever they carry; the fifth-last is forgotten.
    for n in (2, 3, 4, 5):
        again = decide(restored, header(10, when=at(9), event_id=f"e{n}"), now=at(9), policy=POLICY)
        assert again.outcome is Outcome.DUPLICATE, n
    forgotten = decide(restored, header(10, when=at(9), event_id="e1"), now=at(9), policy=POLICY)
    assert forgotten.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("status", "days_since", "expected"),
    [
        pytest.param(10, 31, True, id="returned-past-retention"),
        pytest.param(10, 29, False, id="returned-within-retention"),
        pytest.param(4, 400, False, id="open-never-evicted"),
        pytest.param(3, 31, True, id="rejected-past-retention"),
    ],
)
def test_eviction(status: int, days_since: float, expected: bool) -> None:
    d = Dossier()
    d.feed(header(status, when=at(0)))
    assert d.state is not None
    assert evictable(d.state.to_bytes(), now=at(days_since), policy=POLICY) is expected


# --- issue 12, finding 2: eviction by govsync's clock, and no second life ---------------------


def test_a_backfilled_dossier_is_kept_for_the_retention_after_it_arrived() -> None:
    d = Dossier()
    backfilled = header(10, when=at(-90))  # finished three months ago, arriving now
    d.feed(backfilled, now=at(0))
    assert d.state is not None
    packed = d.state.to_bytes()
    assert not evictable(packed, now=at(29), policy=POLICY)
    assert evictable(packed, now=at(31), policy=POLICY)


def archived(state: DossierState) -> DossierState:
    """The state as the worker's eviction leaves it, read back from its bytes."""
    copy = state.copy()
    copy.archived = True
    return DossierState.from_bytes(copy.to_bytes())


def test_a_dossier_back_from_the_archive_continues_where_it_was() -> None:
    d = Dossier()
    d.feed(header(2, when=at(0), KenhThucHien=2, event_id="a"))
    d.feed(header(9, when=at(5), event_id="b"))
    assert d.state is not None
    d.state = archived(d.state)
    assert d.state.recent == b""  # the archive keeps no event ids
    # A re-export of the same snapshot is a duplicate, a replay of an older one is stale.
    assert d.feed(header(9, when=at(5), event_id="re-export")) is Outcome.DUPLICATE
    assert d.feed(header(2, when=at(0), KenhThucHien=2, event_id="a")) is Outcome.STALE
    # The return continues the revisions, with the facts it had.
    assert d.feed(header(10, when=at(6), event_id="c")) is Outcome.ACCEPTED
    last = d.records[-1]
    assert (last.revision, last.status, last.facts.channel) == (3, 10, Channel.ONLINE)
    assert d.state is not None
    assert not d.state.archived
    # Counted once: the operational counters do not count it again as received or finished.
    assert [i.received for i in d.indicators] == [True, False, False]
    assert [i.finished for i in d.indicators] == [None, Timeliness.NO_DUE_DATE, None]


def test_an_archive_entry_expires_after_the_archive_retention() -> None:
    d = Dossier()
    d.feed(header(10, when=at(0)))
    assert d.state is not None
    packed = archived(d.state).to_bytes()
    assert not evictable(packed, now=at(500), policy=POLICY)  # already archived
    assert not expired(packed, now=at(399), policy=POLICY)
    assert expired(packed, now=at(401), policy=POLICY)
