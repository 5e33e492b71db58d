"""Process lifecycle: SIGTERM and SIGINT set one stop event that every task watches."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def install_stop_handlers(
    stop: asyncio.Event, *, on_interrupt: Callable[[], None] | None = None
) -> None:
    """SIGTERM sets `stop`; so does SIGINT, unless `on_interrupt` handles Ctrl-C its own way."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, on_interrupt or stop.set)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; return True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop where it exists: aiokafka and uvicorn spend less time in the loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop  # optional: absent on platforms uvloop does not build for

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - Linux images always have it
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def freeze_startup_objects() -> None:
    """Keep what exists at startup (modules, classes, clients) out of every later GC pass.

    A full collection walks every tracked object: with the startup's hundreds of thousands it
    stalled the sync's loop for about 50 ms, and cost the scores worker a quarter of its time
    (docs/performance.md). Collected first so that no garbage is frozen with it; in a process
    hosting several services (`govsync run`) their startup objects are frozen too.
    """
    gc.collect()
    gc.freeze()
