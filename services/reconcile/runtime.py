"""The reconciliation's clients, opened once per process: the portal (the sync's client, its
session and errors), the reporting API and, only when something is re-sent, the broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.common.kafka import make_consumer, make_producer
from services.reconcile import scorecheck
from services.reconcile.lookup import Lookups
from services.reconcile.reporting import ReportingClient
from services.reconcile.resend import KafkaResender
from services.reconcile.store import ReconcileStore, ScoreCheck, Sweep
from services.reconcile.sweep import Sweeper
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard
from services.scores.settings import ScoresSettings
from services.sync.metrics import SyncMetrics
from services.sync.portal import PortalClient
from services.sync.transport import USER_AGENT, make_client


class LazyResender:
    """Opens its broker clients at the first re-send (a sweep that finds nothing needs none)."""

    def __init__(self, settings: ScoresSettings, stack: contextlib.AsyncExitStack) -> None:
        self._settings = settings
        self._stack = stack
        self._open: KafkaResender | None = None

    async def resend(self, wanted: Mapping[str, tuple[bool, int]]) -> dict[str, str]:
        if self._open is None:
            kafka = self._settings.kafka
            consumer: AIOKafkaConsumer = make_consumer(kafka, group_id=None)
            producer: AIOKafkaProducer = make_producer(kafka)
            await self._stack.enter_async_context(producer)
            await self._stack.enter_async_context(consumer)
            self._open = KafkaResender(consumer, producer, self._settings.topic_dossier_normalized)
        return await self._open.resend(wanted)


@dataclass(slots=True)
class Reconciler:
    settings: ScoresSettings
    board: Scoreboard
    store: ReconcileStore
    sweeper: Sweeper
    reporting: ReportingClient
    clock: Callable[[], datetime]

    async def dossiers(
        self, agency: str, period: Period, *, stop: asyncio.Event | None = None
    ) -> Sweep:
        codes = self.board.crosswalk.codes_for(agency, period) or [agency]
        return await self.sweeper.run(agency, period, codes, stop=stop)

    async def scores(self, agency: str, period: Period) -> ScoreCheck:
        return await scorecheck.check(
            board=self.board,
            store=self.store,
            reporting=self.reporting,
            departments=self.settings.reconcile.departments,
            agency=agency,
            period=period,
            now=self.clock,
            now_ms=int(time.time() * 1000),
        )


@contextlib.asynccontextmanager
async def open_reconciler(
    settings: ScoresSettings,
    engine: Engine,
    board: Scoreboard,
    *,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[Reconciler]:
    options, portal = settings.reconcile, settings.portal
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            make_client(
                portal.url, timeout=portal.timeout_seconds, max_connections=options.concurrency
            )
        )
        # The sync's request metrics stay in a registry of their own: the scores process
        # exports the reconciliation's, not a second sync's.
        client = PortalClient(portal, http, SyncMetrics(CollectorRegistry(), "reconcile"))
        reporting_http = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=options.reporting_url,
                timeout=httpx.Timeout(options.reporting_timeout_seconds, connect=5.0),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            )
        )
        reporting = ReportingClient(reporting_http)
        store = ReconcileStore(engine)
        departments = options.departments

        async def portal_count(agency: str, period: Period) -> int | None:
            return await scorecheck.portal_received(reporting, departments, agency, period)

        sweeper = Sweeper(
            store,
            Lookups(client, portal.share_path, options),
            options,
            resender=LazyResender(settings, stack),
            portal_count=portal_count if departments else None,
        )
        yield Reconciler(
            settings, board, store, sweeper, reporting, clock or (lambda: datetime.now(UTC))
        )
