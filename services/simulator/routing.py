"""What the three routers share: the `Simulator` behind a request and a fault as HTTP answer."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from services.simulator.simulator import Simulator


def simulator_of(request: Request) -> Simulator:
    """The simulator `create_app` serves (kept in the app's state)."""
    sim: Simulator = request.app.state.simulator
    return sim


async def fault_response(sim: Simulator, destination: str, service: str) -> JSONResponse | None:
    """The injected failure to answer instead of handling the call, if any (recorded by `sim`)."""
    answer = await sim.fault(destination, service)
    if answer is None:
        return None
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
