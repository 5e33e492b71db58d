"""The whole pipeline in one process: broker, simulator, ingest, both sync workers, traffic, view.

One `asyncio.TaskGroup`; `stop` ends the run at once. At the end of `duration`, or when `finish`
is set (the first Ctrl-C in `services.localrun.command`), the traffic stops first, the pipeline
drains (every event decided, every record finished by both sync workers), the final numbers are
read, and then the services stop.
A service that crashes stops everything and its error leaves the TaskGroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.common import topics
from services.common.auth import hash_key
from services.common.kafka import ensure_topics, make_producer
from services.common.logging import get_logger
from services.common.settings import KafkaSettings
from services.ingest.dvcqg.accounts import hash_password
from services.ingest.main import run as run_ingest
from services.ingest.main import topics as ingest_topics
from services.ingest.settings import DvcqgAccount, IngestSettings, SignerBinding
from services.localrun.adapter import HttpIntake, PortalAdapter
from services.localrun.broker import EmbeddedBroker, free_port
from services.localrun.edocs import Packager, make_pki
from services.localrun.ports import hold_port
from services.localrun.readings import TARGETS, Difference, Snapshot, differences, drained
from services.localrun.scrape import Scraper
from services.localrun.settings import RunSettings
from services.localrun.traffic import official
from services.localrun.traffic.generator import SourceEvent, TrafficGenerator
from services.localrun.traffic.options import OTHER_AGENCIES
from services.localrun.traffic.plans import DocumentSpec, recoded
from services.localrun.traffic.truth import (
    ENTRY_DVCQG,
    ENTRY_HTTP,
    ENTRY_KAFKA,
    GroundTruth,
    Outcome,
)
from services.localrun.view import Endpoints, ViewState
from services.scores.main import run as run_scores
from services.scores.settings import ScoresOptions, ScoresSettings
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator
from services.sync.main import prepare_topics
from services.sync.main import run as run_sync
from services.sync.settings import NdxpSettings, PortalSettings, SyncSettings, Target

log = get_logger(__name__)

SIMULATOR_SECRET = "local-run-secret"  # noqa: S105 - the in-process simulator's own credential
# A vendor's own client tries the run's intakes with these (docs/vendors.md); loopback only.
VENDOR_API_KEY = "local-run-key"
VENDOR_SOURCE = "urn:govsync:local-run:vendor"
VENDOR_USERNAME = "vendor"
VENDOR_PASSWORD = "local-run-secret"  # noqa: S105
READY_TIMEOUT_SECONDS = 90.0
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def scored_periods(truth: GroundTruth, now: datetime) -> list[str]:
    """The period the view shows (the smallest holding all the run's traffic) and each month
    the traffic falls in: the scores service is read and compared for all of them."""
    shown, months = official.run_periods(truth, now)
    return list(dict.fromkeys([shown.name, *(m.name for m in months)]))


@dataclass(slots=True)
class RunReport:
    """How a run ended: the final numbers on both sides and what the simulator holds."""

    truth: GroundTruth
    snapshot: Snapshot
    drained: bool
    differences: list[Difference]
    endpoints: Endpoints
    elapsed: float
    portal_dossiers: int = 0
    ndxp_dossiers: int = 0
    portal_status_mismatches: list[str] = field(default_factory=list)
    regressions: int = 0

    @property
    def agree(self) -> bool:
        return not self.differences


@dataclass(frozen=True, slots=True)
class Services:
    ingest: IngestSettings
    sync: dict[Target, SyncSettings]
    scores: ScoresSettings | None = None


def scores_settings(
    kafka: KafkaSettings,
    settings: RunSettings,
    ingest: IngestSettings,
    sync: SyncSettings,
    suffix: str,
    database: Path,
    labels: frozenset[str],
    port: Callable[[], int] = free_port,
) -> ScoresSettings:
    """The scores service on a SQLite file of the run (migrated at start), consuming the run's
    normalised dossiers, the portal sync's acknowledgements and the e-documents; the
    generator's agencies (and their new codes) are the agencies it serves."""
    return ScoresSettings(
        kafka=kafka,
        topic_dossier_normalized=ingest.topic_dossier_normalized,
        topic_edocument_normalized=ingest.topic_edocument_normalized,
        topic_dlq=ingest.topic_dlq,
        acked_topic_template=sync.acked_topic_template,
        consumer_group=f"{topics.SCORES_GROUP}{suffix}",
        http_host="127.0.0.1",
        http_port=port(),
        log_level=settings.log_level,
        label_agencies=labels,
        scores=ScoresOptions(
            database_url=f"sqlite:///{database}",
            agencies=frozenset((*settings.agencies, *map(recoded, settings.agencies))),
            metrics_refresh_seconds=settings.scores_refresh_seconds,
        ),
    )


def build_services(
    kafka: KafkaSettings,
    settings: RunSettings,
    sim_portal: str,
    sim_ndxp: str,
    suffix: str,
    *,
    trust_bundle: Path | None = None,
    signer_bindings: dict[str, tuple[SignerBinding, ...]] | None = None,
    scores_database: Path | None = None,
    port: Callable[[], int] = free_port,
) -> Services:
    """Settings of the three services for this run: loopback ports, the run's topics; the
    generator's agencies are ingest's own (their documents are outgoing), and they and the
    agencies that send them documents are the metrics' agency labels, with the codes the
    generator re-codes its agencies to (`recoded`): a label outside the preset is `other`."""
    labels = frozenset((*settings.agencies, *map(recoded, settings.agencies), *OTHER_AGENCIES))
    eviction: dict[str, Any] = {}
    if settings.finished_retention_seconds is not None:
        eviction["finished_retention"] = timedelta(seconds=settings.finished_retention_seconds)
    if settings.eviction_interval_seconds is not None:
        eviction["eviction_interval_seconds"] = settings.eviction_interval_seconds
    ingest = IngestSettings(
        **eviction,
        kafka=kafka,
        http_host="127.0.0.1",
        http_port=settings.ingest_port or port(),
        log_level=settings.log_level,
        topic_dossier=f"{topics.DOSSIER}{suffix}",
        topic_dossier_normalized=f"{topics.DOSSIER_NORMALIZED}{suffix}",
        topic_dlq=f"{topics.DLQ}{suffix}",
        topic_state=f"{topics.INGEST_STATE}{suffix}",
        topic_edocument=f"{topics.EDOCUMENT}{suffix}",
        topic_edocument_normalized=f"{topics.EDOCUMENT_NORMALIZED}{suffix}",
        topic_edocument_ledger=f"{topics.EDOCUMENT_LEDGER}{suffix}",
        consumer_group=f"{topics.INGEST_GROUP}{suffix}",
        topic_partitions=settings.partitions,
        trust_bundle=trust_bundle,
        signer_bindings=signer_bindings or {},
        own_agencies=frozenset(settings.agencies),
        label_agencies=labels,
        # The run's own traffic posts to /v1/events under the key too (its generator's source).
        api_keys={hash_key(VENDOR_API_KEY): [VENDOR_SOURCE, settings.traffic().source]},
        dvcqg_accounts={
            VENDOR_USERNAME: DvcqgAccount(
                password_hash=hash_password(VENDOR_PASSWORD), agencies=frozenset(settings.agencies)
            )
        },
    )
    sync: dict[Target, SyncSettings] = {}
    for target in Target:
        sync[target] = SyncSettings(
            kafka=kafka,
            portal=PortalSettings(
                url=sim_portal, password=SecretStr(SIMULATOR_SECRET), dstcode="000.00.00.G22"
            ),
            ndxp=NdxpSettings(url=sim_ndxp, client_secret=SecretStr(SIMULATOR_SECRET)),
            allow_http=True,  # the simulator, on loopback
            topic_dossier_normalized=ingest.topic_dossier_normalized,
            topic_dlq=ingest.topic_dlq,
            acked_topic_template=f"{topics.SYNC_ACKED_TEMPLATE}{suffix}",
            group_prefix=f"{topics.SYNC_GROUP_PREFIX.rstrip('-')}{suffix}-",
            http_host="127.0.0.1",
            http_port=port(),
            log_level=settings.log_level,
            label_agencies=labels,
        )
    scores = None
    if scores_database is not None:
        scores = scores_settings(
            kafka, settings, ingest, sync[Target.PORTAL], suffix, scores_database, labels, port
        )
    return Services(ingest, sync, scores)


@contextlib.asynccontextmanager
async def broker_for(
    kafka: str | None, *, relay: bool = True, port: int | None = None
) -> AsyncIterator[str]:
    """The external broker as given, or an embedded one for the length of the block (behind the
    relay that lets older librdkafka clients such as Debian's kcat produce to it)."""
    if kafka:
        yield kafka
        return
    # Its own process group: a terminal's Ctrl-C reaches only us, and we stop the broker last,
    # after the services have committed.
    broker = EmbeddedBroker(port, own_process_group=True, relay=relay)
    await asyncio.to_thread(broker.start)
    try:
        yield broker.bootstrap
    finally:
        await asyncio.to_thread(broker.stop)


async def wait_ready(client: httpx.AsyncClient, urls: list[str], stop: asyncio.Event) -> bool:
    """Every service answers `/readyz` with 200 (False if `stop` came first)."""
    pending = list(urls)
    async with asyncio.timeout(READY_TIMEOUT_SECONDS):
        while pending and not stop.is_set():
            for url in list(pending):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        pending.remove(url)
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
    return not pending


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    events: list[SourceEvent],
    adapter: PortalAdapter | None = None,
    intake: HttpIntake | None = None,
) -> None:
    """Send a tick's events in order and wait until the broker has them all; those of the
    portal-compatible intake go through `adapter`: one dossier's calls one after another (each
    answered before the next), the dossiers side by side, so the intake's arrival stamps stay
    within a call or two of the plans' times (a withdrawal has no date but its arrival)."""
    kafka = [e for e in events if e.entry == ENTRY_KAFKA]
    calls: dict[tuple[str, bytes | None], list[SourceEvent]] = {}
    for e in events:
        if e.entry != ENTRY_KAFKA:
            calls.setdefault((e.entry, e.key), []).append(e)
    clients = {ENTRY_DVCQG: adapter, ENTRY_HTTP: intake}
    if any(clients.get(entry) is None for entry, _ in calls):
        raise ValueError("events for an intake the run has no client for")
    futures: list[Awaitable[Any]] = [
        await producer.send(topic, value=e.value, key=e.key, headers=list(e.headers)) for e in kafka
    ]

    async def in_order(dossier: list[SourceEvent]) -> None:
        for call in dossier:
            client = clients[call.entry]
            assert client is not None  # noqa: S101 - checked above
            await client.send(call)

    await asyncio.gather(*futures, *(in_order(c) for c in calls.values()))


