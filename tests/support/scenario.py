"""One fault scenario: its topics, the simulator, the service processes, the stream, the drain.

Every fault test in `tests/reliability/test_faults_*.py` is the same frame around a different
fault: unique topics, the in-process simulator, `govsync ingest` and `govsync sync` processes,
a steady stream, then (once the stream stopped) what ingest published, checked, the
destinations drained, and the figures. `fault_scenario` builds the frame; the test does the
fault and states its own assertions.

    async with fault_scenario("crash", kafka_settings, unique, tmp_path, Simulator(seed=1)) as s:
        ingest, portal = s.ingest(), s.sync("portal")
        stream = s.stream(f"C{unique}")
        await s.start(ingest, portal)
        async with stream:
            ...  # the fault
        delivery = await s.drain(stream, [PORTAL], [ingest, portal], what="the portal up to date")
        counted, expected = await s.indicator_figures(delivery, ingest)
    result = s.report(delivery, figures)

With `source=True` (the default) the stream is source events on the dossier topic, through
ingest, and `drain` first checks what ingest published (`Delivery.ingest`); with `source=False`
it is normalised records straight to the normalised topic, for sync alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.settings import KafkaSettings
from services.simulator.server import RunningSimulator, running_simulator
from services.simulator.simulator import PORTAL, Simulator
from tests.support.faults import (
    Drain,
    Figures,
    IngestCheck,
    SentEvent,
    ServiceProcess,
    SteadyProducer,
    check_ingest,
    collect,
    counted_figures,
    destination_revisions,
    drain,
    expected_figures,
    ingest_env,
    normalized_record,
    regressions,
    repeated_deliveries,
    sampling_rss,
    source_event,
    sync_env,
    wait_for,
)
from tests.support.kafka import Topics, create_topics

RATE = 40.0
"""Events per second of the steady stream."""
DOSSIERS = 150
"""Dossiers the stream's changes are spread over."""
STEP = 80
"""Events sent, and portal revisions acknowledged, that count as the stream moving on."""
READY_WITHIN = 90.0
DRAIN_WITHIN = 90.0


@dataclass(slots=True)
class Delivery:
    """What came of the stream once it stopped: what was sent, checked, and delivered."""

    sent: list[SentEvent]
    settled: Drain
    destinations: tuple[str, ...]
    check: IngestCheck | None = None

    @property
    def ingest(self) -> IngestCheck:
        """What ingest published for the stream (a scenario with `source=True` only)."""
        if self.check is None:
            raise TypeError("this scenario's stream did not go through ingest")
        return self.check


