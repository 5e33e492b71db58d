"""Realistic dossier traffic for local runs and benchmarks, and the ground truth of what was sent.

Pure: a seeded `random.Random` and the clock come in as arguments, bytes come out. The Kafka
edge (`services.localrun.pipeline`) produces what `TrafficGenerator.tick` returns.

Each dossier follows a plan drawn when it is submitted: 1 → 2 → 4 → (5 → 4)* → 9 → 10, or 1 → 3
(rejected at intake), or withdrawn (7) after acceptance; in-person dossiers may start at 2. Every
status change is a DongBoHoSoMC item, often followed by a CapNhatTienDoHoSoMC step. Events come
in the dialects real source systems send (key case, NFD text, every date format, status as a
number, a numeric string or a word, structured, binary or bare CloudEvents); some are sent
twice, some old versions arrive after newer ones, and some are broken on purpose.

The ground truth is kept as events are generated: what ingest must count for each agency
(indicators 3.3, 2.1, 4.3, 3.6 and 1.4, and the e-documents behind `sig`) and how each event
must end. E-documents are decided here (`tick_documents` → `DocumentSpec`) and written and signed
by `services.localrun.edocs`. It follows the counting
rules of DOMAIN.md §2 on the exact values written into the events, independently of ingest's
code, so that the local run can show both side by side.
"""

from __future__ import annotations

import heapq
import math
import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from schemas.edocument import Direction, SignatureVerdict

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DOSSIER_TYPE = "vn.gov.dvc.dossier.v1"
PROGRESS_TYPE = "vn.gov.dvc.dossier.progress.v1"
UNKNOWN_TYPE = "vn.gov.dvc.unknown.v1"

# DOMAIN.md §1-2: the portal's status codes and the counting sets one provincial system uses.
SUBMITTED, ACCEPTED, REJECTED, IN_PROCESS, SUPPLEMENT = 1, 2, 3, 4, 5
WITHDRAWN, STOPPED, FINISHED, RETURNED = 7, 8, 9, 10
RECEIVED_STATUSES = frozenset({2, 4, 5, 6, 7, 8, 9, 10})
FINISHED_STATUSES = frozenset({WITHDRAWN, FINISHED, RETURNED})
END_STATUSES = FINISHED_STATUSES | {STOPPED, REJECTED}

IN_PERSON, ONLINE, POSTAL = 1, 2, 3
CHANNEL_NAMES = {IN_PERSON: "in_person", ONLINE: "online", POSTAL: "postal"}
# The default vocabulary of ingest (services/ingest/settings.py) in the words one source uses.
STATUS_WORDS = {
    1: "receiving",
    2: "new",
    3: "denied",
    4: "processing",
    5: "waiting",
    6: "paying",
    7: "cancelled",
    8: "unresolved",
    9: "releasing",
    10: "done",
}
CHANNEL_WORDS = {IN_PERSON: "truc_tiep", ONLINE: "online", POSTAL: "buu_chinh"}
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

DEFAULT_AGENCIES = ("000.00.20.H57", "000.00.10.H29", "000.00.00.G22", "000.12.31.H56")
# Agencies outside the run that send e-documents to the run's own (incoming documents).
OTHER_AGENCIES = ("000.00.30.H01", "000.00.41.H31")


@dataclass(frozen=True, slots=True)
class Procedure:
    code: str
    name: str
    sector_code: str
    sector_name: str
    fee: int
    """In đồng; 0 for a procedure without a fee."""


PROCEDURES = (
    Procedure(
        "1.001612", "Đăng ký thành lập hộ kinh doanh", "G01", "Thành lập doanh nghiệp", 100_000
    ),
    Procedure("2.000908", "Chứng thực bản sao từ bản chính", "G02", "Chứng thực", 2_000),
    Procedure("1.004227", "Đăng ký khai sinh", "G03", "Hộ tịch", 0),
    Procedure("1.010736", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "G04", "Xây dựng", 75_000),
    Procedure("1.003180", "Cấp phiếu lý lịch tư pháp", "G05", "Lý lịch tư pháp", 200_000),
    Procedure("2.002228", "Đăng ký kết hôn", "G03", "Hộ tịch", 0),
)
NAMES = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thị Dung", "Đỗ Quang Huy")
HANDLERS = ("Nguyễn Thị Hạnh", "Vũ Đức Long", "Hoàng Minh Tuấn")


