"""What each dossier and e-document of the local run will be and do, and when: its intended facts.

A plan is drawn once, when the dossier is submitted, from a seeded `random.Random`: the agency,
channel, procedure (and so its fee), online payment, digitised components, the statuses it will
pass through with the time of each, its supplement rounds, its due date, and whether it is meant
to finish on time. The generator renders plans into events; the ground truth counts plans. Both
read these facts and nothing else, so what ingest counts from the events can be checked against
what the plans meant.

Lifecycles: 1 → 2 → 4 → (5 → 4)* → 9 → 10, or 1 → 3 (refused at intake), or withdrawn (7) after
acceptance; in-person dossiers may start at 2.

Timeliness (DOMAIN.md §2, indicator 2.1) is decided here, when the plan is drawn: a dossier is
on time when its handling ends no later than its due date plus the time of its one supplement
request, and two supplement rounds make it late whatever its due date. The due date is placed
from the plan's own times with a margin of seconds on the right side of the end, so the events
say what the plan means however the rounding of dates to seconds falls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from schemas.edocument import Direction, SignatureVerdict
from services.localrun.traffic.options import OTHER_AGENCIES, TrafficOptions

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# DOMAIN.md §1: the portal's status codes (TrangThaiHoSo) and channels (KenhThucHien).
SUBMITTED, ACCEPTED, REJECTED, IN_PROCESS, SUPPLEMENT = 1, 2, 3, 4, 5
WITHDRAWN, STOPPED, FINISHED, RETURNED = 7, 8, 9, 10
IN_PERSON, ONLINE, POSTAL = 1, 2, 3
# DOMAIN.md §2, 2.1: the first of these ends a dossier's handling (the time judged on time).
HANDLING_ENDS = frozenset({REJECTED, WITHDRAWN, STOPPED, FINISHED, RETURNED})
# DOMAIN.md §2: received = every status but submitted (1) and refused at intake (3).
RECEIVED_STATUSES = frozenset(range(1, 11)) - {SUBMITTED, REJECTED}

# How far the due date lies from the end less supplement time (itself cut to the second): after
# it for an on-time plan, before it for a late one. Either way the end as ingest reads it (a
# date to the second, up to a second before the step's time) is more than 2 s clear of it.
ON_TIME_MARGIN = timedelta(seconds=3)
LATE_MARGIN = timedelta(seconds=3)
ADAPTER_ON_TIME_MARGIN = timedelta(seconds=30)
"""The on-time margin of a dossier sent through `/dvcqg`. The intake stamps each item with its
arrival, seconds behind the plan on a busy machine (4 s seen). A status with no date of its own
in DongBoHoSoMC (withdrawn 7, a supplement request 5) would be placed there, and so would the
supplement time that 2.1 adds to the due date: a margin covered an ended dossier but not one
judged open at the read, so such plans draw neither (`draw_plan`'s `dated_only`). The margin
stays as a guard on the dates cut to the second; a late plan stays late whatever the delay."""


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


def second(value: datetime) -> datetime:
    """Dates in dossiers are whole seconds."""
    return value.replace(microsecond=0)


def _millisecond(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Request:
    """What the applicant asks for and how: drawn first, before the source's dialect."""

    channel: int
    procedure: Procedure
    paid_online: int
    """0, or how the fee was paid online: 1 the national portal, 2 a local payment gateway."""


@dataclass(frozen=True, slots=True)
class Step:
    """One status change: its status, when it happens (to the millisecond), and the wait before."""

    status: int
    at: datetime
    wait: float
    """Seconds since the previous step (the first step's is drawn but never waited)."""


class Pattern(StrEnum):
    """How the dossier's source sends its life (the shares are `TrafficOptions`')."""

    PLAIN = "plain"
    """A header at every change, often followed by a step."""
    BARE_LIFE = "bare_life"
    """Every change a bare DongBoHoSoMC item (no envelope, no time, no step)."""
    SPARSE_HEADERS = "sparse_headers"
    """Headers at the first change, at reception and at some later ones; steps otherwise."""
    LATE_FACTS = "late_facts"
    """The first change a step only; the next header without the facts; then full headers."""
    BACKFILL = "backfill"
    """The whole life dated `backfill_days` ago."""
    REEXPORT = "reexport"
    """The final header exported again after the dossier ended."""
    RECODE = "recode"
    """The agency's code changes mid-life."""


# A change sent only as a step carries its date to the second: changes at least this far apart
# keep their order however the dates are cut.
STEP_ONLY_MIN_WAIT = 1.2


def recoded(agency: str) -> str:
    """The code an agency gets when it is merged and re-coded: the same form, another unit."""
    groups = agency.split(".")
    groups[2] = f"{(int(groups[2]) + 50) % 100:02d}"
    return ".".join(groups)


@dataclass(frozen=True, slots=True)
class DossierPlan:
    """Everything one dossier will do, decided when it is submitted."""

    code: str
    agency: str
    request: Request
    digitised: bool
    applicant: str
    phone: str
    steps: tuple[Step, ...]
    supplement_rounds: int
    finishes_before_due: bool
    """Whether the end, less the supplement time, falls before the due date (as drawn)."""
    due_at: datetime | None
    """Whole seconds; None for a dossier never received."""
    national: bool = False
    """A submitted file was taken from the national repository (DuocLayTuKhoDMQG)."""
    vneid: bool = False
    """The applicant's account is verified with VNeID."""
    pattern: Pattern = Pattern.PLAIN
    headers: frozenset[int] | None = None
    """Indices of the changes sent with a DongBoHoSoMC header; None: all of them."""
    facts_from: int = 0
    """Headers of earlier changes leave out the facts (channel, fees, payment, flags, files)."""
    recode_from: int | None = None
    """From this change on, the headers name the agency by its new code (`recoded`)."""

    def has_header(self, index: int) -> bool:
        return self.headers is None or index in self.headers

    def agency_at(self, index: int) -> str:
        """The agency code the change's items carry."""
        if self.recode_from is not None and index >= self.recode_from:
            return recoded(self.agency)
        return self.agency

    def first_received(self) -> int | None:
        return next((i for i, s in enumerate(self.steps) if s.status in RECEIVED_STATUSES), None)

    @property
    def channel(self) -> int:
        return self.request.channel

    @property
    def procedure(self) -> Procedure:
        return self.request.procedure

    @property
    def paid_online(self) -> int:
        return self.request.paid_online

    @property
    def on_time(self) -> bool:
        """The plan's intent for indicator 2.1: two supplement rounds are late whatever the date."""
        return self.finishes_before_due and self.supplement_rounds < 2

    @property
    def statuses(self) -> tuple[int, ...]:
        return tuple(s.status for s in self.steps)

    def first(self, status: int) -> Step | None:
        return next((s for s in self.steps if s.status == status), None)

    def date_of(self, status: int) -> datetime | None:
        """When the dossier first reached `status`, in whole seconds (its date fields)."""
        step = self.first(status)
        return None if step is None else second(step.at)

    @property
    def submitted_at(self) -> datetime:
        return second(self.steps[0].at)

    @property
    def received_at(self) -> datetime | None:
        return self.date_of(ACCEPTED)


def draw_request(rng: random.Random, options: TrafficOptions) -> Request:
    roll = rng.random()
    channel = (
        ONLINE
        if roll < options.online_share
        else POSTAL
        if roll < options.online_share + options.postal_share
        else IN_PERSON
    )
    procedure = rng.choice(PROCEDURES)
    paid = rng.choice((1, 2)) if procedure.fee and rng.random() < options.paid_online_share else 0
    return Request(channel, procedure, paid)


def draw_plan(
    rng: random.Random,
    options: TrafficOptions,
    request: Request,
    *,
    code: str,
    start: datetime,
    min_wait: float = 0.3,
    on_time_margin: timedelta = ON_TIME_MARGIN,
    dated_only: bool = False,
) -> DossierPlan:
    """The dossier's life from `start` (its first status change) on; `dated_only`: only
    statuses a DongBoHoSoMC item dates itself (no withdrawal, no supplement round)."""
    statuses, rounds = _lifecycle(rng, options, request.channel, dated_only=dated_only)
    waits = [max(min_wait, rng.expovariate(1 / options.step_seconds)) for _ in statuses]
    finishes_before_due = rng.random() >= options.late_share
    at, steps = start, []
    for i, (status, wait) in enumerate(zip(statuses, waits, strict=True)):
        if i:
            at += timedelta(seconds=wait)
        steps.append(Step(status, _millisecond(at), wait))
    return DossierPlan(
        code=code,
        agency=rng.choice(options.agencies),
        request=request,
        digitised=rng.random() < options.digitised_share,
        applicant=rng.choice(NAMES),
        phone=f"09{rng.randrange(10**8):08d}",
        steps=tuple(steps),
        supplement_rounds=rounds,
        finishes_before_due=finishes_before_due,
        due_at=_due(steps, finishes_before_due, on_time_margin=on_time_margin),
    )


def draw_pattern(rng: random.Random, options: TrafficOptions) -> Pattern:
    roll = rng.random()
    for pattern, share in (
        (Pattern.BARE_LIFE, options.bare_life_share),
        (Pattern.SPARSE_HEADERS, options.sparse_header_share),
        (Pattern.LATE_FACTS, options.late_facts_share),
        (Pattern.BACKFILL, options.backfill_share),
        (Pattern.REEXPORT, options.reexport_share),
        (Pattern.RECODE, options.recode_share),
    ):
        if roll < share:
            return pattern
        roll -= share
    return Pattern.PLAIN


def draw_patterned_plan(
    rng: random.Random,
    options: TrafficOptions,
    request: Request,
    pattern: Pattern,
    *,
    code: str,
    start: datetime,
    spaced: bool = False,
) -> DossierPlan:
    """`draw_plan` for a dossier its source sends by `pattern`, and that pattern's choices;
    `spaced`: its changes at least `STEP_ONLY_MIN_WAIT` apart, as a step-only change's."""
    step_only = spaced or pattern in (Pattern.SPARSE_HEADERS, Pattern.LATE_FACTS)
    if pattern is Pattern.BACKFILL:
        start -= timedelta(days=options.backfill_days)
    plan = draw_plan(
        rng,
        options,
        request,
        code=code,
        start=start,
        min_wait=STEP_ONLY_MIN_WAIT if step_only else 0.3,
        on_time_margin=ADAPTER_ON_TIME_MARGIN if spaced else ON_TIME_MARGIN,
        dated_only=spaced,
    )
    plan = replace(
        plan,
        national=rng.random() < options.national_repository_share,
        vneid=rng.random() < options.vneid_share,
        pattern=pattern,
    )
    received = plan.first_received()
    if pattern is Pattern.SPARSE_HEADERS:
        chosen = {i for i in range(1, len(plan.steps)) if rng.random() < 0.3}
        plan = replace(plan, headers=frozenset({0, *chosen, *([received] if received else [])}))
    elif pattern is Pattern.LATE_FACTS:
        plan = replace(plan, headers=frozenset(range(1, len(plan.steps))), facts_from=2)
    elif pattern is Pattern.RECODE and len(plan.steps) > 1:
        at = received if options.recode_at_reception else None
        plan = replace(plan, recode_from=rng.randrange(1, len(plan.steps)) if at is None else at)
    return plan


def _lifecycle(
    rng: random.Random, options: TrafficOptions, channel: int, *, dated_only: bool = False
) -> tuple[list[int], int]:
    """The statuses a dossier passes through, and its supplement rounds."""
    start = [ACCEPTED] if channel == IN_PERSON and rng.random() < 0.5 else [SUBMITTED, ACCEPTED]
    roll = rng.random()
    if start[0] == SUBMITTED and roll < options.reject_share:
        return [SUBMITTED, REJECTED], 0
    if not dated_only and roll < options.reject_share + options.withdraw_share:
        return [*start, *([IN_PROCESS] if rng.random() < 0.5 else []), WITHDRAWN], 0
    rounds = 0
    if rng.random() < options.supplement_share and not dated_only:
        rounds = 2 if rng.random() < 0.2 else 1
    return [*start, IN_PROCESS, *([SUPPLEMENT, IN_PROCESS] * rounds), FINISHED, RETURNED], rounds


def _due(
    steps: list[Step], finishes_before_due: bool, *, on_time_margin: timedelta = ON_TIME_MARGIN
) -> datetime | None:
    """A due date on the intended side of the end (less supplement time), by whole seconds.

    The end is the first step that ends the handling after reception. With one supplement
    round, an on-time plan whose request waited longer than the margin is on time only because
    that wait does not count: the rule is exercised, not just the dates. A late plan that ends
    within seconds of its reception gets a due date before the reception: these dossiers live
    seconds, not days.
    """
    received = next((i for i, s in enumerate(steps) if s.status == ACCEPTED), None)
    if received is None:
        return None
    supplement = timedelta()
    for previous, step in zip(steps[received:], steps[received + 1 :], strict=False):
        if previous.status == SUPPLEMENT:
            supplement += step.at - previous.at
        if step.status in HANDLING_ENDS:
            handled = second(step.at - supplement)
            if finishes_before_due:
                return handled + on_time_margin
            return handled - LATE_MARGIN
    return None  # never ends: no plan does that today


# --- e-documents ------------------------------------------------------------------------------


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


def draw_document(
    rng: random.Random, options: TrafficOptions, *, number: str, notation: str, at: datetime
) -> DocumentSpec:
    """Who sends a document to whom, how it is signed, and whether it is sent twice."""
    own = rng.choice(options.agencies)
    if rng.random() < options.edocument_incoming_share:
        direction, issuer, recipient = Direction.INCOMING, rng.choice(OTHER_AGENCIES), own
    else:
        others = [a for a in options.agencies if a != own] or list(OTHER_AGENCIES)
        direction, issuer, recipient = Direction.OUTGOING, own, rng.choice(others)
    roll = rng.random()
    verified = options.edocument_verified_share
    untrusted = verified + options.edocument_untrusted_share
    verdict = (
        SignatureVerdict.VERIFIED
        if roll < verified
        else SignatureVerdict.UNTRUSTED
        if roll < untrusted
        else SignatureVerdict.INVALID
        if roll < untrusted + options.edocument_invalid_share
        else SignatureVerdict.UNSIGNED
    )
    copies = 2 if rng.random() < options.edocument_duplicate_rate else 1
    return DocumentSpec(
        issuer=issuer,
        recipient=recipient,
        number=number,
        notation=notation,
        date=second(at),
        verdict=verdict,
        direction=direction,
        copies=copies,
    )
