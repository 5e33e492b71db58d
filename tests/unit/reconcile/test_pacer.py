"""The pacer on the event loop's own clock: evenly spaced, never more than the rate in any
window, no drift after a late caller."""

from __future__ import annotations

import asyncio

from services.reconcile.lookup import MARGIN, Pacer


async def _starts(pacer: Pacer, count: int, *, concurrency: int) -> list[float]:
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await pacer.wait()
            starts.append(loop.time())

    await asyncio.gather(*(one() for _ in range(count)))
    return sorted(starts)


async def test_never_more_than_the_rate_in_any_second() -> None:
    rate, count = 50.0, 80
    starts = await _starts(Pacer(rate), count, concurrency=8)
    for i, first in enumerate(starts):
        assert sum(1 for t in starts[i:] if t < first + 1.0) <= rate
    elapsed = starts[-1] - starts[0]
    assert (count - 1) * MARGIN / rate * 0.95 <= elapsed <= (count - 1) * MARGIN / rate * 1.1


async def test_an_idle_pacer_builds_no_credit() -> None:
    pacer = Pacer(20.0)
    await _starts(pacer, 5, concurrency=1)
    await asyncio.sleep(0.5)  # nobody asked for a while
    asked = asyncio.get_running_loop().time()
    starts = await _starts(pacer, 5, concurrency=5)
    # The first goes at once, the other four on the schedule after it, not in a burst.
    assert starts[-1] - asked >= 4 * MARGIN / 20.0 * 0.99
