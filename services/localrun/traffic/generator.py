"""Realistic dossier traffic for local runs and benchmarks: plans rendered into Kafka records.

Pure: a seeded `random.Random` and the clock come in as arguments, bytes come out. The Kafka
edge (`services.localrun.pipeline`) produces what `TrafficGenerator.tick` returns.

Each dossier's plan (`plans`) is drawn when it is submitted; every status change it plans is a
DongBoHoSoMC item, often followed by a CapNhatTienDoHoSoMC step, carrying the plan's facts and
times in its source's dialect (`dialects`). Some events are sent twice, some old versions arrive
after newer ones, and some are broken on purpose (`malformations`). Each record says how ingest
must end it and, when accepted, the revision it must become.

The ground truth (`truth`) is told which plans reached which status and counts from the plans;
this module only tells it what was sent. E-documents are decided by `plans.draw_document` and
written and signed by `services.localrun.edocs`.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.localrun.traffic.dialects import (
    CHANNEL_WORDS,
    DATE_WRITERS,
    DOSSIER_TYPE,
    PROGRESS_TYPE,
    STATUS_WORDS,
    Dialect,
    draw_bare_first,
    draw_dialect,
    enveloped,
    event_id,
    event_time,
    styled,
    write_code,
)
from services.localrun.traffic.malformations import draw_malformed
from services.localrun.traffic.options import TrafficOptions
from services.localrun.traffic.plans import (
    FINISHED,
    IN_PROCESS,
    REJECTED,
    RETURNED,
    SUBMITTED,
    SUPPLEMENT,
    DocumentSpec,
    DossierPlan,
    draw_document,
    draw_plan,
    draw_request,
    second,
)
from services.localrun.traffic.truth import GroundTruth, Outcome

STATUS_TEXT = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    7: "Công dân yêu cầu rút hồ sơ",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}
HANDLERS = ("Nguyễn Thị Hạnh", "Vũ Đức Long", "Hoàng Minh Tuấn")


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One Kafka record for the dossier topic, and how ingest must end it."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    expected: Outcome
    dossier: str | None = None
    sequence: int = 0
    """For accepted events: the dossier's revision this event must become (1, 2, ...)."""


@dataclass(slots=True)
class _InFlight:
    """One dossier on its way: its plan, its source's dialect, and how far it has got."""

    plan: DossierPlan
    dialect: Dialect
    bare_first: bool
    step: int = 0
    """Steps sent so far (the index of the next one)."""
    rounds_done: int = 0
    """Supplement rounds completed (DanhSachHoSoBoSung)."""
    revision: int = 0
    """Events of this dossier ingest has accepted so far."""
    history: list[tuple[int, datetime, int]] = field(default_factory=list)
    """(status, time, rounds done) of each change sent, to replay an old version later."""


