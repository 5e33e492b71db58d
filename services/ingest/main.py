"""Wires and runs the ingest process: settings, clients, worker and HTTP server in one TaskGroup."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from datetime import timedelta

from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common.auth import FailureLimiter, KeyRing
from services.common.deadletter import DeadLetterWriter
from services.common.httpapp import ReadinessCheck, create_base_app, new_registry, serve
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.lifecycle import freeze_startup_objects, install_stop_handlers, run_async
from services.common.logging import configure_logging, get_logger
from services.common.problem import install_problem_handlers
from services.ingest.api import EventSink, IntakeConfig, KafkaEventSink, add_intake_routes
from services.ingest.binding import SourceBinding
from services.ingest.dossiers.decide import Policy
from services.ingest.dossiers.pipeline import DossierPipeline, VocabularyBook
from services.ingest.dvcqg.accounts import AccountBook, account_source
from services.ingest.dvcqg.api import DossierLookup, DvcqgConfig, StateLookup, add_dvcqg_routes
from services.ingest.dvcqg.metrics import DvcqgMetrics
from services.ingest.dvcqg.sessions import SessionKeys
from services.ingest.edocuments.binding import SignerBindings
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.edocuments.trust import load_trust_bundle
from services.ingest.handling import EventHandler, HandlerTopics
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings
from services.ingest.worker import IngestWorker, WorkerTopics

log = get_logger(__name__)
VERSION = "0.1.0"


def topics(settings: IngestSettings) -> list[TopicSpec]:
    n, rf = settings.topic_partitions, settings.topic_replication_factor
    return [
        TopicSpec(settings.topic_dossier, n, rf),
        TopicSpec(settings.topic_dossier_normalized, n, rf),
        TopicSpec(settings.topic_dlq, n, rf),
        TopicSpec.compacted(settings.topic_state, n, rf),
        TopicSpec(settings.topic_edocument, n, rf),
        TopicSpec(settings.topic_edocument_normalized, n, rf),
        TopicSpec.compacted(settings.topic_edocument_ledger, n, rf),
    ]


def source_agencies(settings: IngestSettings) -> dict[str, list[str]]:
    """`GOVSYNC_SOURCE_AGENCIES`, and, once a binding is configured, each `/dvcqg` account's
    source bound to the account's agencies (else the worker would refuse what it writes)."""
    table = {source: list(codes) for source, codes in settings.source_agencies.items()}
    if table:
        for username, entry in settings.dvcqg_accounts.items():
            codes = table.setdefault(account_source(username, entry), [])
            codes.extend(sorted(entry.agencies - set(codes)))
    return table


def build_pipeline(settings: IngestSettings) -> DossierPipeline:
    return DossierPipeline(
        vocabularies=VocabularyBook(settings.status_vocabularies, settings.channel_vocabularies),
        policy=policy(settings),
        max_text_chars=settings.max_text_chars,
        source_binding=SourceBinding(source_agencies(settings), settings.shared_sources),
        internal_urls=settings.allow_internal_file_urls,
        max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
    )


def build_documents(settings: IngestSettings) -> DocumentPipeline:
    trust = load_trust_bundle(settings.trust_bundle) if settings.trust_bundle else None
    return DocumentPipeline(
        own_agencies=settings.own_agencies,
        trust=trust,
        limits=settings.edxml,
        bindings=SignerBindings(settings.signer_bindings),
        source_binding=SourceBinding(source_agencies(settings), settings.shared_sources),
        max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
    )


def handler_topics(settings: IngestSettings) -> HandlerTopics:
    return HandlerTopics(
        dossier=settings.topic_dossier,
        dossier_output=settings.topic_dossier_normalized,
        edocument=settings.topic_edocument,
        edocument_output=settings.topic_edocument_normalized,
    )


def build_handler(
    settings: IngestSettings, pipeline: DossierPipeline, documents: DocumentPipeline
) -> EventHandler:
    """The per-event handling the worker and the intake share."""
    return EventHandler(
        pipeline=pipeline,
        documents=documents,
        topics=handler_topics(settings),
        max_event_bytes=settings.max_event_bytes,
        max_json_values=settings.max_json_values,
    )


def intake_app(
    settings: IngestSettings,
    *,
    registry: CollectorRegistry,
    readiness: ReadinessCheck,
    sink: EventSink,
    handler: EventHandler,
    metrics: IngestMetrics,
    lookup: DossierLookup | None = None,
) -> FastAPI:
    """The HTTP side: health, metrics, the intake routes with their keys and limiter, and the
    portal-compatible intake under `/dvcqg` (`lookup` answers its TraCuuHoSo)."""
    app = create_base_app(
        title="govsync ingest", version=VERSION, registry=registry, readiness=readiness
    )
    install_problem_handlers(app)
    add_intake_routes(
        app,
        config=IntakeConfig(
            dossier_topic=settings.topic_dossier,
            edocument_topic=settings.topic_edocument,
            max_request_bytes=settings.max_request_bytes,
            max_batch_events=settings.max_batch_events,
            max_pdfs_per_request=settings.max_pdfs_per_request,
            concurrency=settings.intake_concurrency,
        ),
        keys=KeyRing(settings.api_keys),
        sink=sink,
        handler=handler,
        metrics=metrics,
        limiter=FailureLimiter(
            limit=settings.auth_failure_limit, window=settings.auth_failure_window_seconds
        ),
    )
    add_dvcqg_routes(
        app,
        config=DvcqgConfig(
            max_request_bytes=settings.max_request_bytes, max_items=settings.dvcqg_max_items
        ),
        accounts=AccountBook(settings.dvcqg_accounts),
        sessions=session_keys(settings),
        sink=sink,
        handler=handler,
        lookup=lookup or StateLookup({}),
        metrics=DvcqgMetrics(registry),
        limiter=FailureLimiter(
            limit=settings.auth_failure_limit, window=settings.auth_failure_window_seconds
        ),
    )
    return app


