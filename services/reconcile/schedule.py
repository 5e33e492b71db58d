"""The reconciliation inside the scores service: its gauges, refreshed from the database, and,
when `GOVSYNC_RECONCILE_SCHEDULE` is on, a round of sweeps every `interval_seconds` (each
agency's current and previous month, then their scores where a department id is configured).

A round that fails (the database, the reporting API) is logged and the next one tries again:
the reconciliation is a check beside the scores service, never a reason to stop it. A sweep
another process is running (its lease) is left to it.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.common.lifecycle import wait_or_stop
from services.common.logging import get_logger
from services.reconcile.errors import ReconcileError, SweepBusyError
from services.reconcile.metrics import ReconcileMetrics
from services.reconcile.runtime import Reconciler, open_reconciler
from services.reconcile.store import ReconcileStore
from services.reconcile.sweep import Stopped
from services.scores.periods import Period, PeriodKind
from services.scores.scoreboard import Scoreboard
from services.scores.settings import ScoresSettings

log = get_logger(__name__)


def periods_to_sweep(board: Scoreboard) -> list[Period]:
    """The current month and the one before (its figures may still be corrected)."""
    current = Period.containing(board.clock(), PeriodKind.MONTH)
    year, month = (current.year, current.index - 1) if current.index > 1 else (current.year - 1, 12)
    return [Period.month(year, month), current]


async def run(
    settings: ScoresSettings,
    engine: Engine,
    board: Scoreboard,
    registry: CollectorRegistry,
    stop: asyncio.Event,
) -> None:
    options = settings.reconcile
    metrics = ReconcileMetrics(registry, agencies=options.agencies | settings.scores.agencies)
    store = ReconcileStore(engine)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(_gauges(store, board, metrics, options.gauges_refresh_seconds, stop))
        if options.schedule:
            tasks.create_task(_rounds(settings, engine, board, stop))


async def _gauges(
    store: ReconcileStore,
    board: Scoreboard,
    metrics: ReconcileMetrics,
    every: float,
    stop: asyncio.Event,
) -> None:
    while True:
        try:
            periods = [str(p) for p in periods_to_sweep(board)]
            metrics.publish(await asyncio.to_thread(store.latest_finished, periods))
        except Exception as exc:  # noqa: BLE001 - the gauges wait for the next refresh
            log.warning("reconcile gauges not refreshed", error=type(exc).__name__)
        if await wait_or_stop(stop, every):
            return


async def _rounds(
    settings: ScoresSettings, engine: Engine, board: Scoreboard, stop: asyncio.Event
) -> None:
    async with open_reconciler(settings, engine, board) as reconciler:
        while not stop.is_set():
            try:
                await one_round(reconciler, stop)
            except Stopped:
                return
            except Exception as exc:  # noqa: BLE001 - see the module docstring
                log.warning("reconcile round failed", error=type(exc).__name__)
            if await wait_or_stop(stop, settings.reconcile.interval_seconds):
                return


async def one_round(reconciler: Reconciler, stop: asyncio.Event | None = None) -> None:
    options = reconciler.settings.reconcile
    agencies = sorted(options.agencies) or await asyncio.to_thread(reconciler.board.agencies)
    for period in periods_to_sweep(reconciler.board):
        for agency in agencies:
            try:
                await reconciler.dossiers(agency, period, stop=stop)
            except SweepBusyError:
                log.info("sweep left to the process running it", agency=agency)
                continue
            if agency in options.departments:
                try:
                    await reconciler.scores(agency, period)
                except ReconcileError as exc:
                    log.warning("score check failed", agency=agency, error=type(exc).__name__)
