"""The lane transport: a bounded number of requests at once, a lane freed however a request ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from services.sync.lanes import LaneTransport

Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]


def _lanes(count: int, handler: Handler) -> tuple[LaneTransport, httpx.AsyncClient]:
    transport = LaneTransport(count, new_lane=lambda: httpx.MockTransport(handler))
    return transport, httpx.AsyncClient(transport=transport, base_url="http://destination")


async def test_never_more_requests_at_once_than_lanes() -> None:
    running = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return httpx.Response(200, json={"ok": True})

    transport, client = _lanes(3, handler)
    async with client:
        answers = await asyncio.gather(*(client.post("/status") for _ in range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    assert most == 3
    assert transport.opened == 3


async def test_sequential_requests_reuse_one_lane() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    transport, client = _lanes(8, handler)
    async with client:
        for _ in range(10):
            await client.post("/status")
    assert transport.opened == 1


class _Body(httpx.AsyncByteStream):
    """A body still to be read, as a network transport answers."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"body"


async def test_a_lane_is_held_until_the_body_is_closed() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Body())

    _, client = _lanes(1, handler)
    async with client:
        async with client.stream("GET", "/first") as first:
            second = asyncio.create_task(client.get("/second"))
            await asyncio.sleep(0.05)
            assert not second.done()  # the only lane is still reading the first body
            await first.aread()
        assert (await asyncio.wait_for(second, 1)).status_code == 200


async def test_a_failed_request_frees_its_lane() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    _, client = _lanes(1, handler)
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.post("/status")
        answer = await asyncio.wait_for(client.post("/status"), 1)
    assert answer.status_code == 200


async def test_a_cancelled_wait_for_a_lane_takes_none() -> None:
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200)

    _, client = _lanes(1, handler)
    async with client:
        busy = asyncio.create_task(client.post("/busy"))
        await asyncio.sleep(0.01)
        waiting = asyncio.create_task(client.post("/waiting"))
        await asyncio.sleep(0.01)
        waiting.cancel()
        release.set()
        await busy
        answer = await asyncio.wait_for(client.post("/after"), 1)
    assert answer.status_code == 200


def test_lanes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LaneTransport(0)