@dataclass(frozen=True, slots=True)
class DocumentOutput:
    """Where e-documents go and who writes their packages."""

    topic: str
    packager: Packager

    def render(self, specs: list[DocumentSpec]) -> list[SourceEvent]:
        """Each package (signing is CPU work: call it off the loop), repeated `copies` times."""
        events: list[SourceEvent] = []
        for spec in specs:
            raw, key = self.packager.render(spec), spec.document_id.encode()
            events.append(SourceEvent(key, raw, (), Outcome.ACCEPTED))
            again = SourceEvent(key, raw, (), Outcome.DUPLICATE)
            events.extend(again for _ in range(1, spec.copies))
        return events


async def generate(
    generator: TrafficGenerator,
    producer: AIOKafkaProducer,
    topic: str,
    traffic_stop: asyncio.Event,
    *,
    tick_seconds: float,
    clock: Clock = utc_now,
    documents: DocumentOutput | None = None,
    adapter: PortalAdapter | None = None,
    intake: HttpIntake | None = None,
) -> None:
    """The Kafka edge of the generator: every tick, produce what it made; stop between ticks."""
    while not traffic_stop.is_set():
        started = time.monotonic()
        now = clock()
        await produce(producer, topic, generator.tick(now), adapter, intake)
        if documents is not None and (specs := generator.tick_documents(now)):
            packages = await asyncio.to_thread(documents.render, specs)
            await produce(producer, documents.topic, packages)
        delay = max(0.0, tick_seconds - (time.monotonic() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(traffic_stop.wait(), delay)


class LocalRun:
    """One run of the local pipeline; `refresh` is called with the view state once a period."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        kafka: str | None,
        duration: float | None,
        refresh: Callable[[ViewState], None] = lambda _: None,
        log_file: str | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.duration = duration
        self.refresh = refresh
        self.log_file = log_file
        seed = (
            settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**32)
        )
        self.generator = TrafficGenerator(settings.traffic(), random.Random(seed))  # noqa: S311
        self.state: ViewState | None = None
        self._started = time.monotonic()

    def _suffix(self) -> str:
        if self.settings.namespace is not None:
            return f".{self.settings.namespace}" if self.settings.namespace else ""
        return "" if self.kafka is None else f".run-{uuid.uuid4().hex[:8]}"

    async def run(self, stop: asyncio.Event, finish: asyncio.Event | None = None) -> RunReport:
        self._started = time.monotonic()
        finish = finish or asyncio.Event()
        suffix = self._suffix()
        async with AsyncExitStack() as stack:
            bootstrap = await stack.enter_async_context(
                broker_for(
                    self.kafka, relay=self.settings.client_relay, port=self.settings.broker_port
                )
            )
            kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id="govsync-run")
            simulator = Simulator(password=SIMULATOR_SECRET, client_secret=SIMULATOR_SECRET)
            sim = await stack.enter_async_context(running_simulator(simulator))
            trust_bundle, packager, bindings = None, None, None
            if self.settings.edocuments_per_second > 0:
                # A PKI for this run only: the keys stay in memory, the CA is the trust bundle.
                pki = make_pki()
                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="govsync-pki-"))
                trust_bundle, packager = pki.write_bundle(Path(directory)), Packager(pki)
                bindings = pki.signer_bindings((*self.settings.agencies, *OTHER_AGENCIES))
            # The scores service's database lives as long as the run.
            run_directory = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="govsync-run-"))
            )
            services = build_services(
                kafka,
                self.settings,
                sim.portal_url,
                sim.ndxp_url,
                suffix,
                trust_bundle=trust_bundle,
                signer_bindings=bindings,
                scores_database=run_directory / "scores.sqlite3",
                port=functools.partial(hold_port, stack),
            )
            assert services.scores is not None  # noqa: S101 - asked for just above
            documents = (
                None
                if packager is None
                else DocumentOutput(services.ingest.topic_edocument, packager)
            )
            await ensure_topics(kafka, ingest_topics(services.ingest))
            for target, sync_settings in services.sync.items():
                await prepare_topics(sync_settings, target)
            ingest_url = f"http://127.0.0.1:{services.ingest.http_port}"
            sync_urls = {t.value: f"http://127.0.0.1:{s.port(t)}" for t, s in services.sync.items()}
            scores_url = f"http://127.0.0.1:{services.scores.http_port}"
            endpoints = Endpoints(
                scores=scores_url,
                broker=bootstrap + ("" if self.kafka else " (embedded)"),
                ingest=ingest_url,
                sync=sync_urls,
                simulator=sim.base_url,
                log_file=self.log_file,
                intakes=(
                    f"{ingest_url}/v1/events (API key {VENDOR_API_KEY}, source {VENDOR_SOURCE})",
                    f"{ingest_url}/dvcqg (login {VENDOR_USERNAME} / {VENDOR_PASSWORD})",
                ),
            )
            self.state = ViewState(endpoints=endpoints, truth=self.generator.truth)
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
            scraper = Scraper(
                client,
                ingest=ingest_url,
                sync=sync_urls,
                scores=scores_url,
                periods=lambda: scored_periods(self.generator.truth, utc_now()),
            )
            adapter = PortalAdapter(
                client, f"{ingest_url}/dvcqg", username=VENDOR_USERNAME, password=VENDOR_PASSWORD
            )
            intake = HttpIntake(client, ingest_url, api_key=VENDOR_API_KEY)
            producer = make_producer(kafka)
            await producer.start()
            stack.push_async_callback(producer.stop)
            log.info("local run starting", broker=bootstrap, suffix=suffix)

            services_stop = asyncio.Event()
            final: list[Snapshot] = []
            drained_ok: list[bool] = [False]
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(run_ingest(services.ingest, services_stop), name="ingest")
                for target, sync_settings in services.sync.items():
                    tasks.create_task(
                        run_sync(
                            sync_settings, target, services_stop, registry=CollectorRegistry()
                        ),
                        name=f"sync-{target.value}",
                    )
                tasks.create_task(
                    run_scores(services.scores, services_stop, registry=CollectorRegistry()),
                    name="scores",
                )
                tasks.create_task(
                    self._control(
                        stop,
                        finish,
                        services_stop,
                        client,
                        scraper,
                        producer,
                        services.ingest.topic_dossier,
                        documents,
                        (adapter, intake),
                        [ingest_url, *sync_urls.values(), scores_url],
                        final,
                        drained_ok,
                    ),
                    name="control",
                )
            snapshot = final[0] if final else Snapshot()
            truth = self.generator.truth
            state = sim.simulator.state
            mismatches = [
                code
                for code, status in truth.final_status.items()
                if (found := state.portal.get(code)) is None or found.status != status
            ]
            report = RunReport(
                truth=truth,
                snapshot=snapshot,
                drained=drained_ok[0],
                differences=differences(
                    snapshot, truth, scored_periods(truth, utc_now()) if final else ()
                ),
                endpoints=endpoints,
                elapsed=time.monotonic() - self._started,
                portal_dossiers=len(state.portal),
                ndxp_dossiers=len(state.ndxp),
                portal_status_mismatches=mismatches,
                regressions=len(state.regressions),
            )
        self._show("stopped", snapshot)
        log.info(
            "local run stopped",
            sent=report.truth.sent,
            agree=report.agree,
            drained=report.drained,
            seconds=round(report.elapsed, 1),
        )
        return report

    def _show(self, phase: str, snapshot: Snapshot | None = None) -> None:
        if self.state is None:
            return
        self.state.phase = phase
        self.state.elapsed = time.monotonic() - self._started
        if snapshot is not None:
            self.state.snapshot = snapshot
            self.state.period = official.run_periods(self.generator.truth, utc_now())[0].name
        self.refresh(self.state)

    async def _control(
        self,
        stop: asyncio.Event,
        finish: asyncio.Event,
        services_stop: asyncio.Event,
        client: httpx.AsyncClient,
        scraper: Scraper,
        producer: AIOKafkaProducer,
        topic: str,
        documents: DocumentOutput | None,
        clients: tuple[PortalAdapter, HttpIntake],
        urls: list[str],
        final: list[Snapshot],
        drained_ok: list[bool],
    ) -> None:
        """Readiness, traffic, the periodic view, and the order of the ending."""
        try:
            either = asyncio.Event()
            ending = asyncio.Event()  # stop at once, or finish after draining
            watchers = [
                asyncio.create_task(_relay(stop, either)),
                asyncio.create_task(_relay(services_stop, either)),
                asyncio.create_task(_relay(either, ending)),
                asyncio.create_task(_relay(finish, ending)),
            ]
            try:
                self._show("starting")
                if not await wait_ready(client, urls, either):
                    return
                traffic_stop = asyncio.Event()
                traffic = asyncio.create_task(
                    generate(
                        self.generator,
                        producer,
                        topic,
                        traffic_stop,
                        tick_seconds=self.settings.tick_seconds,
                        documents=documents,
                        adapter=clients[0],
                        intake=clients[1],
                    )
                )
                ends_at = None if self.duration is None else time.monotonic() + self.duration
                try:
                    while not ending.is_set() and not traffic.done():
                        if ends_at is not None and time.monotonic() >= ends_at:
                            break
                        self._show("running", await scraper.snapshot())
                        wait = self.settings.refresh_seconds
                        if ends_at is not None:
                            wait = max(0.0, min(wait, ends_at - time.monotonic()))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(ending.wait(), wait)
                finally:
                    traffic_stop.set()
                    await traffic  # a producer failure surfaces here
                if not either.is_set():
                    drained_ok[0] = await self._drain(either, scraper)
                final.append(await scraper.snapshot())
                self._show("stopping", final[0])
            finally:
                for watcher in watchers:
                    watcher.cancel()
        finally:
            services_stop.set()

    async def _drain(self, either: asyncio.Event, scraper: Scraper) -> bool:
        """Until ingest decided every event sent and both workers finished every record."""
        deadline = time.monotonic() + self.settings.drain_timeout
        while not either.is_set() and time.monotonic() < deadline:
            snapshot = await scraper.snapshot()
            self._show("draining", snapshot)
            if drained(snapshot, self.generator.truth):
                log.info("pipeline drained", events=snapshot.consumed)
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(either.wait(), 0.2)
        log.warning("pipeline did not drain", timeout=self.settings.drain_timeout)
        return False


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


__all__ = ["TARGETS", "LocalRun", "RunReport", "build_services"]
