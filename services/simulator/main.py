"""`govsync simulate`: serve the simulated portal and NDXP until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import os

from services.common.httpapp import serve
from services.common.lifecycle import freeze_startup_objects, install_stop_handlers, run_async
from services.common.logging import configure_logging, get_logger
from services.simulator.app import create_app
from services.simulator.simulator import Simulator

log = get_logger(__name__)


async def _run(host: str, port: int) -> None:
    stop = asyncio.Event()
    install_stop_handlers(stop)
    sim = Simulator(
        password=os.environ.get("GOVSYNC_SIMULATOR_PASSWORD", "secret"),
        client_secret=os.environ.get("GOVSYNC_SIMULATOR_CLIENT_SECRET", "secret"),
    )
    app = create_app(sim)
    freeze_startup_objects()  # full GC passes over the imports would stall every answer
    log.info("simulator listening", host=host, port=port)
    await serve(app, host=host, port=port, stop=stop)


def main(*, host: str = "127.0.0.1", port: int = 8090) -> int:
    configure_logging(os.environ.get("GOVSYNC_LOG_LEVEL", "INFO"), service="govsync-simulator")
    run_async(_run(host, port))
    return 0
