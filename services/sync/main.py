"""`govsync sync --target portal|ndxp`: wires settings, Kafka, destination and HTTP; then runs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from services.common import topics
from services.common.httpapp import new_registry, serve
from services.common.kafka import (
    TopicSpec,
    broker_reachable,
    ensure_topics,
    make_consumer,
    make_producer,
    partition_count,
)
from services.common.lifecycle import install_stop_handlers, run_async
from services.common.logging import configure_logging, get_logger
from services.sync.api import create_app
from services.sync.consumer import SyncWorker
from services.sync.delivery import Destination
from services.sync.errors import DestinationConfigError, ShutdownTimeoutError, TopicLayoutError
from services.sync.metrics import SyncMetrics
from services.sync.ndxp import NdxpClient
from services.sync.portal import PortalClient
from services.sync.settings import SyncSettings, Target
from services.sync.transport import make_client

log = get_logger(__name__)

BROKER_CHECK_SECONDS = 2.0


def check_destination(settings: SyncSettings, target: Target) -> None:
    """Refuse to start against a destination reached in clear or with an empty credential.

    Raises `DestinationConfigError` naming the variable to fix (never its value).
    """
    if target is Target.PORTAL:
        url, secret = settings.portal.url, settings.portal.password
        names = ("GOVSYNC_PORTAL_URL", "GOVSYNC_PORTAL_PASSWORD")
    else:
        url, secret = settings.ndxp.url, settings.ndxp.client_secret
        names = ("GOVSYNC_NDXP_URL", "GOVSYNC_NDXP_CLIENT_SECRET")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationConfigError(f"{names[0]} is not set to an https URL")
    if parts.scheme == "http" and not settings.allow_http:
        raise DestinationConfigError(
            f"{names[0]} is plain http: use https (GOVSYNC_ALLOW_HTTP=true is for local runs)"
        )
    if not secret.get_secret_value().strip():
        raise DestinationConfigError(f"{names[1]} is empty")


async def prepare_topics(settings: SyncSettings, target: Target) -> None:
    """The acknowledged-revisions topic, with as many partitions as the normalised topic."""
    rf = settings.replication_factor
    await ensure_topics(
        settings.kafka,
        [
            TopicSpec(settings.topic_dossier_normalized, topics.DEFAULT_PARTITIONS, rf),
            TopicSpec(settings.topic_dlq, topics.DEFAULT_PARTITIONS, rf),
        ],
    )
    partitions = await partition_count(settings.kafka, settings.topic_dossier_normalized)
    acked = settings.acked_topic(target)
    await ensure_topics(settings.kafka, [TopicSpec.compacted(acked, partitions, rf)])
    existing = await partition_count(settings.kafka, acked)
    if existing != partitions:
        raise TopicLayoutError(
            f"{acked} has {existing} partitions but {settings.topic_dossier_normalized} has"
            f" {partitions}: they must be co-partitioned"
        )


@contextlib.asynccontextmanager
async def _destination(
    settings: SyncSettings, target: Target, metrics: SyncMetrics
) -> AsyncIterator[tuple[Destination, PortalClient | NdxpClient]]:
    connections = max(settings.delivery.max_in_flight, 4)
    if target is Target.PORTAL:
        http = make_client(
            settings.portal.url,
            timeout=settings.portal.timeout_seconds,
            max_connections=connections,
        )
        client: PortalClient | NdxpClient = PortalClient(settings.portal, http, metrics)
    else:
        http = make_client(
            settings.ndxp.url, timeout=settings.ndxp.timeout_seconds, max_connections=connections
        )
        client = NdxpClient(settings.ndxp, http, metrics)
    async with http:
        try:
            yield client, client
        finally:
            await client.aclose()


async def _obtain_credentials(client: PortalClient | NdxpClient, stop: asyncio.Event) -> None:
    """Log in (or fetch a token) at start so readiness reflects it; failures only delay it."""
    delay = 0.5
    while not stop.is_set():
        try:
            if isinstance(client, PortalClient):
                await client.login()
            else:
                await client.fetch_token()
        except httpx.HTTPError as exc:  # pragma: no cover - translated in the clients
            log.warning("credentials not obtained", error=type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - any failure is retried; the worker still runs
            log.warning("credentials not obtained", error=type(exc).__name__)
        else:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 30)


async def run(
    settings: SyncSettings,
    target: Target,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
    serve_http: bool = True,
) -> None:
    """Run one sync worker until `stop` is set; a crashed worker raises out of here."""
    check_destination(settings, target)
    registry = registry if registry is not None else new_registry()
    metrics = SyncMetrics(
        registry, target.value, agencies=settings.label_agencies | {settings.portal.madonvi}
    )
    await prepare_topics(settings, target)
    group = settings.group_id(target)
    consumer = make_consumer(
        settings.kafka,
        group_id=group,
        max_poll_records=settings.delivery.max_buffered,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
    )
    reader = make_consumer(settings.kafka, group_id=None)
    producer = make_producer(settings.kafka)

    def dlq_reader() -> AIOKafkaConsumer:
        return make_consumer(settings.kafka, group_id=None)

    async with (
        producer,
        reader,
        consumer,
        _destination(settings, target, metrics) as (destination, client),
    ):
        worker = SyncWorker(
            settings,
            target,
            destination,
            consumer=consumer,
            producer=producer,
            acked_reader=reader,
            metrics=metrics,
            holds=client.holds if isinstance(client, PortalClient) else None,
        )

        async def readiness() -> dict[str, bool]:
            obtained = (
                client.logged_in if isinstance(client, PortalClient) else client.token_obtained
            )
            return {
                "broker": worker.fetching
                and await broker_reachable(producer, timeout_seconds=BROKER_CHECK_SECONDS),
                "credentials": obtained,
                "partitions": bool(worker.assigned),
            }

        app = create_app(
            target=target.value,
            registry=registry,
            readiness=readiness,
            admin_token=settings.admin_token,
            dlq_topic=settings.topic_dlq,
            reader_factory=dlq_reader,
            producer=producer,
            replay_topics=settings.replay_topics(),
        )
        log.info("sync worker starting", target=target.value, group=group)
        _freeze_startup_objects()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_obtain_credentials(client, stop))
            tasks.create_task(_run_worker(worker, stop, settings.shutdown_budget_seconds))
            if serve_http:
                tasks.create_task(
                    serve(
                        app,
                        host=settings.http_host,
                        port=settings.port(target),
                        stop=stop,
                        trusted_proxies=settings.trusted_proxies,
                    )
                )
    log.info("sync worker stopped", target=target.value)


def _freeze_startup_objects() -> None:
    """Keep what exists at startup (modules, classes, clients) out of every later GC pass.

    A full collection walked all of it and stalled the loop for about 50 ms, holding back the
    answers of every request in flight. Collected first so that no garbage is frozen with it;
    in a process hosting several services (`govsync run`) their startup objects are frozen too.
    """
    gc.collect()
    gc.freeze()


async def _run_worker(worker: SyncWorker, stop: asyncio.Event, budget: float) -> None:
    """Run the worker; once `stop` is set it has `budget` seconds to finish and commit."""
    task = asyncio.create_task(worker.run(stop), name="sync-worker")
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


def main(*, target: str) -> int:
    settings = SyncSettings(_secrets_dir=os.environ.get("GOVSYNC_SECRETS_DIR"))
    configure_logging(settings.log_level, service=f"govsync-sync-{target}")

    async def _main() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        await run(settings, Target(target), stop)

    try:
        run_async(_main())
    except DestinationConfigError as exc:
        log.error("sync worker refuses to start", target=target, reason=str(exc))
        return 1
    except Exception:
        log.exception("sync worker crashed", target=target)
        return 1
    return 0
