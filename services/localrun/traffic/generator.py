"""Realistic dossier traffic for local runs and benchmarks: plans rendered into Kafka records.

Pure: a seeded `random.Random` and the clock come in as arguments, bytes come out. The Kafka
edge (`services.localrun.pipeline`) produces what `TrafficGenerator.tick` returns.

Each dossier's plan (`plans`) is drawn when it is submitted; every status change it plans is a
DongBoHoSoMC item, often followed by a CapNhatTienDoHoSoMC step, carrying the plan's facts and
times in its source's dialect (`dialects`), or sent the way its pattern (`plans.Pattern`) says:
bare items through the whole life, headers only at some changes (steps for the others), facts
that arrive after the first items, a backfill dated weeks ago, the final header exported again,
the agency re-coded mid-life. Some events are sent twice, some old versions arrive after newer
ones, and some are broken on purpose (`malformations`). Each record says how ingest must end it
and, when accepted, the revision it must become.

The ground truth (`truth`) is told which plans reached which status and counts from the plans;
this module only tells it what was sent. E-documents are decided by `plans.draw_document` and
written and signed by `services.localrun.edocs`.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
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
from services.localrun.traffic.dialects import (
    PLAIN as PLAIN_DIALECT,
)
from services.localrun.traffic.malformations import Malformation, Malformed, draw_malformed
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
    Pattern,
    draw_document,
    draw_pattern,
    draw_patterned_plan,
    draw_request,
    second,
)
from services.localrun.traffic.truth import (
    ENTRY_DVCQG,
    ENTRY_HTTP,
    ENTRY_KAFKA,
    GroundTruth,
    Outcome,
)

# The portal adapter's services (DOMAIN.md §1), and a name no portal knows (a broken call).
DONG_BO = "DongBoHoSoMC"
CAP_NHAT = "CapNhatTienDoHoSoMC"
UNKNOWN_SERVICE = "DongBoHoSoKhac"

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
LATE_FACTS = (
    "KenhThucHien",
    "HoSoCoThanhPhanSoHoa",
    "TaiKhoanDuocXacThucVoiVNeID",
    "TaiLieuNop",
    "DanhSachLePhi",
    "DuocThanhToanTrucTuyen",
)
"""What a header sent before the facts are known leaves out (`DossierPlan.facts_from`)."""


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One event for the dossier topic, and how ingest must end it.

    Through Kafka (`entry` "kafka"): the record's key, value and headers. Through the
    portal-compatible intake (`entry` "dvcqg"): `value` is the one item of a call of `service`
    for agency `madonvi` (or, for a broken call, the body's bytes), and `refused` says the
    intake must refuse it (it then never reaches the topic)."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    expected: Outcome
    dossier: str | None = None
    sequence: int = 0
    """For accepted events: the dossier's revision this event must become (1, 2, ...)."""
    entry: str = ENTRY_KAFKA
    service: str | None = None
    madonvi: str | None = None
    refused: bool = False


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
    history: list[tuple[int, int, datetime, int]] = field(default_factory=list)
    """(index, status, time, rounds done) of each header sent, to replay an old one later."""
    reexport: bool = False
    """The final header is still to be exported again."""
    entry: str = ENTRY_KAFKA
    """How its source sends it: to the dossier topic, or through `/dvcqg` as an adapter."""


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
        # Patterns come from their own stream, so a seed's plain traffic stays what it was.
        self._patterns = random.Random(rng.getrandbits(32))  # noqa: S311 - traffic, not secrets
        # Entry points too, seeded from the prefix so that the other streams stay as they were.
        self._entries = random.Random(f"{self._prefix}-entries")  # noqa: S311
        plain = 1.0 - sum(
            (
                options.bare_life_share,
                options.sparse_header_share,
                options.late_facts_share,
                options.backfill_share,
                options.reexport_share,
                options.recode_share,
            )
        )
        # Adapters send plainly (a header at each change, in order): drawn among those.
        self._dvcqg_of_plain = min(1.0, options.dvcqg_share / plain) if plain > 0 else 0.0
        self.truth.preset = options.agencies

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
            if dossier.step >= len(dossier.plan.steps):
                events.append(self._reexport(dossier, now))
                continue
            events.extend(self._advance(dossier, now))
            if dossier.step < len(dossier.plan.steps):
                self._schedule(dossier, now_s + dossier.plan.steps[dossier.step].wait)
            elif dossier.reexport:
                self._schedule(dossier, now_s + self.options.reexport_after_seconds)
        for _ in range(self._poisson(len(events) * self.options.malformed_rate)):
            broken = draw_malformed(self._rng, self.options, prefix=self._prefix, now=now)
            self.truth.broken(broken.kind)
            roll = self._entries.random()
            if roll < self.options.dvcqg_share:
                events.append(_refused_call(broken))
            elif roll < self.options.dvcqg_share + self.options.http_share:
                # Posted as it is: the HTTP intake refuses it with a 4xx and the reason.
                value = broken.value
                events.append(
                    SourceEvent(
                        broken.key, value, (), Outcome.DEAD_LETTERED, entry=ENTRY_HTTP, refused=True
                    )
                )
            else:
                events.append(SourceEvent(broken.key, broken.value, (), Outcome.DEAD_LETTERED))
        self.truth.events(events)
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
        pattern = draw_pattern(self._patterns, options)
        adapter = pattern is Pattern.PLAIN and self._entries.random() < self._dvcqg_of_plain
        # The intake stamps each item with its arrival, and a step's date is cut to the
        # second: changes of an adapter's dossier are spaced as step-only changes are.
        plan = draw_patterned_plan(
            rng, options, request, pattern, code=code, start=now, spaced=adapter
        )
        bare_first = pattern is Pattern.PLAIN and draw_bare_first(rng, options, dialect, plan)
        if adapter:
            # An adapter writes the portal's own field names and dates; the intake wraps each
            # item in its envelope (so no bare first item either).
            return _InFlight(plan, PLAIN_DIALECT, bare_first=False, entry=ENTRY_DVCQG)
        # A structured CloudEvent goes to the HTTP intake as it is (binary ones and bare items
        # are Kafka's forms): its id and time come along, so copies and replays stay what
        # they are.
        structured = dialect.envelope == "structured" and not bare_first
        http = structured and pattern is not Pattern.BARE_LIFE
        entry = ENTRY_HTTP if http and self._entries.random() < options.http_share else ENTRY_KAFKA
        return _InFlight(
            plan,
            dialect,
            bare_first=bare_first,
            reexport=pattern is Pattern.REEXPORT,
            entry=entry,
        )

    def _advance(self, dossier: _InFlight, now: datetime) -> list[SourceEvent]:
        plan, index = dossier.plan, dossier.step
        status, at = plan.steps[index].status, plan.steps[index].at
        dossier.step += 1
        if status == IN_PROCESS and index and plan.steps[index - 1].status == SUPPLEMENT:
            dossier.rounds_done += 1
        bare_life = plan.pattern is Pattern.BARE_LIFE
        events: list[SourceEvent] = []
        if plan.has_header(index):
            bare = bare_life or (index == 0 and dossier.bare_first)
            events.append(self._header_event(dossier, index, at, dossier.rounds_done, bare=bare))
            dossier.revision += 1
            dossier.history.append((index, status, at, dossier.rounds_done))
            # An adapter sends each change once, in order (its outbox): no copies, no replays.
            adapter = dossier.entry == ENTRY_DVCQG
            if self._rng.random() < self.options.duplicate_rate and not adapter:
                events.append(_again(events[0], Outcome.DUPLICATE))
            step = not bare_life and status != SUBMITTED
            step = step and self._rng.random() < self.options.progress_share
        else:
            step = True  # a change without its header is told by a step
        self.truth.reached(plan, index)
        if step:
            # An adapter dates its step when it sends it: the intake places the previous
            # change at its arrival, so a step dated by the plan could fall before it.
            dated = now if dossier.entry == ENTRY_DVCQG else at
            events.append(self._progress_event(dossier, index, status, dated))
        if (
            len(dossier.history) > 1
            and self._rng.random() < self.options.out_of_order_rate
            and dossier.entry != ENTRY_DVCQG
        ):
            replay = self._replay(dossier)
            if replay is not None:
                events.append(_again(replay, Outcome.STALE))
        if dossier.step >= len(plan.steps):
            dossier.history.clear()
        return events

    def _replay(self, d: _InFlight) -> SourceEvent | None:
        """An older version arriving after a newer one: with its original time, older than the
        newest header's. Not for a source of bare items: a bare item's id is its content, so an
        old version sent again is the same event (a duplicate while ingest remembers its id),
        and its time is only as old as its dates."""
        if d.plan.pattern is Pattern.BARE_LIFE:
            return None
        index, _, at, rounds = self._rng.choice(d.history[:-1])
        return self._header_event(d, index, at, rounds, bare=False)

    def _reexport(self, d: _InFlight, now: datetime) -> SourceEvent:
        """The final header exported again, under a new id and the time of the export: the
        same item is a duplicate; one that now links the result file is a correction."""
        d.reexport = False
        plan, index = d.plan, len(d.plan.steps) - 1
        status = plan.steps[index].status
        item = self._header(d, index, status, d.rounds_done)
        corrected = status in (FINISHED, RETURNED) and self._rng.random() < 0.5
        if corrected:
            results = next(v for k, v in item.items() if k.lower() == "danhsachgiaytoketqua")
            link = f"https://dvc.example.gov.vn/ket-qua/{plan.code}.pdf"
            results[0] = styled({**results[0], "DuongDanTepTinKetQua": link}, d.dialect)
        self.truth.reexported(plan, corrected=corrected)
        event = self._envelope(d, DOSSIER_TYPE, item, now, sequence=d.revision + 1, index=index)
        if not corrected:
            return _again(event, Outcome.DUPLICATE)
        d.revision += 1
        return event

    # --- rendering ---------------------------------------------------------------------------

    def _header(self, d: _InFlight, index: int, status: int, rounds: int) -> dict[str, Any]:
        """The DongBoHoSoMC item of the dossier at its change `index`, as its source writes it."""
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
            # Drawn from the change itself, so the same change is written the same way again.
            "HoSoCoThanhPhanSoHoa": int(
                plan.digitised and zlib.crc32(f"{plan.code}{index}".encode()) % 2 == 0
            ),
            "TaiKhoanDuocXacThucVoiVNeID": 1 if plan.vneid else 0,
            "TaiLieuNop": [
                {
                    "TepDinhKemId": f"{plan.code}-TL1",
                    "TenTepDinhKem": "Tờ khai.pdf",
                    "MaThanhPhanHoSo": "TP01",
                    "IsDeleted": 0,
                    "DuocSoHoa": 1 if plan.digitised else 0,
                    "DuocLayTuKhoDMQG": 1 if plan.national else 0,
                }
            ],
            "DanhSachHoSoBoSung": [
                {"STT": n + 1, "NoiDung": "Bổ sung giấy tờ"} for n in range(rounds)
            ],
        }
        if not dialect.agency_in_envelope or plan.pattern is Pattern.BARE_LIFE:
            item["MaDonVi"] = plan.agency_at(index)
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
        if index < plan.facts_from:
            for name in LATE_FACTS:
                item.pop(name, None)
        return styled(item, dialect)

    def _header_event(
        self, d: _InFlight, index: int, at: datetime, rounds: int, *, bare: bool
    ) -> SourceEvent:
        item = self._header(d, index, d.plan.steps[index].status, rounds)
        code = d.plan.code
        if d.entry == ENTRY_DVCQG:
            return _call(d, DONG_BO, item, index, sequence=d.revision + 1)
        if bare:
            # A bare item's time comes from its dates (`truth.bare_times`).
            value = orjson.dumps(item)
            return SourceEvent(code.encode(), value, (), Outcome.ACCEPTED, code, d.revision + 1)
        return self._envelope(d, DOSSIER_TYPE, item, at, sequence=d.revision + 1, index=index)

    def _progress_event(self, d: _InFlight, index: int, status: int, at: datetime) -> SourceEvent:
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
            item["MaDonVi"] = plan.agency_at(index)
        d.revision += 1
        step = styled(item, d.dialect)
        if d.entry == ENTRY_DVCQG:
            return _call(d, CAP_NHAT, step, index, sequence=d.revision)
        return self._envelope(d, PROGRESS_TYPE, step, at, sequence=d.revision, index=index)

    def _envelope(
        self,
        d: _InFlight,
        event_type: str,
        item: dict[str, Any],
        at: datetime,
        *,
        sequence: int,
        index: int,
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
            attributes["agency"] = d.plan.agency_at(index)
        value, headers = enveloped(d.dialect, attributes, item)
        code = d.plan.code
        return SourceEvent(
            code.encode(), value, headers, Outcome.ACCEPTED, code, sequence, entry=d.entry
        )


def _again(event: SourceEvent, outcome: Outcome) -> SourceEvent:
    return SourceEvent(
        event.key, event.value, event.headers, outcome, event.dossier, 0, entry=event.entry
    )


def _call(
    d: _InFlight, service: str, item: dict[str, Any], index: int, *, sequence: int
) -> SourceEvent:
    """One item for the portal-compatible intake: a call of `service` for the item's agency."""
    code = d.plan.code
    return SourceEvent(
        code.encode(),
        orjson.dumps(item),
        (),
        Outcome.ACCEPTED,
        code,
        sequence,
        entry=ENTRY_DVCQG,
        service=service,
        madonvi=d.plan.agency_at(index),
    )


def _refused_call(broken: Malformed) -> SourceEvent:
    """A malformed event as an adapter would send it: the intake refuses the call (an
    `error_code`, or a 4xx for a body that is not JSON), so it never reaches the topic.
    The broken JSON is the whole body; the unknown event type, a service no portal has."""
    item = orjson.loads(broken.value) if broken.kind is not Malformation.BROKEN_JSON else None
    data = item["data"] if item is not None else None
    service = UNKNOWN_SERVICE if broken.kind is Malformation.UNKNOWN_TYPE else DONG_BO
    value = broken.value if data is None else orjson.dumps(data)
    # The call's madonvi is the item's MaDonVi (a bad code is refused: not the account's).
    madonvi = None if data is None else str(data["MaDonVi"])
    return SourceEvent(
        broken.key,
        value,
        (),
        Outcome.DEAD_LETTERED,
        entry=ENTRY_DVCQG,
        service=service,
        madonvi=madonvi,
        refused=True,
    )
