"""Process lifecycle: SIGTERM and SIGINT set one stop event that every task watches."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; return True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop where it exists: aiokafka and uvicorn spend less time in the loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop  # optional: absent on platforms uvloop does not build for

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - Linux images always have it
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
