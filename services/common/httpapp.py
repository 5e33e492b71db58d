"""The small HTTP app every service serves: `/healthz`, `/readyz` and `/metrics`, run by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator, Sequence

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


async def read_bounded(
    request: Request, limit: int, too_large: Callable[[], Exception]
) -> bytearray:
    """The request body, refused (`too_large()` raised) from its Content-Length or as soon as
    more than `limit` bytes have streamed in, so an oversized body is never held whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large()
    return body  # no copy: orjson reads a bytearray as it is


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors a service should export."""
    # `_created` series double the output and no dashboard reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def create_base_app(
    *, title: str, version: str, registry: CollectorRegistry, readiness: ReadinessCheck
) -> FastAPI:
    """A FastAPI app with the operational endpoints; services add their own routes to it."""
    app = FastAPI(title=title, version=version)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Every dependency is ready",
        responses={503: {"description": "A dependency is not ready"}},
    )
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    # An explicit route: a mounted ASGI app would answer `/metrics` with a redirect.
    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class _Server(uvicorn.Server):
    """Leaves signals to the process: its handlers set the stop event every task watches."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(server: uvicorn.Server, address: str) -> None:
    # uvicorn calls sys.exit when it cannot bind; a SystemExit raised in a task leaves the event
    # loop at once and strands every other task on it, so it becomes an ordinary error here.
    try:
        await server.serve()
    except SystemExit:
        raise RuntimeError(f"HTTP server could not start on {address}") from None


async def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    trusted_proxies: Sequence[str] = (),
) -> None:
    """Run uvicorn until `stop` is set; signals are ours, not uvicorn's.

    `X-Forwarded-For` is read only from `trusted_proxies`: uvicorn's own default trusts it from
    127.0.0.1, which lets anything beside the pod (a sidecar, a port-forward) name any address.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) or None,
    )
    server = _Server(config)
    task = asyncio.create_task(_serve(server, f"{host}:{port}"))
    stop_task = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            if not server.started:
                raise RuntimeError(f"HTTP server could not start on {host}:{port}")
            return
        server.should_exit = True
        await task
    finally:
        stop_task.cancel()
