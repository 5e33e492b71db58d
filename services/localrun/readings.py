"""Pure reading of the services' metric samples: flow counts, per-agency tallies, scored rates.

The tallies come from the exact gauges (`govsync_dossiers_counted`, `govsync_edocuments_counted`:
the dossiers and documents as they stand), not from the operational counters, which count
first occurrences as they are decided.

Samples come in already parsed (`Sample`), so this module imports no HTTP or Prometheus library;
`services.localrun.scrape` fetches and parses `/metrics`. The same `AgencyTally`
(`services.localrun.traffic.truth`) holds what the metrics say and what the plans meant, so the
two are compared field by field. `rates` turns either side's counts into the scored rates: the
formulas are shared by both sides of the comparison, the counts are not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from services.localrun.traffic.truth import AgencyTally, GroundTruth, Outcome

TARGETS = ("portal", "ndxp")
SYNC_OUTCOMES = ("acknowledged", "dead_lettered", "skipped_stale")
UNKNOWN_AGENCY = "unknown"


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Rate:
    """A scored rate: numerator over denominator; `value` is None while the denominator is 0."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    name: str


INDICATORS = (
    Indicator("3.3", "online"),
    Indicator("2.1", "on time"),
    Indicator("4.2", "files attached"),
    Indicator("4.3", "digitised"),
    Indicator("4.4", "national repository"),
    Indicator("4.5b", "VNeID"),
    Indicator("3.6", "paid online"),
    Indicator("1.4", "synced"),
    # The PAR INDEX's digital-signature share (DOMAIN.md §2): of the documents an agency sent
    # (outgoing), those whose signature ingest verified against the trust bundle.
    Indicator("sig", "signed e-docs"),
)


def rates(tally: AgencyTally) -> dict[str, Rate]:
    """Every indicator of one agency, by the formulas of DOMAIN.md §2."""
    return {
        "3.3": Rate(tally.received_online, tally.received),
        "2.1": Rate(tally.finished_on_time, tally.finished),
        "4.2": Rate(tally.attached, tally.received),
        "4.3": Rate(tally.digitised, tally.received),
        "4.4": Rate(tally.national, tally.received),
        "4.5b": Rate(tally.vneid, tally.received),
        "3.6": Rate(tally.paid_online, tally.fee_bearing),
        # The sync gauge counts the dossiers the portal holds (a header accepted) in a received
        # status, whenever they were received: within one run it cannot pass 100 %.
        "1.4": Rate(tally.synced, tally.received),
        "sig": Rate(tally.edoc_outgoing_verified, tally.edocuments_outgoing),
    }


def total(tallies: Iterable[AgencyTally]) -> AgencyTally:
    result = AgencyTally()
    for tally in tallies:
        for f in fields(AgencyTally):
            setattr(result, f.name, getattr(result, f.name) + getattr(tally, f.name))
    return result


@dataclass(slots=True)
class Snapshot:
    """What the three services' metrics say at one moment."""

    outcomes: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in Outcome})
    """Events of the dossier topic (every type but the e-document ones)."""
    edocument_outcomes: dict[str, int] = field(
        default_factory=lambda: {o.value: 0 for o in Outcome}
    )
    """Events of the e-document types (edXML packages and status packages)."""
    agencies: dict[str, AgencyTally] = field(default_factory=dict)
    sync: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(SYNC_OUTCOMES, 0) for t in TARGETS}
    )
    backlog: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))
    parked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))
    """Per target, the steps waiting for their dossier's header (the portal's step gate)."""
    ingest_lag: int = 0
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Per target, the cumulative latency histogram: (upper bound, count) pairs."""

    @property
    def consumed(self) -> int:
        return sum(self.outcomes.values())

    @property
    def edocuments_consumed(self) -> int:
        return sum(self.edocument_outcomes.values())

    @property
    def accepted(self) -> int:
        return self.outcomes[Outcome.ACCEPTED.value]

    def finished(self, target: str) -> int:
        """Records the target is done with, whatever the outcome."""
        return sum(self.sync[target].values())

    def acknowledged(self, target: str) -> int:
        return self.sync[target]["acknowledged"]

    def quantile(self, target: str, q: float) -> float | None:
        return histogram_quantile(q, self.latency.get(target, []))

    def agency(self, code: str) -> AgencyTally:
        found = self.agencies.get(code)
        if found is None:
            found = self.agencies[code] = AgencyTally()
        return found


def _int(value: float) -> int:
    return round(value)


EDOCUMENT_TYPES = frozenset({"vn.gov.edoc.edxml.v1", "vn.gov.edoc.status.v1"})
_EDOC_FIELDS = {
    f"edoc_{d}_{v}"
    for d in ("outgoing", "incoming")
    for v in ("verified", "untrusted", "invalid", "unsigned")
}
COUNTED_FIELDS = {
    ("3.3", "denominator"): "received",
    ("3.3", "numerator"): "received_online",
    ("2.1", "denominator"): "finished",
    ("2.1", "numerator"): "finished_on_time",
    ("3.6", "denominator"): "fee_bearing",
    ("3.6", "numerator"): "paid_online",
    ("4.2", "numerator"): "attached",
    ("4.3", "numerator"): "digitised",
    ("4.4", "numerator"): "national",
    ("4.5b", "numerator"): "vneid",
}
"""`govsync_dossiers_counted{indicator, part}` to the tally's field (the 4.x denominators are
the received dossiers again)."""


def read_ingest(snapshot: Snapshot, samples: Iterable[Sample]) -> None:
    """Fold the ingest service's samples into `snapshot`."""
    for s in samples:
        agency = s.labels.get("agency")
        if s.name == "govsync_events_total":
            outcome = s.labels.get("outcome", "")
            counts = (
                snapshot.edocument_outcomes
                if s.labels.get("type") in EDOCUMENT_TYPES
                else snapshot.outcomes
            )
            if outcome in counts:
                counts[outcome] += _int(s.value)
        elif s.name == "govsync_dossiers_counted" and agency is not None:
            name = COUNTED_FIELDS.get((s.labels.get("indicator", ""), s.labels.get("part", "")))
            if name is not None:
                tally = snapshot.agency(agency)
                setattr(tally, name, getattr(tally, name) + _int(s.value))
        elif s.name == "govsync_edocuments_counted" and agency is not None:
            name = f"edoc_{s.labels.get('direction')}_{s.labels.get('signature')}"
            if name in _EDOC_FIELDS:
                tally = snapshot.agency(agency)
                setattr(tally, name, getattr(tally, name) + _int(s.value))
        elif s.name == "govsync_ingest_consumer_lag":
            snapshot.ingest_lag += _int(s.value)


