"""The scores service's Prometheus metrics, on an injected registry, with known label sets at
zero: the official figures as gauges (for Grafana without window arithmetic) and the
consumer's own operational counters."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.scores.periods import PeriodKind
from services.scores.scoreboard import Scorecard

KINDS = ("dossier", "ack", "edocument")
OUTCOMES = ("applied", "stale", "skipped", "dead_lettered")


class ScoresMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rate = Gauge(
            "govsync_score_rate",
            "The portal's rate of an indicator (a fraction; 2.2: mean days) for the current "
            "month, quarter or year, as the scores service computes it.",
            ["agency", "indicator", "period"],
            registry=registry,
        )
        self.points = Gauge(
            "govsync_score_points",
            "The points of an indicator for the current month, quarter or year.",
            ["agency", "indicator", "period"],
            registry=registry,
        )
        self.records = Counter(
            "govsync_scores_records",
            "Records consumed, by kind and outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "govsync_scores_batch_seconds",
            "Time to apply one batch in one database transaction.",
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.lag = Gauge(
            "govsync_scores_consumer_lag",
            "Records on the consumed topics not yet applied and committed (exact while idle;"
            " 1 per partition not fetched yet).",
            registry=registry,
        )
        self.lag.set(1)  # nothing measured yet: not caught up
        self.refreshed = Gauge(
            "govsync_scores_gauges_refreshed_timestamp_seconds",
            "When the score gauges were last recomputed.",
            registry=registry,
        )
        for kind in KINDS:
            for outcome in OUTCOMES:
                self.records.labels(kind, outcome)
        self._labels: dict[Gauge, set[tuple[str, str, str]]] = {}

    def record(self, kind: str, outcome: str, count: int = 1) -> None:
        if count:
            self.records.labels(kind, outcome).inc(count)

    def publish(self, cards: Iterable[tuple[PeriodKind, Scorecard]], *, at: float) -> None:
        """Replace every score gauge with these scorecards' figures; a figure that is null
        (empty denominator, no points scale) has no series. The cards' agencies are the
        configured label agencies and `other` (`Scoreboard.scorecards(labelled=...)`)."""
        fresh: dict[Gauge, set[tuple[str, str, str]]] = {self.rate: set(), self.points: set()}
        for kind, card in cards:
            for indicator in card.indicators:
                labels = (card.agency, indicator.id, kind.value)
                for gauge, value in ((self.rate, indicator.rate), (self.points, indicator.points)):
                    if value is not None:
                        gauge.labels(*labels).set(value)
                        fresh[gauge].add(labels)
        for gauge, kept in fresh.items():
            for stale in self._labels.get(gauge, set()) - kept:
                gauge.remove(*stale)
        self._labels = fresh
        self.refreshed.set(at)
