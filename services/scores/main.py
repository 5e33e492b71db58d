"""`govsync scores` and `govsync scores migrate`: wire settings, database, Kafka and HTTP; run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.common import topics
from services.common.httpapp import new_registry, serve
from services.common.kafka import (
    TopicSpec,
    broker_reachable,
    ensure_topics,
    make_consumer,
    make_producer,
)
from services.common.labels import AgencyLabels
from services.common.lifecycle import install_stop_handlers, run_async, wait_or_stop
from services.common.logging import configure_logging, get_logger
from services.reconcile import schedule as reconcile
from services.scores import pages
from services.scores.api import create_app
from services.scores.catalogue import Catalogue, parse_catalogue
from services.scores.consumer import ScoresWorker
from services.scores.crosswalk import Crosswalk, parse_crosswalk
from services.scores.database import current_revision, database_url, make_engine, migrate
from services.scores.errors import ConfigurationError, ShutdownTimeoutError
from services.scores.metrics import ScoresMetrics
from services.scores.periods import current_periods
from services.scores.scoreboard import Scoreboard
from services.scores.settings import ScoresSettings
from services.scores.store import ScoreStore

log = get_logger(__name__)

BROKER_CHECK_SECONDS = 2.0


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from None


def load_catalogue(settings: ScoresSettings) -> Catalogue:
    path = settings.scores.procedure_catalogue
    if path is None:
        return Catalogue()
    return parse_catalogue(_read(path, "procedure catalogue"), source=str(path))


def load_crosswalk(settings: ScoresSettings) -> Crosswalk:
    path = settings.scores.agency_crosswalk
    current = settings.scores.agencies
    if path is None:
        return Crosswalk(current=frozenset(current))
    return parse_crosswalk(_read(path, "agency crosswalk"), current=current, source=str(path))


def engine_for(settings: ScoresSettings) -> Engine:
    password = settings.scores.database_password
    url = database_url(
        settings.scores.database_url, password.get_secret_value() if password else None
    )
    return make_engine(url)


def fetch_options(settings: ScoresSettings) -> dict[str, int]:
    """How much one fetch brings (the benchmark's bare loop uses the same)."""
    return {
        "max_poll_records": settings.scores.batch_max_records,
        "fetch_max_bytes": settings.scores.fetch_max_bytes,
        "max_partition_fetch_bytes": settings.scores.partition_fetch_max_bytes,
    }


def label_agencies(settings: ScoresSettings) -> frozenset[str]:
    """The agencies whose score gauges carry their own label (`GOVSYNC_LABEL_AGENCIES` and the
    agencies served, `GOVSYNC_SCORES_AGENCIES`, well-formed codes only); the rest are `other`."""
    return AgencyLabels(settings.label_agencies | settings.scores.agencies).agencies


def refresh_gauges(
    scoreboard: Scoreboard, metrics: ScoresMetrics, *, agencies: frozenset[str]
) -> None:
    """Recompute the score gauges of the current month, quarter and year (blocking)."""
    now = scoreboard.clock()
    cards = [
        (kind, card)
        for kind, period in current_periods(now).items()
        for card in scoreboard.scorecards(period, now, labelled=agencies)
    ]
    metrics.publish(cards, at=time.time())


async def _refresh_loop(
    scoreboard: Scoreboard, metrics: ScoresMetrics, settings: ScoresSettings, stop: asyncio.Event
) -> None:
    while True:
        try:
            await asyncio.to_thread(
                refresh_gauges, scoreboard, metrics, agencies=label_agencies(settings)
            )
        except Exception as exc:  # noqa: BLE001 - the gauges wait for the next round
            log.warning("score gauges not refreshed", error=type(exc).__name__)
        if await wait_or_stop(stop, settings.scores.metrics_refresh_seconds):
            return


async def run(
    settings: ScoresSettings,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
    serve_http: bool = True,
    clock: Callable[[], datetime] | None = None,
    started: Callable[[Scoreboard], None] | None = None,
) -> None:
    """Run the scores service until `stop` is set; a crashed worker raises out of here."""
    registry = registry if registry is not None else new_registry()
    catalogue, crosswalk = load_catalogue(settings), load_crosswalk(settings)
    engine = engine_for(settings)
    try:
        if settings.scores.migrate_on_start:
            await asyncio.to_thread(migrate, engine)
        store = ScoreStore(engine, catalogue)
        await asyncio.to_thread(store.prepare)
        scoreboard = Scoreboard(store, crosswalk, clock or (lambda: datetime.now(UTC)))
        metrics = ScoresMetrics(registry)
        rf = 1
        await ensure_topics(
            settings.kafka,
            [
                TopicSpec(settings.topic_dossier_normalized, topics.DEFAULT_PARTITIONS, rf),
                TopicSpec(settings.topic_edocument_normalized, topics.DEFAULT_PARTITIONS, rf),
                TopicSpec(settings.topic_dlq, topics.DEFAULT_PARTITIONS, rf),
            ],
        )
        consumer = make_consumer(
            settings.kafka,
            group_id=settings.consumer_group,
            **fetch_options(settings),
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
            # The acknowledgements' topic is created by the portal sync, maybe after we start:
            # learn of it within seconds, not aiokafka's five minutes.
            metadata_max_age_ms=5_000,
        )
        producer = make_producer(settings.kafka)
        async with producer, consumer:
            worker = ScoresWorker(
                settings, store, consumer=consumer, producer=producer, metrics=metrics
            )

            async def readiness() -> dict[str, bool]:
                try:
                    await asyncio.to_thread(store.ping)
                    database = True
                except Exception:  # noqa: BLE001 - any failure means "not ready now"
                    database = False
                broker = worker.fetching and await broker_reachable(
                    producer, timeout_seconds=BROKER_CHECK_SECONDS
                )
                return {"database": database, "broker": broker}

            app = create_app(
                scoreboard,
                registry=registry,
                readiness=readiness,
                page_size=settings.scores.page_size,
                export_max_rows=settings.scores.export_max_rows,
            )
            app.include_router(pages.router(scoreboard, page_size=settings.scores.page_size))
            log.info("scores service starting", group=settings.consumer_group)
            if started is not None:
                started(scoreboard)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_run_worker(worker, stop, settings.shutdown_budget_seconds))
                tasks.create_task(_refresh_loop(scoreboard, metrics, settings, stop))
                # The reconciliation's gauges, and its sweeps when scheduled (services/reconcile/).
                tasks.create_task(reconcile.run(settings, engine, scoreboard, registry, stop))
                if serve_http:
                    tasks.create_task(
                        serve(app, host=settings.http_host, port=settings.http_port, stop=stop)
                    )
    finally:
        engine.dispose()
    log.info("scores service stopped")