class TrafficGenerator:
    """Makes the events due at each `tick(now)` and tells the ground truth what was sent."""

    def __init__(self, options: TrafficOptions, rng: random.Random, *, prefix: str = "") -> None:
        self.options = options
        self.truth = GroundTruth()
        self._rng = rng
        self._prefix = prefix or f"{rng.randrange(16**6):06X}"
        self._queue: list[tuple[float, int, _InFlight]] = []
        self._serial = 0
        self._credit = 0.0
        self._last_tick: float | None = None
        self._doc_credit = 0.0
        self._doc_last_tick: float | None = None
        self._documents = 0
        for agency in options.agencies:
            self.truth.agency(agency)

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    # --- the clock drives everything ---------------------------------------------------------

    def tick(self, now: datetime) -> list[SourceEvent]:
        """Everything due by `now`: new dossiers at the configured rate and their next steps."""
        now_s = now.timestamp()
        elapsed = 0.0 if self._last_tick is None else max(0.0, now_s - self._last_tick)
        self._last_tick = now_s
        self._credit += elapsed * self.options.dossiers_per_second
        events: list[SourceEvent] = []
        while self._credit >= 1:
            self._credit -= 1
            self._schedule(self._new_dossier(now), now_s)
        # One change per dossier per tick. A step leaves at the first tick at least its wait
        # after the previous step left, so never before the time its plan gives it.
        due: list[_InFlight] = []
        while self._queue and self._queue[0][0] <= now_s:
            due.append(heapq.heappop(self._queue)[2])
        for dossier in due:
            events.extend(self._advance(dossier))
            if dossier.step < len(dossier.plan.steps):
                self._schedule(dossier, now_s + dossier.plan.steps[dossier.step].wait)
        for _ in range(self._poisson(len(events) * self.options.malformed_rate)):
            broken = draw_malformed(self._rng, self.options, prefix=self._prefix, now=now)
            self.truth.broken(broken.kind)
            events.append(SourceEvent(broken.key, broken.value, (), Outcome.DEAD_LETTERED))
        self.truth.events([e.expected for e in events])
        return events

    def tick_documents(self, now: datetime) -> list[DocumentSpec]:
        """The e-documents due by `now` at the configured rate, counted in the truth as sent."""
        now_s = now.timestamp()
        elapsed = 0.0 if self._doc_last_tick is None else max(0.0, now_s - self._doc_last_tick)
        self._doc_last_tick = now_s
        self._doc_credit += elapsed * self.options.edocuments_per_second
        specs: list[DocumentSpec] = []
        while self._doc_credit >= 1:
            self._doc_credit -= 1
            self._documents += 1
            spec = draw_document(
                self._rng,
                self.options,
                # The number makes every document id of the run distinct.
                number=f"{self._documents:06d}",
                notation=f"{self._prefix}-CV",
                at=now,
            )
            specs.append(spec)
            self.truth.document(spec)
        return specs

    def _schedule(self, dossier: _InFlight, at: float) -> None:
        self._serial += 1
        heapq.heappush(self._queue, (at, self._serial, dossier))

    def _poisson(self, mean: float) -> int:
        # Knuth's method: the means here are small (a few per tick).
        if mean <= 0:
            return 0
        limit, k, p = math.exp(-mean), 0, self._rng.random()
        while p > limit:
            k += 1
            p *= self._rng.random()
        return k

    # --- dossiers ----------------------------------------------------------------------------

    def _new_dossier(self, now: datetime) -> _InFlight:
        rng, options = self._rng, self.options
        self.truth.dossiers += 1
        code = f"{self._prefix}-{self.truth.dossiers:08d}"
        # The order of the draws is the original generator's: a seed gives the traffic it gave.
        request = draw_request(rng, options)
        dialect = draw_dialect(rng, options)
        plan = draw_plan(rng, options, request, code=code, start=now)
        return _InFlight(plan, dialect, bare_first=draw_bare_first(rng, options, dialect, plan))

    def _advance(self, dossier: _InFlight) -> list[SourceEvent]:
        plan, index = dossier.plan, dossier.step
        status, at = plan.steps[index].status, plan.steps[index].at
        dossier.step += 1
        if status == IN_PROCESS and index and plan.steps[index - 1].status == SUPPLEMENT:
            dossier.rounds_done += 1
        bare = index == 0 and dossier.bare_first
        events = [self._header_event(dossier, status, at, dossier.rounds_done, bare=bare)]
        dossier.revision += 1
        self.truth.reached(plan, index)
        dossier.history.append((status, at, dossier.rounds_done))
        if self._rng.random() < self.options.duplicate_rate:
            events.append(_again(events[0], Outcome.DUPLICATE))
        if status != SUBMITTED and self._rng.random() < self.options.progress_share:
            events.append(self._progress_event(dossier, status, at))
        if len(dossier.history) > 1 and self._rng.random() < self.options.out_of_order_rate:
            # An older version arrives after a newer one: a fresh id and its original time.
            old_status, old_at, old_rounds = self._rng.choice(dossier.history[:-1])
            replay = self._header_event(dossier, old_status, old_at, old_rounds, bare=False)
            events.append(_again(replay, Outcome.STALE))
        if dossier.step >= len(plan.steps):
            dossier.history.clear()
        return events

    # --- rendering ---------------------------------------------------------------------------

    def _header(self, d: _InFlight, status: int, rounds: int) -> dict[str, Any]:
        """The DongBoHoSoMC item of the dossier at `status`, as its source writes it."""
        plan, dialect = d.plan, d.dialect
        date = DATE_WRITERS[dialect.dates]
        p = plan.procedure
        ends = {
            "NgayKetThucXuLy": plan.date_of(FINISHED) if status in (FINISHED, RETURNED) else None,
            "NgayTra": plan.date_of(RETURNED) if status == RETURNED else None,
            "NgayTuChoi": plan.date_of(REJECTED) if status == REJECTED else None,
        }
        item: dict[str, Any] = {
            "MaHoSo": plan.code,
            "MaTTHC": p.code,
            "TenTTHC": p.name,
            "MaLinhVuc": p.sector_code,
            "TenLinhVuc": p.sector_name,
            "SoBienNhan": f"{plan.code}-BN",
            "ChuHoSo": plan.applicant,
            "LoaiDoiTuong": 1,
            "SoDienThoai": plan.phone,
            "TrichYeuHoSo": f"Hồ sơ {p.name.lower()} của công dân",
            "NgayNopHoSo": date(plan.submitted_at),
            "TrangThaiHoSo": write_code(status, STATUS_WORDS, dialect),
            "KenhThucHien": write_code(plan.channel, CHANNEL_WORDS, dialect),
            "HoSoCoThanhPhanSoHoa": 1 if plan.digitised and self._rng.random() < 0.5 else 0,
            "TaiLieuNop": [
                {
                    "TepDinhKemId": f"{plan.code}-TL1",
                    "TenTepDinhKem": "Tờ khai.pdf",
                    "MaThanhPhanHoSo": "TP01",
                    "IsDeleted": 0,
                    "DuocSoHoa": 1 if plan.digitised else 0,
                }
            ],
            "DanhSachHoSoBoSung": [
                {"STT": n + 1, "NoiDung": "Bổ sung giấy tờ"} for n in range(rounds)
            ],
        }
        if not dialect.agency_in_envelope:
            item["MaDonVi"] = plan.agency
        if status != SUBMITTED and plan.received_at is not None:
            item["NgayTiepNhan"] = date(plan.received_at)
            if plan.due_at is not None:
                item["NgayHenTra"] = date(plan.due_at)
        for name, value in ends.items():
            if value is not None:
                item[name] = date(value)
        if p.fee:
            item["DanhSachLePhi"] = [
                {"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP01", "Gia": p.fee, "HinhThucThu": 1}
            ]
            if plan.paid_online:
                item["DuocThanhToanTrucTuyen"] = plan.paid_online
        if status in (FINISHED, RETURNED):
            item["DanhSachGiayToKetQua"] = [
                {"TenGiayTo": "Kết quả", "MaGiayToKetQua": f"{plan.code}-KQ", "GiayToId": 1}
            ]
        return styled(item, dialect)

    def _header_event(
        self, d: _InFlight, status: int, at: datetime, rounds: int, *, bare: bool
    ) -> SourceEvent:
        item = self._header(d, status, rounds)
        code = d.plan.code
        if bare:
            # A bare item's time is the latest date it carries: only NgayNopHoSo at status 1.
            value = orjson.dumps(item)
            return SourceEvent(code.encode(), value, (), Outcome.ACCEPTED, code, d.revision + 1)
        return self._envelope(d, DOSSIER_TYPE, item, at, sequence=d.revision + 1)

    def _progress_event(self, d: _InFlight, status: int, at: datetime) -> SourceEvent:
        plan = d.plan
        date = DATE_WRITERS[d.dialect.dates]
        item: dict[str, Any] = {
            "MaHoSo": plan.code,
            "NguoiXuLy": self._rng.choice(HANDLERS),
            "ChucDanh": "Chuyên viên",
            # Whole seconds, at or before the header's time: the step never moves the status.
            "ThoiDiemXuLy": date(second(at)),
            "PhongBanXuLy": "Bộ phận một cửa",
            # The step number keeps two steps of the same status in one second apart.
            "NoiDungXuLy": f"{STATUS_TEXT.get(status, 'Xử lý hồ sơ')} (bước {d.step})",
            "TrangThai": write_code(status, STATUS_WORDS, d.dialect),
        }
        if plan.due_at is not None:
            item["NgayKetThucTheoQuyDinh"] = date(plan.due_at)
        if not d.dialect.agency_in_envelope:
            item["MaDonVi"] = plan.agency
        d.revision += 1
        return self._envelope(d, PROGRESS_TYPE, styled(item, d.dialect), at, sequence=d.revision)

    def _envelope(
        self, d: _InFlight, event_type: str, item: dict[str, Any], at: datetime, *, sequence: int
    ) -> SourceEvent:
        attributes: dict[str, str] = {
            "specversion": "1.0",
            "id": event_id(self._rng),
            "source": self.options.source,
            "type": event_type,
            "time": event_time(at),
            "subject": d.plan.code,
        }
        if d.dialect.agency_in_envelope:
            attributes["agency"] = d.plan.agency
        value, headers = enveloped(d.dialect, attributes, item)
        code = d.plan.code
        return SourceEvent(code.encode(), value, headers, Outcome.ACCEPTED, code, sequence)


def _again(event: SourceEvent, outcome: Outcome) -> SourceEvent:
    return SourceEvent(event.key, event.value, event.headers, outcome, event.dossier, 0)
