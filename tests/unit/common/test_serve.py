"""A service's HTTP server that cannot bind fails as an ordinary error, on a loop that goes on."""

from __future__ import annotations

import asyncio
import socket

import pytest
from prometheus_client import CollectorRegistry

from services.common.httpapp import create_base_app, serve


async def _ready() -> dict[str, bool]:
    return {"ok": True}


async def test_a_port_in_use_is_a_runtime_error_and_other_tasks_carry_on() -> None:
    app = create_base_app(title="t", version="0", registry=CollectorRegistry(), readiness=_ready)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        neighbour = asyncio.create_task(asyncio.sleep(0.2, result="still here"))
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port}"):
            await serve(app, host="127.0.0.1", port=port, stop=asyncio.Event())
        assert await neighbour == "still here"
