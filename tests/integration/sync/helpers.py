"""Bounded waiting for the integration tests: poll a condition, never sleep blindly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.05
) -> None:
    """Return once `check()` is true; raise `TimeoutError` after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(interval)
