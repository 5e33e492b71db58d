"""Shared by the reliability tests: `figures` (numbers printed in the session summary) and
`build_intake` (the ingest HTTP app with a recording sink, for tests that need no broker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.api import Outgoing
from services.ingest.errors import BrokerUnavailableError
from services.ingest.main import build_documents, build_handler, build_pipeline, intake_app
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings

_FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line (inputs tried, timings) for the summary section `reliability figures`."""

    def note(text: str) -> None:
        _FIGURES.append(f"{request.node.name}: {text}")

    return note


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


class RecordingSink:
    """Our `EventSink` protocol, keeping what it was given; `fail` makes it a broker outage."""

    def __init__(self) -> None:
        self.published: list[Outgoing] = []
        self.fail = False

    async def publish(self, items: Sequence[Outgoing]) -> None:
        if self.fail:
            raise BrokerUnavailableError("the broker did not acknowledge the events")
        self.published.extend(items)


@dataclass
class Intake:
    """The ingest HTTP app with its real pipelines, keys and limiter, and a recording sink."""

    app: FastAPI
    sink: RecordingSink
    registry: CollectorRegistry
    settings: IngestSettings

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def build_intake(settings: IngestSettings) -> Intake:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, agencies=settings.label_agencies | settings.own_agencies)

    async def ready() -> dict[str, bool]:
        return {"broker": True}

    sink = RecordingSink()
    app = intake_app(
        settings,
        registry=registry,
        readiness=ready,
        sink=sink,
        handler=build_handler(settings, build_pipeline(settings), build_documents(settings)),
        metrics=metrics,
    )
    return Intake(app, sink, registry, settings)
