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
from datetime import datetime

from services.localrun.traffic import official
from services.localrun.traffic.truth import ENTRIES, AgencyTally, GroundTruth, Outcome

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


@dataclass(frozen=True, slots=True)
class Scorecard:
    """One agency and period from the scores API: each indicator's (numerator, denominator)
    and the points."""

    counts: Mapping[str, tuple[int, int]]
    points: float


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
    entries: dict[str, dict[str, int]] = field(
        default_factory=lambda: {e: {o.value: 0 for o in Outcome} for e in ENTRIES}
    )
    """Events consumed by ingest per entry point and outcome (`govsync_entry_events`)."""
    intake_refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTRIES, 0))
    """Calls an intake refused for their data (`govsync_dvcqg_calls`: invalid, forbidden)."""
    scores_records: dict[str, int] = field(default_factory=dict)
    """Records the scores service consumed, by kind (dossier, ack, edocument)."""
    scores_lag: int | None = None
    """The scores consumer's lag; None: not read."""
    scorecards: dict[str, dict[str, Scorecard]] = field(default_factory=dict)
    """Per period and agency, the scores service's answer."""
    scores_read: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """Per period, when its request was sent and answered: the truth judges the dossiers
    still open (2.1) at either moment."""

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
        elif s.name == "govsync_entry_events_total":
            entry, outcome = s.labels.get("entry", ""), s.labels.get("outcome", "")
            if entry in snapshot.entries and outcome in snapshot.entries[entry]:
                snapshot.entries[entry][outcome] += _int(s.value)
        elif (
            s.name == "govsync_intake_requests_total"
            and s.labels.get("outcome") in REFUSED_REQUESTS
        ):
            snapshot.intake_refused["http"] += _int(s.value)
        elif (
            s.name == "govsync_dvcqg_calls_total"
            and s.labels.get("outcome") in REFUSED_CALLS
            and s.labels.get("service") != "login"
        ):
            snapshot.intake_refused["dvcqg"] += _int(s.value)


REFUSED_CALLS = frozenset({"invalid", "forbidden", "too_large"})
REFUSED_REQUESTS = frozenset({"bad_request", "invalid", "forbidden", "too_large"})
"""What the intakes refused for what was sent (not for credentials, nor a busy broker)."""


def read_scores(snapshot: Snapshot, samples: Iterable[Sample]) -> None:
    """Fold the scores service's samples into `snapshot`: records consumed and its lag."""
    for s in samples:
        if s.name == "govsync_scores_records_total":
            kind = s.labels.get("kind", "")
            snapshot.scores_records[kind] = snapshot.scores_records.get(kind, 0) + _int(s.value)
        elif s.name == "govsync_scores_consumer_lag":
            snapshot.scores_lag = _int(s.value)


def read_scorecards(
    snapshot: Snapshot, period: str, answer: object, asked: tuple[datetime, datetime]
) -> None:
    """The `GET /v1/scores?period=P` answer (a list of scorecards) into `snapshot`."""
    cards: dict[str, Scorecard] = {}
    for card in answer if isinstance(answer, list) else []:
        counts = {
            str(i["id"]): (int(i["numerator"]), int(i["denominator"]))
            for i in card.get("indicators", [])
        }
        cards[str(card["agency"])] = Scorecard(counts, float(card.get("points") or 0.0))
    snapshot.scorecards[period] = cards
    snapshot.scores_read[period] = asked


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


def _scores_caught_up(snapshot: Snapshot) -> bool:
    """The scores service applied every normalised record ingest wrote and has no lag left on
    its topics (the portal's acknowledgements among them)."""
    records = snapshot.scores_records
    return (
        snapshot.scores_lag == 0
        and records.get("dossier", 0) >= snapshot.accepted
        and records.get("edocument", 0) >= snapshot.edocument_outcomes[Outcome.ACCEPTED.value]
    )


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


def differences(
    snapshot: Snapshot, truth: GroundTruth, periods: Iterable[str] = ()
) -> list[Difference]:
    """Every count where the metrics (and the scores service) and the generator's tally
    disagree (empty: they agree); `periods` must have been read from the scores service."""
    found = entry_differences(snapshot, truth) + score_differences(snapshot, truth, periods)
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


def entry_differences(snapshot: Snapshot, truth: GroundTruth) -> list[Difference]:
    """Per entry point, events consumed by outcome and calls refused, against what was sent."""
    found = []
    for entry in ENTRIES:
        for outcome in Outcome:
            a = snapshot.entries[entry][outcome.value]
            b = truth.entry_outcomes[entry][outcome]
            if a != b:
                found.append(Difference(f"{entry} events {outcome.value}", a, b))
        if snapshot.intake_refused[entry] != truth.refused[entry]:
            found.append(
                Difference(f"{entry} refused", snapshot.intake_refused[entry], truth.refused[entry])
            )
    return found


def score_differences(
    snapshot: Snapshot, truth: GroundTruth, periods: Iterable[str] = ()
) -> list[Difference]:
    """Per period read (and each of `periods`, which must have been read), agency and
    indicator: the scores service's numerator and denominator against the truth's own
    reckoning (`official`), and the points to 1e-6. 2.1 judges open dossiers at the time of
    the read: the truth at the request's start or at its answer must match."""
    found = [
        Difference(f"scores {period} not read", 0, 1)
        for period in periods
        if period not in snapshot.scorecards
    ]
    for period, cards in snapshot.scorecards.items():
        span = official.span(period)
        asked, answered = snapshot.scores_read[period]
        before = official.scorecards(truth, span, asked)
        after = official.scorecards(truth, span, answered)
        for agency in sorted(set(cards) | set(before)):
            card = cards.get(agency)
            truths = [t for t in (before.get(agency), after.get(agency)) if t is not None]
            if not truths:
                truths = [official.Card()]
            for indicator in official.SCORED:
                measured = card.counts.get(indicator, (0, 0)) if card else (0, 0)
                options = [
                    (t.counts[indicator].numerator, t.counts[indicator].denominator) for t in truths
                ]
                if measured not in options:
                    where = f"scores {period} {agency} {indicator}"
                    found.append(Difference(f"{where} numerator", measured[0], options[0][0]))
                    found.append(Difference(f"{where} denominator", measured[1], options[0][1]))
            points = card.points if card else 0.0
            if not any(abs(points - t.total) < 1e-6 for t in truths):
                found.append(
                    Difference(
                        f"scores {period} {agency} points x1000",
                        round(points * 1000),
                        round(truths[0].total * 1000),
                    )
                )
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
    if snapshot.scores_lag is not None and not _scores_caught_up(snapshot):
        return False
    parked = snapshot.parked["portal"]
    return (
        parked <= truth.steps_awaiting_header
        and snapshot.finished("portal") + parked >= snapshot.accepted
    )