class Outcome(StrEnum):
    """How ingest must end each event (the same four outcomes it counts)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"


class Malformation(StrEnum):
    BROKEN_JSON = "broken_json"
    IMPOSSIBLE_DATE = "impossible_date"
    BAD_AGENCY = "bad_agency"
    UNKNOWN_TYPE = "unknown_type"


@dataclass(frozen=True, slots=True)
class TrafficOptions:
    """The shape of the traffic; shares are probabilities in [0, 1]."""

    dossiers_per_second: float = 15.0
    agencies: tuple[str, ...] = DEFAULT_AGENCIES
    source: str = "urn:vn:gov:dvc:local"
    online_share: float = 0.55
    postal_share: float = 0.10
    """The rest is in person."""
    paid_online_share: float = 0.6
    """Of dossiers whose procedure has a fee."""
    digitised_share: float = 0.7
    reject_share: float = 0.05
    withdraw_share: float = 0.04
    supplement_share: float = 0.15
    """Dossiers with one supplement request; a fifth as many again get two (always late)."""
    late_share: float = 0.2
    step_seconds: float = 2.0
    """Mean time between two status changes of a dossier."""
    progress_share: float = 0.5
    """Status changes followed by a CapNhatTienDoHoSoMC processing step."""
    duplicate_rate: float = 0.02
    out_of_order_rate: float = 0.02
    malformed_rate: float = 0.02
    binary_share: float = 0.2
    bare_share: float = 0.1
    """Dossiers whose first event (status 1) comes as a bare item without an envelope."""
    dialect_share: float = 0.35
    """Dossiers whose source writes keys, dates and codes its own way."""
    edocuments_per_second: float = 0.0
    """New edXML document packages per second (0: none)."""
    edocument_incoming_share: float = 0.25
    """Documents sent to the run's agencies by others; the rest are issued by its own."""
    edocument_verified_share: float = 0.6
    """Signed by the trusted signer; then untrusted, tampered (invalid), and the rest unsigned."""
    edocument_untrusted_share: float = 0.15
    edocument_invalid_share: float = 0.1
    edocument_duplicate_rate: float = 0.05
    """Packages sent twice (the second one is a duplicate, never counted)."""


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


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    """One edXML document package to send, and the verdict ingest must reach on its signature.

    `services.localrun.edocs.Packager` writes (and signs) the bytes; `copies` > 1 sends the
    same package again.
    """

    issuer: str
    recipient: str
    number: str
    notation: str
    date: datetime
    verdict: SignatureVerdict
    direction: Direction
    copies: int = 1

    @property
    def document_id(self) -> str:
        day = self.date.astimezone(LOCAL_TZ)
        return f"{self.issuer},{day:%Y/%m/%d},{self.number}/{self.notation}"


@dataclass(slots=True)
class AgencyTally:
    """Counts behind the scored rates of one agency, from metrics or from the ground truth."""

    received_in_person: int = 0
    received_online: int = 0
    received_postal: int = 0
    received_unknown: int = 0
    finished_on_time: int = 0
    finished_late: int = 0
    digitised: int = 0
    fee_bearing: int = 0
    paid_online: int = 0
    synced: int = 0
    """Dossiers the portal acknowledged (from sync) or that should reach it (ground truth)."""
    # E-documents by the issuer's agency, each once: direction and signature verdict.
    edoc_outgoing_verified: int = 0
    edoc_outgoing_untrusted: int = 0
    edoc_outgoing_invalid: int = 0
    edoc_outgoing_unsigned: int = 0
    edoc_incoming_verified: int = 0
    edoc_incoming_untrusted: int = 0
    edoc_incoming_invalid: int = 0
    edoc_incoming_unsigned: int = 0

    @property
    def received(self) -> int:
        return (
            self.received_in_person
            + self.received_online
            + self.received_postal
            + self.received_unknown
        )

    @property
    def finished(self) -> int:
        return self.finished_on_time + self.finished_late

    @property
    def edocuments_outgoing(self) -> int:
        return (
            self.edoc_outgoing_verified
            + self.edoc_outgoing_untrusted
            + self.edoc_outgoing_invalid
            + self.edoc_outgoing_unsigned
        )

    def add_edocument(self, direction: Direction, verdict: SignatureVerdict, n: int = 1) -> None:
        name = f"edoc_{direction.value}_{verdict.value}"
        setattr(self, name, getattr(self, name) + n)


