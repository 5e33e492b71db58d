"""An httpx transport that gives each concurrent request a connection pool of its own (a lane).

httpcore's pool walks every connection on each request and each response close, polls every
idle socket and counts idle connections quadratically; at 32 connections that bookkeeping cost
more CPU than the rest of the request and capped a worker near 600 requests/s. A lane is a pool of
one connection, so its bookkeeping is constant. Free lanes are reused last in, first out: a quiet
worker keeps using the same few warm connections and lets the others expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it (httpx does once the body is read) frees the lane."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def single_connection(retries: int) -> Callable[[], httpx.AsyncBaseTransport]:
    """Lanes of one keep-alive connection each, sharing one TLS context."""
    # Built once: each transport would otherwise load the CA bundle again (~20 ms each).
    context = httpx.create_ssl_context()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    def lane() -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(verify=context, retries=retries, limits=limits)

    return lane


class LaneTransport(httpx.AsyncBaseTransport):
    """At most `lanes` requests at once, each on a lane of its own, created when first needed."""

    def __init__(
        self, lanes: int, *, new_lane: Callable[[], httpx.AsyncBaseTransport] | None = None
    ) -> None:
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        self._new_lane = new_lane or single_connection(retries=0)
        self._slots = asyncio.Semaphore(lanes)
        self._free: list[httpx.AsyncBaseTransport] = []
        self._all: list[httpx.AsyncBaseTransport] = []

    @property
    def opened(self) -> int:
        """Lanes created so far."""
        return len(self._all)

    def _take(self) -> httpx.AsyncBaseTransport:
        if self._free:
            return self._free.pop()
        lane = self._new_lane()
        self._all.append(lane)
        return lane

    def _give_back(self, lane: httpx.AsyncBaseTransport) -> None:
        self._free.append(lane)
        self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        lane = self._take()
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            self._give_back(lane)
            raise
        if response.is_closed:  # answered in full already (in-memory lanes): nothing to hold
            self._give_back(lane)
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 - async transport
        response.stream = _ReleasingStream(response.stream, lambda: self._give_back(lane))
        return response

    async def aclose(self) -> None:
        for lane in self._all:
            await lane.aclose()
