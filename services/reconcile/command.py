"""`govsync reconcile dossiers|scores --agency CODE --period P`: one sweep or one score check,
with the scores service's settings (`GOVSYNC_SCORES_*`, `GOVSYNC_PORTAL_*`,
`GOVSYNC_RECONCILE_*`); prints the result as one JSON object. Exit status: 0 done, 1 failed,
2 bad arguments, 3 another sweep of the agency is running, 130 stopped (it continues from its
checkpoint next time)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime

from services.common.lifecycle import freeze_startup_objects, install_stop_handlers, run_async
from services.common.logging import configure_logging, get_logger
from services.reconcile.errors import ConfigurationError, SweepBusyError
from services.reconcile.runtime import open_reconciler
from services.reconcile.sweep import Stopped
from services.scores.database import migrate
from services.scores.main import engine_for, load_crosswalk
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard
from services.scores.settings import ScoresSettings
from services.scores.store import ScoreStore

log = get_logger(__name__)

BUSY = 3
STOPPED = 130


def _write(document: object) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def main(action: str, agency: str, period_text: str) -> int:
    settings = ScoresSettings(_secrets_dir=os.environ.get("GOVSYNC_SECRETS_DIR"))
    configure_logging(settings.log_level, service="govsync-reconcile")
    try:
        period = Period.parse(period_text)
    except ValueError as exc:
        sys.stderr.write(f"govsync reconcile: {exc}\n")
        return 2

    async def _main() -> int:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        engine = engine_for(settings)
        try:
            if settings.scores.migrate_on_start:
                await asyncio.to_thread(migrate, engine)
            board = Scoreboard(
                ScoreStore(engine), load_crosswalk(settings), lambda: datetime.now(UTC)
            )
            async with open_reconciler(settings, engine, board) as reconciler:
                # A full GC pass over the imports stalled every lookup for 100-120 ms every
                # five seconds: a sweep at 500/s lost 6% of its slots to them.
                freeze_startup_objects()
                if action == "dossiers":
                    sweep = await reconciler.dossiers(agency, period, stop=stop)
                    _write(asdict(sweep) | {"duration_seconds": sweep.duration_seconds})
                else:
                    checked = await reconciler.scores(agency, period)
                    _write(asdict(checked))
        finally:
            engine.dispose()
        return 0

    try:
        return run_async(_main())
    except SweepBusyError as exc:
        sys.stderr.write(f"govsync reconcile: {exc}\n")
        return BUSY
    except Stopped:
        return STOPPED
    except ConfigurationError as exc:
        sys.stderr.write(f"govsync reconcile: {exc}\n")
        return 2
    except Exception:
        log.exception("reconcile failed")
        return 1
