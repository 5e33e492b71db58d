"""The simulated NDXP's protocol: `POST /ndxp/token` (client credentials) and a dossier's status.

`POST /ndxp/dossier/v1/status` needs a bearer token; what each call decides is `Simulator.ndxp_*`.
A status repeated with the `Idempotency-Key` of one that succeeded, under a valid token, is
answered as the first was and not applied again.
"""

from __future__ import annotations

import urllib.parse

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.simulator.routing import fault_response, simulator_of
from services.simulator.simulator import NDXP

router = APIRouter(prefix="/ndxp")


@router.post("/token")
async def ndxp_token(request: Request) -> JSONResponse:
    sim = simulator_of(request)
    if (failed := await fault_response(sim, NDXP, "token")) is not None:
        return failed
    # application/x-www-form-urlencoded, parsed here to need no multipart library.
    parsed = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
    fields = {k: v[0] for k, v in parsed.items() if v}
    status, body = sim.ndxp_token(fields)
    sim.record(NDXP, "token", status, body.get("errorCode"))
    return JSONResponse(body, status_code=status)


@router.post("/dossier/v1/status")
async def ndxp_status(request: Request) -> JSONResponse:
    sim = simulator_of(request)
    if (failed := await fault_response(sim, NDXP, "status")) is not None:
        return failed
    body = await request.json()
    key = request.headers.get("Idempotency-Key")
    authorization = request.headers.get("Authorization")
    code = str(body.get("dossier_code")) if isinstance(body, dict) else "?"
    revision = body.get("revision") if isinstance(body, dict) else None
    replayed = sim.replayed_status(key)
    if replayed is not None and sim.token_ok(authorization):
        status, answer = replayed, sim.ndxp_replayed(code, revision)
    else:
        replayed = None
        status, answer = sim.ndxp_status(authorization, body)
        if status == 200:
            sim.remember(key, status, answer)
    sim.record(
        NDXP,
        "status",
        status,
        answer.get("errorCode"),
        [code],
        [revision if isinstance(revision, int) else None],
        key,
        replayed=replayed is not None,
    )
    return JSONResponse(answer, status_code=status)
