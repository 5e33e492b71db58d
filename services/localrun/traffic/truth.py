"""The ground truth of the local run: what ingest must count, from the plans' intended facts.

Counted here, by this module's own reading of DOMAIN.md §2 and of the README's rules (event
time, facts, timeliness), from what each plan says the dossier did and how its source sent it,
never from the events' bytes and never with the services' counting rules (nothing here imports
ingest, sync or their indicators module). So when the metrics and this truth agree, the
services' rules have reproduced the plans, not merely agreed with a copy of themselves.

The figures are those of the dossiers as they stand once the run has drained, as ingest's
gauges (`govsync_dossiers_counted`) give them, per agency: the agency the dossier's latest
header named (a re-coded dossier counts under its new code only), and for each dossier that
reached a received status (2, 4 … 10):
- received, online (`KenhThucHien` 2), fee-bearing and paid online, with a file attached,
  digitised, from the national repository, VNeID-verified: once a header carrying the facts was
  sent (a dossier whose facts arrive late counts for none of them before);
- synced: the portal holds every received dossier its source sent a header of, once the run
  has drained (1.4's numerator; steps alone create nothing there);
- finished: in status 7, 9 or 10, on time as its plan intends; a dossier whose changes came as
  bare items only has no time for its supplement request, so its end is judged against its due
  date by the dates its items carry (`bare_times`);
- e-documents: each package once, by its issuer, direction and planned signature verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from schemas.edocument import Direction, SignatureVerdict
from services.localrun.traffic.malformations import Malformation
from services.localrun.traffic.plans import (
    ACCEPTED,
    FINISHED,
    ONLINE,
    REJECTED,
    RETURNED,
    SUBMITTED,
    SUPPLEMENT,
    DocumentSpec,
    DossierPlan,
    Pattern,
)

# Where an event enters govsync: the dossier topic, ingest's HTTP intake, its portal-compatible
# intake (the label values of `govsync_entry_events`).
ENTRY_KAFKA, ENTRY_HTTP, ENTRY_DVCQG = "kafka", "http", "dvcqg"
ENTRIES = (ENTRY_KAFKA, ENTRY_HTTP, ENTRY_DVCQG)

# DOMAIN.md §2: received = 2, 4, 5, 6, 7, 8, 9, 10; finished = withdrawn, finished or returned.
RECEIVED = frozenset({2, 4, 5, 6, 7, 8, 9, 10})
FINISHED_STATUSES = frozenset({7, 9, 10})


class Outcome(StrEnum):
    """How ingest must end each event (the same four outcomes it counts)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"


class Sent(Protocol):
    """What the truth reads of one event sent (`generator.SourceEvent`)."""

    @property
    def expected(self) -> Outcome: ...
    @property
    def entry(self) -> str: ...
    @property
    def refused(self) -> bool: ...


@dataclass(slots=True)
class AgencyTally:
    """Counts behind the scored rates of one agency, from metrics or from the ground truth."""

    received: int = 0
    received_online: int = 0
    finished: int = 0
    """Finished (7, 9, 10) and judged for 2.1 (its denominator)."""
    finished_on_time: int = 0
    fee_bearing: int = 0
    paid_online: int = 0
    attached: int = 0
    digitised: int = 0
    national: int = 0
    vneid: int = 0
    synced: int = 0
    """Dossiers the portal holds (from sync) or that should reach it (ground truth)."""
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
    def finished_late(self) -> int:
        return self.finished - self.finished_on_time

    @property
    def edocuments_outgoing(self) -> int:
        return (
            self.edoc_outgoing_verified
            + self.edoc_outgoing_untrusted
            + self.edoc_outgoing_invalid
            + self.edoc_outgoing_unsigned
        )

    def add(self, other: AgencyTally) -> None:
        for f in fields(AgencyTally):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def add_edocument(self, direction: Direction, verdict: SignatureVerdict, n: int = 1) -> None:
        name = f"edoc_{direction.value}_{verdict.value}"
        setattr(self, name, getattr(self, name) + n)


# --- what ingest can know of a dossier from what was sent -----------------------------------


