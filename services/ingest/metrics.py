"""The ingest service's Prometheus metrics: the scored indicators and the pipeline's health."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from schemas.cloudevents import EventType
from schemas.dossier import Channel, Timeliness
from schemas.edocument import Direction, EDocumentState, SignatureVerdict
from services.common.indicators import INDICATOR_PARTS, Counted, Indicators
from services.common.labels import UNKNOWN, AgencyLabels
from services.ingest.outcome import Outcome

CHANNEL_LABELS = {
    Channel.IN_PERSON: "in_person",
    Channel.ONLINE: "online",
    Channel.POSTAL: "postal",
}

# Where an event entered govsync: the dossier topic itself, or one of the ingest service's
# intakes, which name themselves in a record header. Any other header value counts as Kafka:
# a closed set, so the label's cardinality stays three.
ENTRY_HEADER = "govsync-entry"
ENTRY_KAFKA, ENTRY_HTTP, ENTRY_DVCQG = "kafka", "http", "dvcqg"
ENTRIES = (ENTRY_KAFKA, ENTRY_HTTP, ENTRY_DVCQG)


M = TypeVar("M", bound=MetricWrapperBase)
_MAX_CACHED = 10_000
"""Series children kept at hand: the labels are closed sets (configured agencies, `other`,
`unknown`, the codes), so a few hundred in practice; the bound is a guard."""


def entry_of(headers: Iterable[tuple[str, bytes]]) -> str:
    """The entry point a record's headers name (`ENTRY_HEADER`), Kafka when none or unknown."""
    for name, value in headers:
        if name == ENTRY_HEADER:
            text = value.decode("ascii", "replace") if value else ""
            return text if text in ENTRIES else ENTRY_KAFKA
    return ENTRY_KAFKA