def read_sync(snapshot: Snapshot, target: str, samples: Iterable[Sample]) -> None:
    """Fold one sync worker's samples into `snapshot`."""
    buckets: list[tuple[float, float]] = []
    for s in samples:
        if s.name == "govsync_sync_records_total":
            outcome = s.labels.get("outcome", "")
            if outcome in snapshot.sync[target]:
                snapshot.sync[target][outcome] = _int(s.value)
        elif s.name == "govsync_sync_backlog":
            snapshot.backlog[target] = _int(s.value)
        elif s.name == "govsync_sync_parked_steps":
            snapshot.parked[target] = _int(s.value)
        elif s.name == "govsync_sync_latency_seconds_bucket":
            buckets.append((float(s.labels.get("le", "+Inf")), s.value))
        elif s.name == "govsync_portal_synced_dossiers" and target == "portal":
            agency = s.labels.get("agency") or UNKNOWN_AGENCY
            snapshot.agency(agency).synced += _int(s.value)
    snapshot.latency[target] = sorted(buckets)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' `histogram_quantile` on cumulative (upper bound, count) buckets.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket starts at 0;
    a rank in the +Inf bucket answers the highest finite bound. None without observations.
    """
    if not buckets or not 0 <= q <= 1:
        return None
    ordered = sorted(buckets)
    count = ordered[-1][1]
    if count <= 0:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower_bound
            if cumulative == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                cumulative - lower_count
            )
        lower_bound, lower_count = bound, cumulative
    return lower_bound


@dataclass(frozen=True, slots=True)
class Difference:
    where: str
    metrics: int
    truth: int


def differences(snapshot: Snapshot, truth: GroundTruth) -> list[Difference]:
    """Every count where the metrics and the generator's tally disagree (empty: they agree)."""
    found: list[Difference] = []
    for outcome in Outcome:
        measured = snapshot.outcomes.get(outcome.value, 0)
        if measured != truth.outcomes[outcome]:
            found.append(Difference(f"events {outcome.value}", measured, truth.outcomes[outcome]))
        measured = snapshot.edocument_outcomes.get(outcome.value, 0)
        if measured != truth.edocument_outcomes[outcome]:
            found.append(
                Difference(
                    f"e-document events {outcome.value}",
                    measured,
                    truth.edocument_outcomes[outcome],
                )
            )
    for agency in sorted(set(snapshot.agencies) | set(truth.agencies)):
        measured_tally = snapshot.agencies.get(agency, AgencyTally())
        true_tally = truth.agencies.get(agency, AgencyTally())
        for f in fields(AgencyTally):
            a, b = getattr(measured_tally, f.name), getattr(true_tally, f.name)
            if a != b:
                found.append(Difference(f"{agency} {f.name}", a, b))
    return found


def drained(snapshot: Snapshot, truth: GroundTruth) -> bool:
    """Ingest has decided every event sent and each sync worker finished every record, but the
    portal's parked steps of dossiers whose source sent no header yet.

    Those steps wait for a header that is not coming (`GOVSYNC_DELIVERY_STEP_WAIT_SECONDS`, 300 s
    by default, then the dead letters): at most that many may be parked and unfinished, every
    other record must be finished (a step parked for a header that was sent is not drained).
    """
    if snapshot.consumed < truth.sent or snapshot.edocuments_consumed < truth.edocument_sent:
        return False
    if snapshot.finished("ndxp") < snapshot.accepted:
        return False
    parked = snapshot.parked["portal"]
    return (
        parked <= truth.steps_awaiting_header
        and snapshot.finished("portal") + parked >= snapshot.accepted
    )