def _dates_of(plan: DossierPlan, index: int) -> list[datetime]:
    """The dates the header of change `index` carries (as the generator writes them), but
    NgayHenTra: NgayNopHoSo; NgayTiepNhan once past submission; NgayKetThucXuLy, NgayTra,
    NgayTuChoi at the statuses that have them."""
    status = plan.steps[index].status
    dates = [plan.submitted_at]
    if status != SUBMITTED and plan.received_at is not None:
        dates.append(plan.received_at)
    finished, returned = plan.date_of(FINISHED), plan.date_of(RETURNED)
    if status in (FINISHED, RETURNED) and finished is not None:
        dates.append(finished)
    if status == RETURNED and returned is not None:
        dates.append(returned)
    if status == REJECTED and (refused := plan.date_of(REJECTED)) is not None:
        dates.append(refused)
    return dates


def bare_times(plan: DossierPlan) -> list[datetime]:
    """When ingest places each change of a dossier sent only as bare items (README, "Event
    time"): the date of the status where it has one (1 NgayNopHoSo, 2 NgayTiepNhan,
    3 NgayTuChoi, 9 NgayKetThucXuLy, 10 NgayTra), else the latest date the item carries; an
    item with no date of its own comes after everything before it."""
    own = {
        SUBMITTED: plan.submitted_at,
        ACCEPTED: plan.received_at,
        REJECTED: plan.date_of(REJECTED),
        FINISHED: plan.date_of(FINISHED),
        RETURNED: plan.date_of(RETURNED),
    }
    times: list[datetime] = []
    for index, step in enumerate(plan.steps):
        dated = own.get(step.status)
        if dated is None:
            dated = max(_dates_of(plan, index))
            if times:
                dated = max(dated, times[-1])
        times.append(dated)
    return times


def _bare_on_time(plan: DossierPlan) -> bool:
    """2.1 for a dossier sent as bare items: its end by its dates, the supplement time the
    dates show (none, for a request between two undated statuses)."""
    times = bare_times(plan)
    end = next(i for i, s in enumerate(plan.steps) if s.status in FINISHED_STATUSES)
    supplement = timedelta()
    for i in range(end):
        if plan.steps[i].status == SUPPLEMENT:
            supplement += times[i + 1] - times[i]
    assert plan.due_at is not None  # noqa: S101 - a finished plan was received
    allowance = timedelta(seconds=int(supplement.total_seconds()))
    return plan.supplement_rounds < 2 and times[end] <= plan.due_at + allowance


def tally_of(plan: DossierPlan, sent: int) -> tuple[str, AgencyTally]:
    """Where the dossier counts and what it counts in, once its first `sent` changes were sent."""
    headers = [i for i in range(sent) if plan.has_header(i)]
    agency = plan.agency_at(headers[-1]) if headers else plan.agency
    tally = AgencyTally()
    statuses = [s.status for s in plan.steps[:sent]]
    if not any(s in RECEIVED for s in statuses):
        return agency, tally
    tally.received = 1
    # The portal holds a dossier once it has a header of it (steps alone create nothing).
    tally.synced = bool(headers)
    if any(i >= plan.facts_from for i in headers):
        tally.received_online = plan.channel == ONLINE
        fee_bearing = plan.procedure.fee > 0
        tally.fee_bearing = fee_bearing
        tally.paid_online = fee_bearing and plan.paid_online in (1, 2)
        tally.attached = 1
        tally.digitised = plan.digitised
        tally.national = plan.national
        tally.vneid = plan.vneid
    if statuses[-1] in FINISHED_STATUSES:
        tally.finished = 1
        received = plan.first_received()
        due_known = any(received is not None and i >= received for i in headers)
        on_time = _bare_on_time(plan) if plan.pattern is Pattern.BARE_LIFE else plan.on_time
        tally.finished_on_time = due_known and on_time
    return agency, tally


