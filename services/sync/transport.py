"""HTTP plumbing both destination clients share: the client, error translation, `Retry-After`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services.sync.errors import DestinationUnavailableError, RateLimitedError
from services.sync.lanes import LaneTransport, single_connection
from services.sync.metrics import SyncMetrics

USER_AGENT = "govsync-sync/0.1"
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500


def make_client(base_url: str, *, timeout: float, max_connections: int) -> httpx.AsyncClient:
    """One client per destination: at most `max_connections` requests at once, each on a lane of
    its own (see `lanes.py`), explicit timeouts; the transport retries connects only."""
    # httpx ignores `limits=` when a transport is given: the lanes are the limit.
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        transport=LaneTransport(max_connections, new_lane=single_connection(retries=2)),
    )


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def post(
    client: httpx.AsyncClient,
    path: str,
    *,
    metrics: SyncMetrics,
    service: str,
    **kwargs: Any,
) -> httpx.Response:
    """POST, turning network failures, 429 and 5xx into `TransientError`s; other answers return."""
    started = time.monotonic()
    try:
        response = await client.post(path, **kwargs)
    except httpx.TimeoutException as exc:
        metrics.request(service, "unavailable", time.monotonic() - started)
        raise DestinationUnavailableError(f"{service}: timed out") from exc
    except httpx.TransportError as exc:
        metrics.request(service, "unavailable", time.monotonic() - started)
        raise DestinationUnavailableError(f"{service}: {type(exc).__name__}") from exc
    elapsed = time.monotonic() - started
    if response.status_code == TOO_MANY_REQUESTS:
        metrics.request(service, "rate_limited", elapsed)
        raise RateLimitedError(
            f"{service}: 429", retry_after=retry_after(response.headers.get("Retry-After"))
        )
    if response.status_code >= SERVER_ERROR:
        metrics.request(service, "unavailable", elapsed)
        raise DestinationUnavailableError(
            f"{service}: HTTP {response.status_code}",
            retry_after=retry_after(response.headers.get("Retry-After")),
        )
    return response


def json_object(response: httpx.Response, service: str) -> dict[str, Any]:
    """The answer's JSON object; an unreadable answer is the destination's fault, so transient."""
    try:
        body = response.json()
    except ValueError as exc:
        raise DestinationUnavailableError(f"{service}: answer is not JSON") from exc
    if not isinstance(body, dict):
        raise DestinationUnavailableError(f"{service}: answer is not a JSON object")
    return body
