"""The sync service's Prometheus metrics, on an injected registry, with known label sets at zero."""

from __future__ import annotations

import collections
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.labels import OTHER, AgencyLabels
from services.sync.acked import AckState

RECORD_OUTCOMES = ("acknowledged", "dead_lettered", "skipped_stale")
REQUEST_OUTCOMES = ("ok", "rejected", "unavailable", "rate_limited", "auth_failed", "protocol")
SERVICES = {
    "portal": ("login", "DongBoHoSoMC", "CapNhatTienDoHoSoMC", "TraCuuHoSo"),
    "ndxp": ("token", "status"),
}


class SyncMetrics:
    """Every metric of one sync process; label values come from closed sets or a bounded one."""

    def __init__(
        self, registry: CollectorRegistry, target: str, *, agencies: Iterable[str] = ()
    ) -> None:
        """`agencies` are the only agency label values besides `other`."""
        self.target = target
        self._agency = AgencyLabels(agencies, missing=OTHER)
        self.records = Counter(
            "govsync_sync_records",
            "Records finished, by outcome.",
            ["target", "outcome"],
            registry=registry,
        )
        self.requests = Counter(
            "govsync_sync_requests",
            "Requests sent to a destination, by service and outcome.",
            ["target", "service", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "govsync_sync_request_seconds",
            "Duration of requests to a destination.",
            ["target", "service"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.latency = Histogram(
            "govsync_sync_latency_seconds",
            "From the source event (event_time) to the destination's acknowledgement.",
            ["target"],
            registry=registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
        )
        self.portal_synced = Gauge(
            "govsync_portal_synced_dossiers",
            "Dossiers of this worker's partitions that the portal holds in a received status, "
            "a header of theirs accepted (indicator 1.4's numerator); derived from the acked "
            "topic, so exact across restarts: sum over the portal workers.",
            ["agency"],
            registry=registry,
        )
        self.portal_new_syncs = Counter(
            "govsync_portal_new_syncs",
            "Dossiers that became synced in this process (operational: how fast they arrive).",
            ["agency"],
            registry=registry,
        )
        self.parked = Gauge(
            "govsync_sync_parked_steps",
            "Progress steps waiting for their dossier's header to be accepted.",
            ["target"],
            registry=registry,
        )
        self.backlog = Gauge(
            "govsync_sync_backlog",
            "Records fetched and not yet finished.",
            ["target"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "govsync_sync_consumer_lag",
            "Records in a partition after the consumer's position.",
            ["target", "partition"],
            registry=registry,
        )
        self.circuit_state = Gauge(
            "govsync_sync_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["target"],
            registry=registry,
        )
        self.paused = Gauge(
            "govsync_sync_paused",
            "1 while fetching is paused for back-pressure.",
            ["target"],
            registry=registry,
        )
        self.retries = Counter(
            "govsync_sync_retries",
            "Transient failures that were retried.",
            ["target"],
            registry=registry,
        )
        for outcome in RECORD_OUTCOMES:
            self.records.labels(target, outcome)
        for service in SERVICES.get(target, ()):
            self.request_seconds.labels(target, service)
            for outcome in REQUEST_OUTCOMES:
                self.requests.labels(target, service, outcome)
        self.latency.labels(target)
        self.backlog.labels(target).set(0)
        self.circuit_state.labels(target).set(0)
        self.paused.labels(target).set(0)
        self.parked.labels(target).set(0)
        self.retries.labels(target)
        for agency in sorted(self._agency.agencies):
            self.portal_synced.labels(agency)

    def record(self, outcome: str) -> None:
        self.records.labels(self.target, outcome).inc()

    def request(self, service: str, outcome: str, seconds: float) -> None:
        self.requests.labels(self.target, service, outcome).inc()
        self.request_seconds.labels(self.target, service).observe(seconds)

    def agency_label(self, agency: str | None) -> str:
        """The agency itself when configured, else `other` (missing too)."""
        return self._agency(agency)

    def synced_moved(self, before: AckState | None, after: AckState) -> None:
        """One dossier's acknowledged state changed: move it between agencies, in or out."""
        was = before is not None and before.synced
        if before is not None and before.synced:
            self.portal_synced.labels(self.agency_label(before.agency)).dec()
        if after.synced:
            self.portal_synced.labels(self.agency_label(after.agency)).inc()
            if not was:
                self.portal_new_syncs.labels(self.agency_label(after.agency)).inc()

    def synced_restored(self, states: Iterable[AckState]) -> None:
        """A partition's state was read back: count what it holds as synced."""
        for label, count in collections.Counter(
            self.agency_label(s.agency) for s in states if s.synced
        ).items():
            self.portal_synced.labels(label).inc(count)

    def synced_dropped(self, states: Iterable[AckState]) -> None:
        """A partition went to another worker: it counts them from now on."""
        for label, count in collections.Counter(
            self.agency_label(s.agency) for s in states if s.synced
        ).items():
            self.portal_synced.labels(label).dec(count)