@dataclass(slots=True)
class GroundTruth:
    """What the generator sent: event outcomes and, per agency, what ingest must count."""

    sent: int = 0
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    malformed: dict[Malformation, int] = field(
        default_factory=lambda: dict.fromkeys(Malformation, 0)
    )
    agencies: dict[str, AgencyTally] = field(default_factory=dict)
    dossiers: int = 0
    final_status: dict[str, int] = field(default_factory=dict)
    """Each valid dossier's latest status: what the destinations must hold once drained."""
    edocument_sent: int = 0
    """Records sent to the e-document topic (each package, and each copy of it)."""
    edocument_outcomes: dict[Outcome, int] = field(
        default_factory=lambda: dict.fromkeys(Outcome, 0)
    )

    def agency(self, code: str) -> AgencyTally:
        found = self.agencies.get(code)
        if found is None:
            found = self.agencies[code] = AgencyTally()
        return found


@dataclass(frozen=True, slots=True)
class _Dialect:
    key_case: str  # "as_is", "lower" or "upper"
    dates: str  # a key of _DATE_WRITERS
    codes: str  # "int", "text" or "word"
    nfd: bool
    envelope: str  # "structured" or "binary"
    agency_in_envelope: bool


def _ms(value: datetime) -> int:
    """Epoch milliseconds exactly as ingest computes them (services/ingest/state.py)."""
    return int(value.timestamp() * 1000)


def _second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


_DATE_WRITERS: dict[str, Callable[[datetime], str | int]] = {
    "portal": lambda d: d.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S"),
    "iso_offset": lambda d: d.astimezone(LOCAL_TZ).isoformat(),
    "iso_utc": lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    "iso_local": lambda d: d.astimezone(LOCAL_TZ).replace(tzinfo=None).isoformat(),
    "dmy": lambda d: d.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M:%S"),
    "ymd": lambda d: d.astimezone(LOCAL_TZ).strftime("%Y/%m/%d %H:%M:%S"),
    "epoch_ms": lambda d: _ms(d),
}
_PLAIN = _Dialect("as_is", "portal", "int", False, "structured", False)


@dataclass(slots=True)
class _Plan:
    statuses: list[int]
    gaps: list[float]
    on_time: bool


@dataclass(slots=True)
class _Dossier:
    """One dossier in flight: its fixed attributes, its plan, and the truth so far."""

    code: str
    agency: str
    procedure: Procedure
    channel: int
    paid_online: int
    digitised: bool
    applicant: str
    phone: str
    dialect: _Dialect
    bare_first: bool
    plan: _Plan
    step: int = 0
    next_at: float = 0.0
    last: datetime | None = None
    """Time of the latest status change sent (strictly increasing)."""
    submitted_at: datetime | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    rejected_at: datetime | None = None
    rounds_done: int = 0
    """Supplement rounds completed (DanhSachHoSoBoSung)."""
    history: list[tuple[int, datetime, int]] = field(default_factory=list)
    """(status, time, rounds done) of each change sent, to replay an old version later."""
    accepted: int = 0
    # The truth, kept by DOMAIN.md §2's rules on the values sent.
    status: int = 0
    status_ms: int = 0
    supplements: int = 0
    supplement_since_ms: int = 0
    supplement_total_ms: int = 0
    end_ms: int = 0
    counted_received: bool = False
    counted_finished: bool = False
    counted_digitised: bool = False
    counted_fee: bool = False
    counted_paid: bool = False


