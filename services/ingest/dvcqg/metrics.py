"""Metrics of the portal-compatible intake, on the ingest service's injected registry."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

from services.ingest.dvcqg.protocol import SERVICE_DOSSIER, SERVICE_LOOKUP, SERVICE_PROGRESS

LOGIN = "login"
OTHER = "other"
SERVICES = (LOGIN, SERVICE_DOSSIER, SERVICE_PROGRESS, SERVICE_LOOKUP, OTHER)


class CallOutcome(StrEnum):
    OK = "ok"
    LOGIN_FAILED = "login_failed"
    RATE_LIMITED = "rate_limited"
    SESSION = "session"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"


class DvcqgMetrics:
    """Calls by service and outcome, and the items written, for dashboards and the local run."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "govsync_dvcqg_calls",
            "Calls of the portal-compatible intake by service and outcome.",
            ["service", "outcome"],
            registry=registry,
        )
        self.items = Counter(
            "govsync_dvcqg_items",
            "Items the portal-compatible intake wrote to the dossier topic (broker-acknowledged).",
            ["service"],
            registry=registry,
        )
        for service in SERVICES:
            for outcome in CallOutcome:
                self.calls.labels(service, outcome.value)
        for service in (SERVICE_DOSSIER, SERVICE_PROGRESS):
            self.items.labels(service)

    def call(self, service: str, outcome: CallOutcome) -> None:
        self.calls.labels(service if service in SERVICES else OTHER, outcome.value).inc()
