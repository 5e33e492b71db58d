"""The reconciliation's Prometheus metrics, from the sweeps stored in the scores database (so a
sweep run by `govsync reconcile` shows as well as a scheduled one); agencies labelled by their
code only when configured (`GOVSYNC_SCORES_AGENCIES`, `GOVSYNC_RECONCILE_AGENCIES`).

Per agency, the counts add up the latest finished sweep of the current month and of the month
before (the periods the schedule sweeps); the time and duration are of the latest of them."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge

from services.common.labels import AgencyLabels
from services.reconcile.store import Sweep

STATES = ("missing", "different", "unknown", "matched")


class ReconcileMetrics:
    def __init__(self, registry: CollectorRegistry, *, agencies: Iterable[str] = ()) -> None:
        """`agencies`: those labelled by their code (configuration); any other is `other`."""
        agencies = sorted(set(agencies))
        self._agency = AgencyLabels(agencies, missing="other")
        self.dossiers = Gauge(
            "govsync_reconcile_dossiers",
            "What the latest finished sweep of the agency found on the portal, before it re-sent "
            "anything: matched, missing, different (status or key dates), unknown (received "
            "dossiers the portal counts that govsync did not find on it; 0 when not asked).",
            ["agency", "state"],
            registry=registry,
        )
        self.resent = Gauge(
            "govsync_reconcile_resent_dossiers",
            "Dossiers the latest sweep re-sent to the portal through the sync.",
            ["agency"],
            registry=registry,
        )
        self.remaining = Gauge(
            "govsync_reconcile_remaining_dossiers",
            "Dossiers still not as govsync knows them after the latest sweep's re-send and "
            "re-checks (GovsyncReconcileDifferencesPersist).",
            ["agency"],
            registry=registry,
        )
        self.last_sweep = Gauge(
            "govsync_reconcile_last_sweep_timestamp_seconds",
            "When the agency's latest sweep finished.",
            ["agency"],
            registry=registry,
        )
        self.duration = Gauge(
            "govsync_reconcile_last_sweep_duration_seconds",
            "How long the agency's latest finished sweep took, from start to finish.",
            ["agency"],
            registry=registry,
        )
        for agency in agencies:
            self._zero(self._agency(agency))

    def _zero(self, agency: str) -> None:
        for state in STATES:
            self.dossiers.labels(agency, state)
        for gauge in (self.resent, self.remaining):
            gauge.labels(agency)

    def publish(self, sweeps: Iterable[Sweep]) -> None:
        """Set the gauges from the sweeps (one per agency and period)."""
        totals: dict[str, dict[str, float]] = {}
        latest: dict[str, Sweep] = {}
        for sweep in sweeps:
            agency = self._agency(sweep.agency)
            total = totals.setdefault(agency, dict.fromkeys((*STATES, "resent", "remaining"), 0))
            total["missing"] += sweep.missing
            total["different"] += sweep.different
            total["unknown"] += sweep.unknown or 0
            total["matched"] += sweep.matched
            total["resent"] += sweep.resent
            total["remaining"] += sweep.remaining or 0
            if agency not in latest or (sweep.finished_ms or 0) > (latest[agency].finished_ms or 0):
                latest[agency] = sweep
        for agency, total in totals.items():
            for state in STATES:
                self.dossiers.labels(agency, state).set(total[state])
            self.resent.labels(agency).set(total["resent"])
            self.remaining.labels(agency).set(total["remaining"])
            last = latest[agency]
            if last.finished_ms is not None:
                self.last_sweep.labels(agency).set(last.finished_ms / 1000)
            if last.duration_seconds is not None:
                self.duration.labels(agency).set(last.duration_seconds)