class TrafficGenerator:
    """Makes the events due at each `tick(now)` and keeps the ground truth of everything sent."""

    def __init__(self, options: TrafficOptions, rng: random.Random, *, prefix: str = "") -> None:
        self.options = options
        self.truth = GroundTruth()
        self._rng = rng
        self._prefix = prefix or f"{rng.randrange(16**6):06X}"
        self._queue: list[tuple[float, int, _Dossier]] = []
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
            self._schedule(self._new_dossier(), now_s)
        # One change per dossier per tick keeps each dossier's times strictly increasing.
        due: list[_Dossier] = []
        while self._queue and self._queue[0][0] <= now_s:
            due.append(heapq.heappop(self._queue)[2])
        for dossier in due:
            events.extend(self._advance(dossier, now))
            if dossier.step < len(dossier.plan.statuses):
                gap = dossier.plan.gaps[dossier.step]
                self._schedule(dossier, now_s + gap)
        for _ in range(self._poisson(len(events) * self.options.malformed_rate)):
            events.append(self._malformed(now))
        self.truth.sent += len(events)
        for event in events:
            self.truth.outcomes[event.expected] += 1
        return events

    def tick_documents(self, now: datetime) -> list[DocumentSpec]:
        """The e-documents due by `now` at the configured rate, counted in the truth as sent."""
        o, rng = self.options, self._rng
        now_s = now.timestamp()
        elapsed = 0.0 if self._doc_last_tick is None else max(0.0, now_s - self._doc_last_tick)
        self._doc_last_tick = now_s
        self._doc_credit += elapsed * o.edocuments_per_second
        specs: list[DocumentSpec] = []
        while self._doc_credit >= 1:
            self._doc_credit -= 1
            self._documents += 1
            own = rng.choice(o.agencies)
            if rng.random() < o.edocument_incoming_share:
                direction, issuer, recipient = Direction.INCOMING, rng.choice(OTHER_AGENCIES), own
            else:
                others = [a for a in o.agencies if a != own] or list(OTHER_AGENCIES)
                direction, issuer, recipient = Direction.OUTGOING, own, rng.choice(others)
            roll = rng.random()
            verified = o.edocument_verified_share
            untrusted = verified + o.edocument_untrusted_share
            verdict = (
                SignatureVerdict.VERIFIED
                if roll < verified
                else SignatureVerdict.UNTRUSTED
                if roll < untrusted
                else SignatureVerdict.INVALID
                if roll < untrusted + o.edocument_invalid_share
                else SignatureVerdict.UNSIGNED
            )
            copies = 2 if rng.random() < o.edocument_duplicate_rate else 1
            spec = DocumentSpec(
                issuer=issuer,
                recipient=recipient,
                # The number makes every document id of the run distinct.
                number=f"{self._documents:06d}",
                notation=f"{self._prefix}-CV",
                date=_second(now),
                verdict=verdict,
                direction=direction,
                copies=copies,
            )
            specs.append(spec)
            self.truth.agency(issuer).add_edocument(direction, verdict)
            self.truth.edocument_sent += copies
            self.truth.edocument_outcomes[Outcome.ACCEPTED] += 1
            self.truth.edocument_outcomes[Outcome.DUPLICATE] += copies - 1
        return specs

    def _schedule(self, dossier: _Dossier, at: float) -> None:
        self._serial += 1
        dossier.next_at = at
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

    def _new_dossier(self) -> _Dossier:
        o, rng = self.options, self._rng
        self.truth.dossiers += 1
        roll = rng.random()
        channel = (
            ONLINE
            if roll < o.online_share
            else POSTAL
            if roll < o.online_share + o.postal_share
            else IN_PERSON
        )
        procedure = rng.choice(PROCEDURES)
        paid = rng.choice((1, 2)) if procedure.fee and rng.random() < o.paid_online_share else 0
        dialect = _PLAIN
        if rng.random() < o.dialect_share:
            dialect = _Dialect(
                key_case=rng.choice(("as_is", "lower", "upper")),
                dates=rng.choice(tuple(_DATE_WRITERS)),
                codes=rng.choice(("int", "text", "word")),
                nfd=rng.random() < 0.5,
                envelope="structured",
                agency_in_envelope=rng.random() < 0.3,
            )
        if rng.random() < o.binary_share:
            dialect = _Dialect(
                dialect.key_case, dialect.dates, dialect.codes, dialect.nfd, "binary", False
            )
        plan = self._plan(channel)
        return _Dossier(
            code=f"{self._prefix}-{self.truth.dossiers:08d}",
            agency=rng.choice(o.agencies),
            procedure=procedure,
            channel=channel,
            paid_online=paid,
            digitised=rng.random() < o.digitised_share,
            applicant=rng.choice(NAMES),
            phone=f"09{rng.randrange(10**8):08d}",
            dialect=dialect,
            # A bare item has no envelope to name the agency: only sources that put it in the data.
            bare_first=plan.statuses[0] == SUBMITTED
            and not dialect.agency_in_envelope
            and rng.random() < o.bare_share,
            plan=plan,
        )

    def _plan(self, channel: int) -> _Plan:
        o, rng = self.options, self._rng
        start = [ACCEPTED] if channel == IN_PERSON and rng.random() < 0.5 else [SUBMITTED, ACCEPTED]
        roll = rng.random()
        if start[0] == SUBMITTED and roll < o.reject_share:
            statuses = [SUBMITTED, REJECTED]
        elif roll < o.reject_share + o.withdraw_share:
            statuses = [*start, *([IN_PROCESS] if rng.random() < 0.5 else []), WITHDRAWN]
        else:
            rounds = 0
            if rng.random() < o.supplement_share:
                rounds = 2 if rng.random() < 0.2 else 1
            statuses = [
                *start,
                IN_PROCESS,
                *([SUPPLEMENT, IN_PROCESS] * rounds),
                FINISHED,
                RETURNED,
            ]
        gaps = [max(0.3, rng.expovariate(1 / o.step_seconds)) for _ in statuses]
        return _Plan(statuses, gaps, on_time=rng.random() >= o.late_share)

    def _due(self, dossier: _Dossier, accepted: datetime) -> datetime:
        """A due date that makes the planned finish on time or late, by whole seconds."""
        plan = dossier.plan
        index = plan.statuses.index(ACCEPTED)
        until_finish = 0.0
        supplement = 0.0
        # gaps[i] is the wait before statuses[i].
        for i in range(index + 1, len(plan.statuses)):
            until_finish += plan.gaps[i]
            if plan.statuses[i - 1] == SUPPLEMENT:
                supplement += plan.gaps[i]
            if plan.statuses[i] in END_STATUSES:
                break
        if plan.on_time:
            offset = until_finish + 2.0 + self.options.step_seconds
        else:
            offset = max(1.0, until_finish - supplement - 1.0)
        return _second(accepted) + timedelta(seconds=math.ceil(offset))

    def _advance(self, dossier: _Dossier, now: datetime) -> list[SourceEvent]:
        status = dossier.plan.statuses[dossier.step]
        dossier.step += 1
        at = now if dossier.last is None else max(now, dossier.last + timedelta(milliseconds=1))
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        dossier.last = at
        if status == SUBMITTED:
            dossier.submitted_at = _second(at)
        elif status == ACCEPTED:
            dossier.submitted_at = dossier.submitted_at or _second(at)
            dossier.received_at = _second(at)
            dossier.due_at = self._due(dossier, at)
        elif status == REJECTED:
            dossier.rejected_at = _second(at)
        elif status == IN_PROCESS and dossier.status == SUPPLEMENT:
            dossier.rounds_done += 1
        elif status == FINISHED:
            dossier.finished_at = _second(at)
        elif status == RETURNED:
            dossier.returned_at = _second(at)
        bare = dossier.step == 1 and dossier.bare_first
        events = [self._header_event(dossier, status, at, dossier.rounds_done, bare=bare)]
        self._count(dossier, status, at)
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
        if dossier.step >= len(dossier.plan.statuses):
            dossier.history.clear()
        return events

    def _count(self, dossier: _Dossier, status: int, at: datetime) -> None:
        """Apply an accepted header to the truth, by DOMAIN.md §2 (the rules, not ingest's code)."""
        at_ms = _ms(at)
        previous = dossier.status
        if status == SUPPLEMENT and previous != SUPPLEMENT:
            dossier.supplements += 1
            dossier.supplement_since_ms = at_ms
        elif previous == SUPPLEMENT and status != SUPPLEMENT:
            dossier.supplement_total_ms += max(0, at_ms - dossier.supplement_since_ms)
            dossier.supplement_since_ms = 0
        if status in END_STATUSES and not dossier.end_ms:
            dossier.end_ms = at_ms
            ended = dossier.finished_at or dossier.returned_at or dossier.rejected_at
            if ended is not None:
                dossier.end_ms = min(dossier.end_ms, _ms(ended))
        dossier.status, dossier.status_ms = status, at_ms
        dossier.accepted += 1
        self.truth.final_status[dossier.code] = status
        tally = self.truth.agency(dossier.agency)
        if status in RECEIVED_STATUSES:
            if not dossier.counted_received:
                dossier.counted_received = True
                # Once drained, the portal holds every received dossier: indicator 1.4's numerator.
                tally.synced += 1
                name = CHANNEL_NAMES[dossier.channel]
                setattr(tally, f"received_{name}", getattr(tally, f"received_{name}") + 1)
            if dossier.digitised and not dossier.counted_digitised:
                dossier.counted_digitised = True
                tally.digitised += 1
            if dossier.procedure.fee and not dossier.counted_fee:
                dossier.counted_fee = True
                tally.fee_bearing += 1
            if dossier.procedure.fee and dossier.paid_online and not dossier.counted_paid:
                dossier.counted_paid = True
                tally.paid_online += 1
        if status in FINISHED_STATUSES and not dossier.counted_finished:
            dossier.counted_finished = True
            if self._on_time(dossier):
                tally.finished_on_time += 1
            else:
                tally.finished_late += 1

    @staticmethod
    def _on_time(dossier: _Dossier) -> bool:
        """Indicator 2.1: one supplement's time does not count, two or more make it late."""
        if dossier.supplements >= 2:
            return False
        if dossier.due_at is None:
            return True
        allowance = dossier.supplement_total_ms if dossier.supplements == 1 else 0
        return dossier.end_ms <= _ms(dossier.due_at) + allowance

    # --- rendering ---------------------------------------------------------------------------

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _header(self, d: _Dossier, status: int, at: datetime, rounds: int) -> dict[str, Any]:
        dialect = d.dialect
        date = _DATE_WRITERS[dialect.dates]
        p = d.procedure
        ends = {
            "NgayKetThucXuLy": d.finished_at if status in (FINISHED, RETURNED) else None,
            "NgayTra": d.returned_at if status == RETURNED else None,
            "NgayTuChoi": d.rejected_at if status == REJECTED else None,
        }
        item: dict[str, Any] = {
            "MaHoSo": d.code,
            "MaTTHC": p.code,
            "TenTTHC": p.name,
            "MaLinhVuc": p.sector_code,
            "TenLinhVuc": p.sector_name,
            "SoBienNhan": f"{d.code}-BN",
            "ChuHoSo": d.applicant,
            "LoaiDoiTuong": 1,
            "SoDienThoai": d.phone,
            "TrichYeuHoSo": f"Hồ sơ {p.name.lower()} của công dân",
            "NgayNopHoSo": date(d.submitted_at or _second(at)),
            "TrangThaiHoSo": self._code(status, STATUS_WORDS, dialect),
            "KenhThucHien": self._code(d.channel, CHANNEL_WORDS, dialect),
            "HoSoCoThanhPhanSoHoa": 1 if d.digitised and self._rng.random() < 0.5 else 0,
            "TaiLieuNop": [
                {
                    "TepDinhKemId": f"{d.code}-TL1",
                    "TenTepDinhKem": "Tờ khai.pdf",
                    "MaThanhPhanHoSo": "TP01",
                    "IsDeleted": 0,
                    "DuocSoHoa": 1 if d.digitised else 0,
                }
            ],
            "DanhSachHoSoBoSung": [
                {"STT": n + 1, "NoiDung": "Bổ sung giấy tờ"} for n in range(rounds)
            ],
        }
        if not dialect.agency_in_envelope:
            item["MaDonVi"] = d.agency
        if status != SUBMITTED and d.received_at is not None:
            item["NgayTiepNhan"] = date(d.received_at)
            if d.due_at is not None:
                item["NgayHenTra"] = date(d.due_at)
        for name, value in ends.items():
            if value is not None:
                item[name] = date(value)
        if p.fee:
            item["DanhSachLePhi"] = [
                {"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP01", "Gia": p.fee, "HinhThucThu": 1}
            ]
            if d.paid_online:
                item["DuocThanhToanTrucTuyen"] = d.paid_online
        if status in (FINISHED, RETURNED):
            item["DanhSachGiayToKetQua"] = [
                {"TenGiayTo": "Kết quả", "MaGiayToKetQua": f"{d.code}-KQ", "GiayToId": 1}
            ]
        return _styled(item, dialect)

    def _code(self, value: int, words: dict[int, str], dialect: _Dialect) -> int | str:
        if dialect.codes == "text":
            return str(value)
        if dialect.codes == "word":
            return words[value]
        return value

    def _header_event(
        self, d: _Dossier, status: int, at: datetime, rounds: int, *, bare: bool
    ) -> SourceEvent:
        item = self._header(d, status, at, rounds)
        if bare:
            # A bare item's time is the latest date it carries: only NgayNopHoSo at status 1.
            return SourceEvent(
                d.code.encode(), orjson.dumps(item), (), Outcome.ACCEPTED, d.code, d.accepted + 1
            )
        return self._envelope(d, DOSSIER_TYPE, item, at, sequence=d.accepted + 1)

    def _progress_event(self, d: _Dossier, status: int, at: datetime) -> SourceEvent:
        date = _DATE_WRITERS[d.dialect.dates]
        item: dict[str, Any] = {
            "MaHoSo": d.code,
            "NguoiXuLy": self._rng.choice(HANDLERS),
            "ChucDanh": "Chuyên viên",
            # Whole seconds, at or before the header's time: the step never moves the status.
            "ThoiDiemXuLy": date(_second(at)),
            "PhongBanXuLy": "Bộ phận một cửa",
            # The step number keeps two steps of the same status in one second apart.
            "NoiDungXuLy": f"{STATUS_TEXT.get(status, 'Xử lý hồ sơ')} (bước {d.step})",
            "TrangThai": self._code(status, STATUS_WORDS, d.dialect),
        }
        if d.due_at is not None:
            item["NgayKetThucTheoQuyDinh"] = date(d.due_at)
        if not d.dialect.agency_in_envelope:
            item["MaDonVi"] = d.agency
        d.accepted += 1
        return self._envelope(d, PROGRESS_TYPE, _styled(item, d.dialect), at, sequence=d.accepted)

    def _envelope(
        self,
        d: _Dossier,
        event_type: str,
        item: dict[str, Any],
        at: datetime,
        *,
        sequence: int,
        outcome: Outcome = Outcome.ACCEPTED,
    ) -> SourceEvent:
        attributes: dict[str, str] = {
            "specversion": "1.0",
            "id": self._event_id(),
            "source": self.options.source,
            "type": event_type,
            "time": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "subject": d.code,
        }
        if d.dialect.agency_in_envelope:
            attributes["agency"] = d.agency
        key = d.code.encode()
        if d.dialect.envelope == "binary":
            headers = tuple((f"ce_{k}", v.encode()) for k, v in attributes.items())
            headers += (("content-type", b"application/json"),)
            return SourceEvent(key, orjson.dumps(item), headers, outcome, d.code, sequence)
        value = orjson.dumps({**attributes, "datacontenttype": "application/json", "data": item})
        return SourceEvent(key, value, (), outcome, d.code, sequence)

    # --- broken on purpose -------------------------------------------------------------------

    def _malformed(self, now: datetime) -> SourceEvent:
        kind = self._rng.choice(tuple(Malformation))
        self.truth.malformed[kind] += 1
        code = f"{self._prefix}-X{self._rng.randrange(10**8):08d}"
        agency = self._rng.choice(self.options.agencies)
        item: dict[str, Any] = {
            "MaHoSo": code,
            "MaDonVi": agency,
            "TrangThaiHoSo": 1,
            "NgayNopHoSo": now.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S"),
        }
        event_type = DOSSIER_TYPE
        if kind is Malformation.IMPOSSIBLE_DATE:
            item["NgayNopHoSo"] = self._rng.choice(("20260231101500", "31/04/2026 08:00:00"))
        elif kind is Malformation.BAD_AGENCY:
            item["MaDonVi"] = self._rng.choice(("H57", "UBND-HN", "000.00.20"))
        elif kind is Malformation.UNKNOWN_TYPE:
            event_type = UNKNOWN_TYPE
        envelope = {
            "specversion": "1.0",
            "id": self._event_id(),
            "source": self.options.source,
            "type": event_type,
            "time": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": item,
        }
        value = orjson.dumps(envelope)
        if kind is Malformation.BROKEN_JSON:
            value = value[: len(value) // 2]
        return SourceEvent(code.encode(), value, (), Outcome.DEAD_LETTERED, None)


def _again(event: SourceEvent, outcome: Outcome) -> SourceEvent:
    return SourceEvent(event.key, event.value, event.headers, outcome, event.dossier, 0)


def _styled(item: dict[str, Any], dialect: _Dialect) -> dict[str, Any]:
    """Key case and Unicode form of one source system, applied to nested items too."""

    def key(name: str) -> str:
        if dialect.key_case == "lower":
            return name.lower()
        if dialect.key_case == "upper":
            return name.upper()
        return name

    def value(v: Any) -> Any:
        if isinstance(v, str) and dialect.nfd:
            return unicodedata.normalize("NFD", v)
        if isinstance(v, list):
            return [_styled(x, dialect) if isinstance(x, dict) else value(x) for x in v]
        return v

    return {key(k): value(v) for k, v in item.items()}
