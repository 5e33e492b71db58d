"""Facts accumulate (issue 12, findings 3 and 5): every accepted header and step completes or
corrects the dossier's facts; the record carries them; 2.1 is judged from the whole history.

On main the record carried no facts, the counters were frozen at the first event that showed
a fact, and timeliness was fixed at the first finish.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.dossier import (
    Channel,
    DossierEvent,
    DossierRecord,
    DossierStatus,
    ProgressEvent,
    Timeliness,
)
from services.common.dates import LOCAL_TZ
from services.common.indicators import counted_parts, parts_of
from services.ingest.dossiers.decide import Change, Policy, decide
from services.ingest.dossiers.decode import validate_data
from services.ingest.dossiers.normalise import Vocabularies, normalise_dossier, normalise_progress
from services.ingest.dossiers.state import (
    HISTORY_LIMIT,
    DossierState,
    history_entries,
    with_change,
    with_newest,
)
from services.ingest.outcome import Outcome
from services.ingest.settings import DEFAULT_CHANNEL_VOCABULARY, DEFAULT_STATUS_VOCABULARY

VOCAB = Vocabularies(status=DEFAULT_STATUS_VOCABULARY, channel=DEFAULT_CHANNEL_VOCABULARY)
DAY0 = datetime(2026, 11, 2, 8, 0, tzinfo=LOCAL_TZ)
A, B = "000.00.00.G22", "000.00.10.H29"
POLICY = Policy(legal_time_limits_days={"P-15": 15})


def at(days: float) -> datetime:
    return DAY0 + timedelta(days=days)


def portal(days: float) -> str:
    return at(days).strftime("%Y%m%d%H%M%S")


class Dossier:
    def __init__(self, policy: Policy = POLICY) -> None:
        self.state: DossierState | None = None
        self.records: list[DossierRecord] = []
        self.policy = policy
        self._n = 0

    def _feed(self, change: Change, now: datetime | None) -> Outcome:
        decision = decide(self.state, change, now=now or change.event_time, policy=self.policy)
        if decision.state is not None:
            # Through the byte format, as the worker keeps it.
            self.state = DossierState.from_bytes(decision.state.to_bytes())
        if decision.record is not None:
            self.records.append(decision.record)
        return decision.outcome

    def header(
        self, status: int, day: float, *, now: datetime | None = None, **data: Any
    ) -> Outcome:
        self._n += 1
        item = {"MaHoSo": "H-1", "TrangThaiHoSo": status, **data}
        dossier = normalise_dossier(
            validate_data(item, DossierEvent), vocabularies=VOCAB, agency_hint=None, max_chars=500
        )
        return self._feed(Change("H-1", "urn:src", f"h{self._n}", at(day), dossier=dossier), now)

    def step(
        self, status: int | None, day: float, *, now: datetime | None = None, **data: Any
    ) -> Outcome:
        self._n += 1
        item: dict[str, Any] = {"MaHoSo": "H-1", "ThoiDiemXuLy": portal(day), **data}
        if status is not None:
            item["TrangThai"] = status
        progress = normalise_progress(
            validate_data(item, ProgressEvent), vocabularies=VOCAB, agency_hint=None, max_chars=500
        )
        return self._feed(Change("H-1", "urn:src", f"p{self._n}", at(day), progress=progress), now)

    @property
    def last(self) -> DossierRecord:
        return self.records[-1]

    def counts(self) -> set[tuple[str, str]]:
        return set(parts_of(counted_parts(self.last.facts)))


# --- finding 3: facts frozen at the first event ----------------------------------------------


def test_a_step_before_the_header_then_the_header_completes_agency_and_channel() -> None:
    d = Dossier()
    d.step(2, 0, MaDonVi=A)
    assert d.last.facts.channel is None
    assert ("3.3", "numerator") not in d.counts()
    d.header(2, 0.1, MaDonVi=A, KenhThucHien=2, NgayTiepNhan=portal(0))
    assert d.last.facts.channel is Channel.ONLINE
    assert d.last.facts.agency == A
    assert {("3.3", "numerator"), ("3.3", "denominator")} <= d.counts()


def test_a_re_coded_agency_moves_the_dossier() -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A)
    d.header(9, 1, MaDonVi=B)
    assert (d.last.agency, d.last.facts.agency) == (B, B)
    d.step(10, 2)
    assert d.last.facts.agency == B


def test_a_step_fills_the_agency_but_never_re_codes_it() -> None:
    d = Dossier()
    d.step(4, 0, MaDonVi=A)
    d.step(4, 1, MaDonVi=B, NoiDungXuLy="x")
    assert d.last.facts.agency == A


def test_fees_sent_once_and_the_payment_flag_later_count_as_paid_online() -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A, DanhSachLePhi=[{"Gia": 50000}])
    assert ("3.6", "denominator") in d.counts()
    assert ("3.6", "numerator") not in d.counts()
    d.header(4, 1, MaDonVi=A, DuocThanhToanTrucTuyen=2)
    assert d.last.facts.fee_bearing is True
    assert d.last.facts.paid_online == 2
    assert ("3.6", "numerator") in d.counts()


def test_flags_on_a_status_1_header_count_once_steps_receive_the_dossier() -> None:
    d = Dossier()
    d.header(
        1, 0, MaDonVi=A, HoSoCoThanhPhanSoHoa=1, TaiKhoanDuocXacThucVoiVNeID=1,
        TaiLieuNop=[{"TepDinhKemId": "1", "DuocLayTuKhoDMQG": 1}],
    )  # fmt: skip
    assert d.counts() == set()  # not received yet
    d.step(2, 1)
    d.step(4, 2)
    assert {
        ("4.2", "numerator"), ("4.3", "numerator"), ("4.4", "numerator"), ("4.5b", "numerator"),
    } <= d.counts()  # fmt: skip


def test_a_fact_left_out_keeps_its_value_one_sent_corrects_it() -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A, HoSoCoThanhPhanSoHoa=1, KenhThucHien=2)
    d.header(4, 1, MaDonVi=A)
    assert (d.last.facts.digitised, d.last.facts.channel) == (True, Channel.ONLINE)
    d.header(4, 2, MaDonVi=A, HoSoCoThanhPhanSoHoa=0, KenhThucHien=1)
    assert (d.last.facts.digitised, d.last.facts.channel) == (False, Channel.IN_PERSON)


def test_a_correction_without_a_status_change_is_a_new_revision() -> None:
    d = Dossier()
    d.header(4, 0, MaDonVi=A, NgayHenTra=portal(10))
    assert d.header(4, 0, MaDonVi=A, NgayHenTra=portal(8)) is Outcome.ACCEPTED
    assert [r.revision for r in d.records] == [1, 2]
    assert d.last.facts.due_at == at(8)
    # The same again is a duplicate; the agency alone re-coded is a change.
    assert d.header(4, 0, MaDonVi=A, NgayHenTra=portal(8)) is Outcome.DUPLICATE
    assert d.header(4, 0, MaDonVi=B, NgayHenTra=portal(8)) is Outcome.ACCEPTED


def test_the_reception_date_falls_back_on_the_first_received_status() -> None:
    d = Dossier()
    d.header(1, 0, MaDonVi=A)
    d.step(4, 1)
    assert d.last.facts.received_at == at(1)
    d.header(4, 2, MaDonVi=A, NgayTiepNhan=portal(0.5))
    assert d.last.facts.received_at == at(0.5)


# --- finding 5: timeliness ---------------------------------------------------------------------


def test_a_supplement_reported_after_the_finish_makes_it_late() -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A, NgayHenTra=portal(10))
    d.header(5, 1, MaDonVi=A, DanhSachHoSoBoSung=[{"x": 1}])
    d.header(4, 2, MaDonVi=A, DanhSachHoSoBoSung=[{"x": 1}])
    d.header(9, 5, MaDonVi=A, DanhSachHoSoBoSung=[{"x": 1}])
    assert d.last.timeliness is Timeliness.ON_TIME
    d.header(10, 6, MaDonVi=A, DanhSachHoSoBoSung=[{"x": 1}, {"x": 2}])
    assert d.last.facts.supplement_requests == 2
    assert d.records[-1].timeliness is Timeliness.LATE
    assert ("2.1", "numerator") not in d.counts()


def test_a_late_reported_supplement_step_counts_with_its_duration() -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A, NgayHenTra=portal(10))
    d.header(9, 12, MaDonVi=A)  # two days late, unless a supplement stopped the clock
    assert d.last.facts.supplement_requests == 0
    assert ("2.1", "numerator") not in d.counts()
    # Steps older than the finish arrive afterwards: the request waited three days.
    d.step(5, 3)
    d.step(4, 6, NoiDungXuLy="bổ sung xong")
    assert d.last.status is DossierStatus.FINISHED
    assert (d.last.facts.supplement_requests, d.last.facts.supplement_seconds) == (1, 3 * 86400)
    assert d.last.timeliness is Timeliness.ON_TIME
    assert ("2.1", "numerator") in d.counts()


@pytest.mark.parametrize(
    ("procedure", "expected"),
    [
        pytest.param("P-15", Timeliness.ON_TIME, id="legal-limit"),
        pytest.param("P-00", Timeliness.NO_DUE_DATE, id="neither-due-date-nor-limit"),
    ],
)
def test_a_finished_dossier_without_a_due_date(procedure: str, expected: Timeliness) -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A, MaTTHC=procedure, NgayTiepNhan=portal(0))
    d.header(9, 3, MaDonVi=A, MaTTHC=procedure)
    assert d.last.timeliness is expected
    assert ("2.1", "denominator") in d.counts()
    assert (("2.1", "numerator") in d.counts()) is (expected is Timeliness.ON_TIME)


def test_the_end_is_the_first_end_and_the_finish_date_wins_over_event_time() -> None:
    d = Dossier()
    d.header(2, 0, MaDonVi=A, NgayHenTra=portal(10))
    d.header(10, 20, MaDonVi=A, NgayKetThucXuLy=portal(5), NgayTra=portal(20))
    assert (d.last.facts.ended_at, d.last.facts.end_status) == (at(5), DossierStatus.FINISHED)
    assert d.last.timeliness is Timeliness.ON_TIME


def test_withdrawn_ends_only_once_received() -> None:
    d = Dossier()
    d.header(1, 0, MaDonVi=A)
    d.header(7, 1, MaDonVi=A)
    assert d.last.facts.ended_at is None
    e = Dossier()
    e.header(2, 0, MaDonVi=A)
    e.header(7, 1, MaDonVi=A)
    assert (e.last.facts.ended_at, e.last.facts.end_status) == (at(1), DossierStatus.WITHDRAWN)


def test_the_history_keeps_changes_only_and_is_bounded() -> None:
    history = b""
    for n in range(200):
        history = with_change(history, n * 1000, 4 + n % 2)
    entries = history_entries(history)
    assert len(entries) == HISTORY_LIMIT
    assert entries[0] == (0, 4)  # the first change stays
    assert with_change(history, 199_500, entries[-1][1]) == history  # no change: nothing added
    newest = with_newest(history, 0, 9)
    assert history_entries(newest)[-1] == (199_000, 9)  # a lower bound comes after the rest
    assert len(history_entries(newest)) == HISTORY_LIMIT
