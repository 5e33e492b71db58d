"""The run's held ports: nothing else in the process can take one, its own server can."""

from __future__ import annotations

import asyncio
import socket
from contextlib import ExitStack

import httpx
from prometheus_client import CollectorRegistry

from services.common.httpapp import create_base_app, serve
from services.localrun.ports import hold_port


async def _ready() -> dict[str, bool]:
    return {"ok": True}


def test_a_held_port_refuses_other_binds_and_is_never_picked_again() -> None:
    with ExitStack() as stack:
        held = {hold_port(stack) for _ in range(5)}
        assert len(held) == 5
        for port in held:
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port))
                except OSError:
                    pass
                else:
                    raise AssertionError(f"port {port} was bound by another socket")
        picked = set()
        for _ in range(2000):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", 0))
                picked.add(probe.getsockname()[1])
        assert not held & picked
    # Closed: the ports are free again.
    for port in held:
        with socket.socket() as other:
            other.bind(("127.0.0.1", port))


async def test_the_service_serves_on_its_held_port() -> None:
    app = create_base_app(title="t", version="0", registry=CollectorRegistry(), readiness=_ready)
    stop = asyncio.Event()
    with ExitStack() as stack:
        port = hold_port(stack)
        server = asyncio.create_task(serve(app, host="127.0.0.1", port=port, stop=stop))
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            else:
                raise AssertionError("the server never answered")
        assert response.json() == {"status": "ok"}
        stop.set()
        await server