@dataclass(slots=True)
class Scenario:
    """The world of one fault test; made by `fault_scenario`, which also cleans it up."""

    name: str
    """The test's name in its figures, and the prefix of its topics."""
    kafka: KafkaSettings
    """The broker as the test's own clients (the stream, the readers) reach it."""
    bootstrap: str
    """The broker as the services reach it (a `KafkaProxy`'s address where there is one)."""
    topics: Topics
    sim: Simulator
    running: RunningSimulator
    log_dir: Path
    source: bool
    services: list[ServiceProcess] = field(default_factory=list)

    def ingest(self, name: str = "ingest", **extra: str) -> ServiceProcess:
        """A `govsync ingest` process on the scenario's topics (not started)."""
        env = ingest_env(self.bootstrap, self.topics, **extra)
        return self._add(ServiceProcess.ingest(env, self.log_dir, name=name))

    def sync(self, target: str, name: str | None = None, **extra: str) -> ServiceProcess:
        """A `govsync sync --target <target>` process against the simulator (not started)."""
        env = sync_env(self.bootstrap, self.topics, self.running, **extra)
        return self._add(ServiceProcess.sync(target, env, self.log_dir, name=name))

    def _add(self, service: ServiceProcess) -> ServiceProcess:
        self.services.append(service)
        return service

    def stream(
        self, prefix: str, *, dossiers: int = DOSSIERS, rate: float = RATE
    ) -> SteadyProducer:
        """The steady stream (not started): source events, or normalised records without ingest."""
        if self.source:
            topic, encode = self.topics.dossier, source_event
        else:
            topic, encode = self.topics.normalized, normalized_record
        return SteadyProducer(
            self.kafka, topic, prefix=prefix, dossiers=dossiers, rate=rate, encode=encode
        )

    async def start(self, *services: ServiceProcess, within: float = READY_WITHIN) -> None:
        """Start `services` and wait until every one of them is ready."""
        await asyncio.gather(*(s.start() for s in services))
        await self.ready(*services, within=within)

    async def ready(self, *services: ServiceProcess, within: float = READY_WITHIN) -> None:
        await asyncio.gather(*(s.wait_ready(within) for s in services))

    def acknowledged(self, destination: str = PORTAL) -> int:
        """Revisions the destination holds in total: grows with every delivery it accepts."""
        held = destination_revisions(self.sim, destination)
        return sum(revision for revision, _ in held.values())

    async def moving_on(
        self, stream: SteadyProducer, *running: ServiceProcess, step: int = STEP
    ) -> None:
        """Both the stream and the portal move on by `step` while `running` keep running."""
        sent, acked = stream.count + step, self.acknowledged(PORTAL) + step

        def moved() -> bool:
            for service in running:
                service.assert_running()
            return stream.count >= sent and self.acknowledged(PORTAL) >= acked

        await wait_for(moved, within=90, what="the stream moving on")

    async def drain(
        self,
        stream: SteadyProducer,
        destinations: Sequence[str],
        running: Iterable[ServiceProcess],
        *,
        what: str,
        within: float = DRAIN_WITHIN,
    ) -> Delivery:
        """Call once the stream has stopped: check what ingest published (with `source`), then
        wait until `destinations` hold every dossier's final state, while `running` keep running."""
        stopped = time.monotonic()
        sent = stream.sent
        assert stream.failed == 0, "the broker refused some of the stream"
        check: IngestCheck | None = None
        if self.source:
            records = await collect(
                self.kafka, self.topics.normalized, {e.event_id for e in sent}, within=90
            )
            check = check_ingest(sent, records)
            finals = check.finals
        else:
            finals = {e.dossier: (e.change, e.status) for e in stream.finals().values()}
        settled = await drain(
            self.sim, finals, destinations, running, since=stopped, within=within, what=what
        )
        return Delivery(sent, settled, tuple(destinations), check)

    async def indicator_figures(
        self, delivery: Delivery, *ingests: ServiceProcess
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """(what the `ingests`' exact gauges say, what the stream makes them): call after the
        drain, with every ingest process still running."""
        return await counted_figures(*ingests), expected_figures(delivery.sent)

    def report(
        self, delivery: Delivery, note: Callable[[str], None], *, extra: dict[str, Any]
    ) -> Figures:
        """The test's figures (printed, noted for the session summary, and returned)."""
        check = delivery.check
        repeated = {"ingest records": check.repeats} if check is not None else {}
        repeated |= {d: repeated_deliveries(self.sim, d) for d in delivery.destinations}
        result = Figures(
            self.name,
            events=len(delivery.sent),
            crashes=sum(s.kills for s in self.services),
            lost=(len(check.lost) if check is not None else 0) + delivery.settled.lost(),
            regressions=regressions(self.sim),
            repeated=repeated,
            max_rss_mb={s.name: s.max_rss_kb / 1024 for s in self.services},
            drain_seconds=delivery.settled.seconds,
            extra=extra,
        )
        result.report(note)
        return result


@contextlib.asynccontextmanager
async def fault_scenario(
    name: str,
    kafka: KafkaSettings,
    unique: str,
    log_dir: Path,
    sim: Simulator,
    *,
    bootstrap: str | None = None,
    source: bool = True,
    sample_rss: bool = True,
) -> AsyncIterator[Scenario]:
    """Create the topics, serve `sim`, and yield the scenario; on the way out no process the
    scenario made outlives it. `sample_rss` samples every process's VmRSS twice a second."""
    topics = Topics.unique(name, unique)
    sources = (topics.dossier, topics.state) if source else ()
    await create_topics(kafka, *sources, topics.normalized, topics.dlq, partitions=3)
    async with running_simulator(sim) as running:
        scenario = Scenario(
            name=name,
            kafka=kafka,
            bootstrap=bootstrap or kafka.bootstrap_servers,
            topics=topics,
            sim=sim,
            running=running,
            log_dir=log_dir,
            source=source,
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                if sample_rss:
                    await stack.enter_async_context(sampling_rss(scenario.services))
                yield scenario
        finally:
            for service in scenario.services:
                await service.aclose()