@dataclass(slots=True)
class GroundTruth:
    """What the generator sent: event outcomes and, per agency, what ingest must count."""

    sent: int = 0
    """Events that reach the dossier topic (whatever their entry point)."""
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    entry_outcomes: dict[str, dict[Outcome, int]] = field(
        default_factory=lambda: {e: dict.fromkeys(Outcome, 0) for e in ENTRIES}
    )
    """The outcomes of dossier and e-document events by the entry point they were sent
    through."""
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTRIES, 0))
    """Events an intake must refuse (an `error_code` or a 4xx): they never reach the topic."""
    malformed: dict[Malformation, int] = field(
        default_factory=lambda: dict.fromkeys(Malformation, 0)
    )
    dossiers: int = 0
    """Dossiers planned."""
    progress: dict[str, tuple[DossierPlan, int]] = field(default_factory=dict)
    """Each dossier's plan and how many of its changes were sent."""
    reexports: dict[bool, int] = field(default_factory=lambda: {False: 0, True: 0})
    """Final headers exported again: as they were (False) or with a correction (True)."""
    edocument_sent: int = 0
    """Records sent to the e-document topic (each package, and each copy of it)."""
    edocument_outcomes: dict[Outcome, int] = field(
        default_factory=lambda: dict.fromkeys(Outcome, 0)
    )
    documents: dict[str, AgencyTally] = field(default_factory=dict)
    """E-documents per issuing agency."""
    sent_documents: list[DocumentSpec] = field(default_factory=list)
    """Each package once (the official signature share counts them by their date)."""
    preset: tuple[str, ...] = ()
    """Agencies shown even before they count anything."""

    @property
    def agencies(self) -> dict[str, AgencyTally]:
        """Per agency, what ingest must count of every dossier and document sent so far."""
        found = {agency: AgencyTally() for agency in self.preset}
        for plan, sent in self.progress.values():
            agency, tally = tally_of(plan, sent)
            found.setdefault(agency, AgencyTally()).add(tally)
        for agency, documents in self.documents.items():
            found.setdefault(agency, AgencyTally()).add(documents)
        return found

    def agency(self, code: str) -> AgencyTally:
        """What ingest must count for one agency (a copy: change `documents_of` instead)."""
        return self.agencies.get(code, AgencyTally())

    def documents_of(self, code: str) -> AgencyTally:
        """The e-document counts of one agency, to add to."""
        return self.documents.setdefault(code, AgencyTally())

    @property
    def statuses(self) -> dict[str, int]:
        """Each valid dossier's latest status: what ingest and NDXP must hold once drained."""
        return {code: plan.steps[sent - 1].status for code, (plan, sent) in self.progress.items()}

    @property
    def final_status(self) -> dict[str, int]:
        """The latest status of each dossier whose source sent a header: what the portal must
        hold once drained (it holds no dossier it never had a DongBoHoSoMC item for)."""
        return {
            code: plan.steps[sent - 1].status
            for code, (plan, sent) in self.progress.items()
            if any(plan.has_header(i) for i in range(sent))
        }

    @property
    def steps_awaiting_header(self) -> int:
        """Steps of the dossiers whose source has sent no header yet (each such change is told
        by one step): the portal parks them, finishing them only when their wait runs out
        (`GOVSYNC_DELIVERY_STEP_WAIT_SECONDS`), while NDXP takes them at once."""
        return sum(
            sent
            for plan, sent in self.progress.values()
            if not any(plan.has_header(i) for i in range(sent))
        )

    def reached(self, plan: DossierPlan, index: int) -> None:
        """The generator sent the dossier's status change `plan.steps[index]`."""
        self.progress[plan.code] = (plan, index + 1)

    def reexported(self, plan: DossierPlan, *, corrected: bool) -> None:
        self.reexports[corrected] += 1

    def events(self, sent: Iterable[Sent]) -> None:
        """Events sent, each with the outcome ingest must give it (or the intake's refusal)."""
        for event in sent:
            if event.refused:
                self.refused[event.entry] += 1
                continue
            self.sent += 1
            self.outcomes[event.expected] += 1
            self.entry_outcomes[event.entry][event.expected] += 1

    def entry_sent(self, entry: str) -> int:
        """Events sent through `entry`, refused ones included."""
        return sum(self.entry_outcomes[entry].values()) + self.refused[entry]

    def broken(self, kind: Malformation) -> None:
        self.malformed[kind] += 1

    def document(self, spec: DocumentSpec) -> None:
        """One package sent `spec.copies` times: counted once, the copies are duplicates."""
        self.documents_of(spec.issuer).add_edocument(spec.direction, spec.verdict)
        self.sent_documents.append(spec)
        self.edocument_sent += spec.copies
        self.edocument_outcomes[Outcome.ACCEPTED] += 1
        self.edocument_outcomes[Outcome.DUPLICATE] += spec.copies - 1
        # E-documents are sent to their topic: the Kafka entry point's events too.
        self.entry_outcomes[ENTRY_KAFKA][Outcome.ACCEPTED] += 1
        self.entry_outcomes[ENTRY_KAFKA][Outcome.DUPLICATE] += spec.copies - 1