async def _run_worker(worker: ScoresWorker, stop: asyncio.Event, budget: float) -> None:
    """Run the worker; once `stop` is set it has `budget` seconds to finish and commit."""
    task = asyncio.create_task(worker.run(stop), name="scores-worker")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=budget)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise ShutdownTimeoutError(f"the worker did not stop within {budget} s")
        await task
    except BaseException:
        stop.set()  # take the HTTP server down with the worker: no half-alive process
        raise
    finally:
        stopping.cancel()


def _settings() -> ScoresSettings:
    return ScoresSettings(_secrets_dir=os.environ.get("GOVSYNC_SECRETS_DIR"))


def main() -> int:
    settings = _settings()
    configure_logging(settings.log_level, service="govsync-scores")

    async def _main() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        await run(settings, stop)

    try:
        run_async(_main())
    except Exception:
        log.exception("scores service crashed")
        return 1
    return 0


def migrate_main() -> int:
    """`govsync scores migrate`: bring the schema up to date and say where it is."""
    settings = _settings()
    configure_logging(settings.log_level, service="govsync-scores")
    engine = engine_for(settings)
    try:
        migrate(engine)
        log.info("scores database migrated", revision=current_revision(engine))
    except Exception:
        log.exception("scores migration failed")
        return 1
    finally:
        engine.dispose()
    return 0