def session_keys(settings: IngestSettings) -> SessionKeys:
    ttl = timedelta(seconds=settings.dvcqg_session_ttl_seconds)
    if settings.dvcqg_session_secret is None:
        if settings.dvcqg_accounts:
            log.warning(
                "GOVSYNC_DVCQG_SESSION_SECRET is unset: /dvcqg sessions end with this process"
                " and are honoured by this replica only"
            )
        return SessionKeys.random(ttl)
    return SessionKeys(settings.dvcqg_session_secret.get_secret_value().encode(), ttl)


def policy(settings: IngestSettings) -> Policy:
    return Policy(
        legal_time_limits_days=dict(settings.legal_time_limits_days),
        finished_retention=settings.finished_retention,
        archive_retention=timedelta(days=settings.archive_retention_days),
    )


async def run(settings: IngestSettings, stop: asyncio.Event) -> None:
    """Run until `stop` is set; an exception from the worker or the server ends the process."""
    registry = new_registry()
    metrics = IngestMetrics(registry, agencies=settings.label_agencies | settings.own_agencies)
    if not settings.source_agencies:
        log.warning(
            "no source is bound to agencies (GOVSYNC_SOURCE_AGENCIES): every source may write"
            " every agency's dossiers and documents"
        )
    if settings.create_topics:
        await ensure_topics(settings.kafka, topics(settings))
    handler = build_handler(settings, build_pipeline(settings), build_documents(settings))
    async with AsyncExitStack() as stack:
        producer = make_producer(settings.kafka)
        consumer = make_consumer(
            settings.kafka,
            group_id=settings.consumer_group,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
        )
        restorer = make_consumer(settings.kafka, group_id=None)
        for client in (producer, restorer):
            await client.start()
            stack.push_async_callback(client.stop)
        worker = IngestWorker(
            consumer=consumer,
            producer=producer,
            restorer=restorer,
            dead_letters=DeadLetterWriter(producer, settings.topic_dlq),
            handler=handler,
            metrics=metrics,
            topics=WorkerTopics(
                dossier=settings.topic_dossier,
                dossier_output=settings.topic_dossier_normalized,
                state=settings.topic_state,
                edocument=settings.topic_edocument,
                edocument_output=settings.topic_edocument_normalized,
                edocument_ledger=settings.topic_edocument_ledger,
            ),
            policy=policy(settings),
            max_batch=settings.max_batch_events,
            eviction_interval_seconds=settings.eviction_interval_seconds,
        )
        consumer.subscribe(
            [settings.topic_dossier, settings.topic_edocument], listener=worker.listener()
        )
        stack.push_async_callback(consumer.stop)

        app = intake_app(
            settings,
            registry=registry,
            readiness=worker.readiness,
            sink=KafkaEventSink(producer),
            handler=handler,
            metrics=metrics,
            lookup=StateLookup(worker.states.partitions),
        )
        freeze_startup_objects()  # as in sync and scores: full GC passes over the imports
        log.info(
            "ingest starting",
            bootstrap=settings.kafka.bootstrap_servers,
            topic=settings.topic_dossier,
            port=settings.http_port,
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_until_stopped(_consume(consumer, worker, stop), stop))
            tasks.create_task(
                serve(
                    app,
                    host=settings.http_host,
                    port=settings.http_port,
                    stop=stop,
                    trusted_proxies=settings.trusted_proxies,
                )
            )
        log.info("ingest stopped")


async def _consume(consumer: AIOKafkaConsumer, worker: IngestWorker, stop: asyncio.Event) -> None:
    # Joining the group can take seconds; the HTTP server answers /healthz meanwhile.
    await consumer.start()
    await worker.run(stop)


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run the worker; however it ends, set `stop` so the server shuts down cleanly with it."""
    try:
        await work
    finally:
        stop.set()


async def _main(settings: IngestSettings) -> None:
    stop = asyncio.Event()
    install_stop_handlers(stop)
    await run(settings, stop)


def main() -> int:
    settings = IngestSettings(_secrets_dir=os.environ.get("GOVSYNC_SECRETS_DIR"))
    configure_logging(settings.log_level, service="ingest")
    # pyHanko logs unbuildable chains with a traceback naming the signer: personal data.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    try:
        run_async(_main(settings))
    except Exception as exc:
        log.error("ingest failed", error=type(exc).__name__, exc_info=exc)
        return 1
    return 0
