"""The simulated portal's protocol: `POST /portal/api/auth/login`, `/integration` and `/share`.

Every call carries the session envelope; what each one decides is `Simulator.portal_*`. Revisions
are not part of the portal's items, so the simulator learns them from the `Govsync-Revisions`
header (one per item, in order) to notice a dossier going backwards. A call repeated with the
`Idempotency-Key` of one that succeeded is answered with success and not applied again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.simulator.routing import fault_response, simulator_of
from services.simulator.simulator import PORTAL, Simulator

REVISIONS_HEADER = "Govsync-Revisions"

router = APIRouter(prefix="/portal/api")


@router.post("/auth/login")
async def portal_login(request: Request) -> JSONResponse:
    dstcode = request.headers.get("dstcode")
    return await _answer(request, "login", lambda sim, body: sim.portal_login(body, dstcode))


@router.post("/integration")
async def portal_integration(request: Request) -> JSONResponse:
    sim = simulator_of(request)
    envelope = await request.json()
    service = str(envelope.get("service")) if isinstance(envelope, dict) else "?"
    if (failed := await fault_response(sim, PORTAL, service)) is not None:
        return failed
    key = request.headers.get("Idempotency-Key")
    revisions = _revisions(request)
    dossiers = _dossiers(envelope.get("data") if isinstance(envelope, dict) else None)
    replayed = sim.replayed_status(key) is not None
    if replayed:
        answer = sim.portal_replayed(dossiers, revisions)
    else:
        answer = sim.portal_integration(
            envelope if isinstance(envelope, dict) else {}, revisions, key
        )
    sim.record(
        PORTAL, service, 200, answer["error_code"], dossiers, revisions, key, replayed=replayed
    )
    return JSONResponse(answer)


@router.post("/share")
async def portal_share(request: Request) -> JSONResponse:
    # The looked-up code is recorded with the call: a reconciliation test counts lookups per
    # dossier and their times from `/_sim/calls`.
    return await _answer(request, "TraCuuHoSo", Simulator.portal_share, looked_up=_looked_up)


async def _answer(
    request: Request,
    service: str,
    handle: Callable[[Simulator, dict[str, Any]], dict[str, Any]],
    *,
    looked_up: Callable[[dict[str, Any]], list[str]] | None = None,
) -> JSONResponse:
    """A call that changes no dossier: faults first, then `handle` on the body, recorded (at the
    time it arrived: the reconciliation tests count lookups per second)."""
    arrived = time.time()
    sim = simulator_of(request)
    if (failed := await fault_response(sim, PORTAL, service)) is not None:
        return failed
    body = await request.json()
    envelope = body if isinstance(body, dict) else {}
    answer = handle(sim, envelope)
    dossiers = looked_up(envelope) if looked_up is not None else None
    sim.record(PORTAL, service, 200, answer["error_code"], dossiers, at=arrived)
    return JSONResponse(answer)


def _looked_up(envelope: dict[str, Any]) -> list[str]:
    code = envelope.get("mahoso")
    if code is None and isinstance(envelope.get("data"), dict):
        code = envelope["data"].get("mahoso")
    return [] if code is None else [str(code)]


def _revisions(request: Request) -> list[int | None]:
    raw = request.headers.get(REVISIONS_HEADER, "")
    values: list[int | None] = []
    for part in raw.split(","):
        part = part.strip()
        values.append(int(part) if part.isdigit() else None)
    return values if raw else []


def _dossiers(data: object) -> list[str]:
    if not isinstance(data, list):
        return []
    return [str(item.get("MaHoSo")) for item in data if isinstance(item, dict)]
