"""The ground truth of the local run: what ingest must count, from the plans' intended facts.

Counted here, by this module's own reading of DOMAIN.md §2, from what each plan says the dossier
did, never from the events' bytes and never with the services' counting rules (nothing here
imports ingest, sync or their indicators module). So when the metrics and this truth agree,
the services' rules have reproduced the plans, not merely agreed with a copy of themselves.

Per agency, for each dossier as the generator sends its status changes:
- received: once, when it first reaches a received status (2, 4 … 10), under its planned channel;
  the same dossier is then digitised, fee-bearing, paid online (as planned) and synced (the
  portal holds every received dossier once the run has drained: indicator 1.4's numerator);
- finished: once, when it first reaches 7, 9 or 10, on time or late as its plan intends;
- e-documents: each package once, by its issuer, direction and planned signature verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from schemas.edocument import Direction, SignatureVerdict
from services.localrun.traffic.malformations import Malformation
from services.localrun.traffic.plans import DocumentSpec, DossierPlan

# DOMAIN.md §2: received = 2, 4, 5, 6, 7, 8, 9, 10; finished = withdrawn, finished or returned.
RECEIVED = frozenset({2, 4, 5, 6, 7, 8, 9, 10})
FINISHED = frozenset({7, 9, 10})
CHANNEL_FIELDS = {1: "received_in_person", 2: "received_online", 3: "received_postal"}


class Outcome(StrEnum):
    """How ingest must end each event (the same four outcomes it counts)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"


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


def _first(plan: DossierPlan, statuses: frozenset[int]) -> int | None:
    return next((i for i, step in enumerate(plan.steps) if step.status in statuses), None)


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
    """Dossiers planned."""
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

    def reached(self, plan: DossierPlan, index: int) -> None:
        """The generator sent the dossier's status change `plan.steps[index]`."""
        self.final_status[plan.code] = plan.steps[index].status
        tally = self.agency(plan.agency)
        if index == _first(plan, RECEIVED):
            name = CHANNEL_FIELDS[plan.channel]
            setattr(tally, name, getattr(tally, name) + 1)
            tally.synced += 1
            tally.digitised += plan.digitised
            fee_bearing = plan.procedure.fee > 0
            tally.fee_bearing += fee_bearing
            tally.paid_online += fee_bearing and plan.paid_online in (1, 2)
        if index == _first(plan, FINISHED):
            if plan.on_time:
                tally.finished_on_time += 1
            else:
                tally.finished_late += 1

    def events(self, expected: list[Outcome]) -> None:
        """Records sent to the dossier topic, each with the outcome ingest must give it."""
        self.sent += len(expected)
        for outcome in expected:
            self.outcomes[outcome] += 1

    def broken(self, kind: Malformation) -> None:
        self.malformed[kind] += 1

    def document(self, spec: DocumentSpec) -> None:
        """One package sent `spec.copies` times: counted once, the copies are duplicates."""
        self.agency(spec.issuer).add_edocument(spec.direction, spec.verdict)
        self.edocument_sent += spec.copies
        self.edocument_outcomes[Outcome.ACCEPTED] += 1
        self.edocument_outcomes[Outcome.DUPLICATE] += spec.copies - 1