class IngestMetrics:
    """Built on an injected registry so tests and the local run keep theirs apart."""

    def __init__(self, registry: CollectorRegistry, *, agencies: Iterable[str] = ()) -> None:
        """`agencies` are the only agency label values besides `other` and `unknown`."""
        self.agency = AgencyLabels(agencies, missing=UNKNOWN)
        self.received = Counter(
            "govsync_dossiers_received",
            "Dossiers counted once when they first reach a received status (indicator 3.3).",
            ["agency", "channel"],
            registry=registry,
        )
        self.finished = Counter(
            "govsync_dossiers_finished",
            "Dossiers counted once when they first finish, by timeliness (indicator 2.1).",
            ["agency", "timeliness"],
            registry=registry,
        )
        self.digitised = Counter(
            "govsync_dossiers_digitised",
            "Received dossiers with digitised components (indicator 4.3).",
            ["agency"],
            registry=registry,
        )
        self.fee_bearing = Counter(
            "govsync_dossiers_fee_bearing",
            "Received dossiers with a non-zero fee (indicator 3.6's denominator).",
            ["agency"],
            registry=registry,
        )
        self.paid_online = Counter(
            "govsync_dossiers_paid_online",
            "Fee-bearing dossiers paid online (indicator 3.6).",
            ["agency"],
            registry=registry,
        )
        self.counted = Gauge(
            "govsync_dossiers_counted",
            "Dossiers whose state this replica holds (open, and evicted into the archive) that "
            "count in each scored indicator's numerator and denominator, by their current "
            "facts; exact across restarts, replays and rebalances (sum over replicas).",
            ["agency", "indicator", "part"],
            registry=registry,
        )
        self.edocuments_counted = Gauge(
            "govsync_edocuments_counted",
            "E-documents this replica's ledger holds, each once (a revoked one no longer, a "
            "replaced one by its replacement), by direction and signature verdict; exact.",
            ["agency", "direction", "signature"],
            registry=registry,
        )
        self.edocuments = Counter(
            "govsync_edocuments",
            "Electronic documents, each counted once, by direction and signature verdict.",
            ["agency", "direction", "signature"],
            registry=registry,
        )
        self.edocument_status = Counter(
            "govsync_edocument_status",
            "Status packages applied, by the state they report.",
            ["agency", "status"],
            registry=registry,
        )
        self.events = Counter(
            "govsync_events",
            "Events by type and outcome; every event ends in exactly one outcome.",
            ["type", "outcome"],
            registry=registry,
        )
        self.entry_events = Counter(
            "govsync_entry_events",
            "Events consumed from the dossier and e-document topics by the entry point they came"
            " through (kafka, http, dvcqg) and outcome.",
            ["entry", "outcome"],
            registry=registry,
        )
        self.processing = Histogram(
            "govsync_event_processing_seconds",
            "Time to decode, validate, normalise and decide one event.",
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "govsync_ingest_batch_seconds",
            "Time from fetching a batch to committing its offsets.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.ready = Gauge(
            "govsync_ingest_ready", "1 when the worker is ready to consume.", registry=registry
        )
        self.lag = Gauge(
            "govsync_ingest_consumer_lag",
            "Records not yet consumed, per input partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.dossiers_in_memory = Gauge(
            "govsync_ingest_dossiers_tracked",
            "Dossiers whose state this replica holds.",
            registry=registry,
        )
        self.dossiers_archived = Gauge(
            "govsync_ingest_dossiers_archived",
            "Evicted dossiers whose archive entry this replica holds (a few hundred bytes each).",
            registry=registry,
        )
        self.evicted = Counter(
            "govsync_ingest_dossiers_evicted",
            "Finished dossiers moved from memory to the archive after the retention period.",
            registry=registry,
        )
        self.archive_expired = Counter(
            "govsync_ingest_archive_expired",
            "Archive entries forgotten after the archive retention period.",
            registry=registry,
        )
        self.intake = Counter(
            "govsync_intake_requests",
            "HTTP intake requests by result.",
            ["outcome"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "govsync_intake_auth_failures",
            "Refused HTTP intake credentials, by reason.",
            ["reason"],
            registry=registry,
        )
        self._event_children: dict[tuple[str, Outcome, str], tuple[Counter, Counter]] = {}
        self._series: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        # Zeros up front: a rate over a series that does not exist yet is no rate at all.
        for event_type in EventType:
            for outcome in Outcome:
                self.events.labels(event_type.value, outcome.value)
        for entry in ENTRIES:
            for outcome in Outcome:
                self.entry_events.labels(entry, outcome.value)
        for result in (
            "accepted",
            "bad_request",
            "unauthorized",
            "forbidden",
            "too_large",
            "invalid",
            "unavailable",
        ):
            self.intake.labels(result)
        for reason in (
            "missing",
            "unknown",
            "source_not_allowed",
            "agency_not_allowed",
            "rate_limited",
        ):
            self.auth_failures.labels(reason)
        for agency in sorted(self.agency.agencies):
            self._zero_agency(agency)

    def _zero_agency(self, agency: str) -> None:
        for direction in Direction:
            for verdict in SignatureVerdict:
                self.edocuments.labels(agency, direction.value, verdict.value)
        for channel in CHANNEL_LABELS.values():
            self.received.labels(agency, channel)
        for label in (Timeliness.ON_TIME, Timeliness.LATE, Timeliness.NO_DUE_DATE):
            self.finished.labels(agency, label.value)
        for indicator, part in INDICATOR_PARTS:
            self.counted.labels(agency, indicator, part)
        for direction in Direction:
            for verdict in SignatureVerdict:
                self.edocuments_counted.labels(agency, direction.value, verdict.value)
        self.digitised.labels(agency)
        self.fee_bearing.labels(agency)
        self.paid_online.labels(agency)

    def series(self, metric: M, *labels: str) -> M:
        """`metric.labels(*labels)`, looked up once: prometheus-client takes a lock and checks
        the labels on every call, a few microseconds per counter on every event's path."""
        key = (id(metric), labels)  # the metrics live as long as this object
        child = self._series.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._series) < _MAX_CACHED:
                self._series[key] = child
        return child  # type: ignore[return-value]  # the child of `metric` is its own type

    def count_event(self, event_type: str, outcome: Outcome, entry: str, seconds: float) -> None:
        """One event's outcome and processing time; the labelled series are looked up once."""
        children = self._event_children.get((event_type, outcome, entry))
        if children is None:
            children = (
                self.events.labels(event_type, outcome.value),
                self.entry_events.labels(entry, outcome.value),
            )
            if len(self._event_children) < 1_000:  # types, outcomes and entries are closed sets
                self._event_children[(event_type, outcome, entry)] = children
        self.processing.observe(seconds)
        children[0].inc()
        children[1].inc()

    def count_document(self, counted: Counted) -> None:
        self.series(
            self.edocuments,
            self.agency(counted.agency),
            counted.direction.value,
            counted.signature.value,
        ).inc()

    def count_document_status(self, agency: str | None, state: EDocumentState) -> None:
        self.series(self.edocument_status, self.agency(agency), state.value).inc()

    def count(self, indicators: Indicators) -> None:
        agency = self.agency(indicators.agency)
        if indicators.received:
            channel = (
                CHANNEL_LABELS[indicators.received_channel]
                if indicators.received_channel is not None
                else UNKNOWN
            )
            self.series(self.received, agency, channel).inc()
        if indicators.finished is not None:
            self.series(self.finished, agency, indicators.finished.value).inc()
        if indicators.digitised:
            self.series(self.digitised, agency).inc()
        if indicators.fee_bearing:
            self.series(self.fee_bearing, agency).inc()
        if indicators.paid_online:
            self.series(self.paid_online, agency).inc()
