"""Run the simulator in-process with uvicorn on a loopback port (tests, bench, `govsync run`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from services.simulator.app import create_app
from services.simulator.simulator import Simulator


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    simulator: Simulator
    base_url: str

    @property
    def portal_url(self) -> str:
        """Value for `GOVSYNC_PORTAL_URL` (the default paths of `PortalSettings` follow it)."""
        return f"{self.base_url}/portal"

    @property
    def ndxp_url(self) -> str:
        """Value for `GOVSYNC_NDXP_URL`."""
        return f"{self.base_url}/ndxp"


@contextlib.asynccontextmanager
async def running_simulator(
    simulator: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve `simulator` (a fresh one by default) until the block ends; port 0 picks a free one."""
    sim = simulator or Simulator()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    actual = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(sim),
        log_config=None,
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    # Signals belong to the host process (pytest, `govsync run`), not to this embedded server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("simulator stopped before it started")
                await asyncio.sleep(0.01)
        yield RunningSimulator(sim, f"http://{host}:{actual}")
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await task
        sock.close()
