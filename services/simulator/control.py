"""The simulator's own routes under `/_sim`: what each destination holds, the calls, and faults.

Tests, benchmarks and `govsync run` read the portal's and NDXP's dossiers, the calls, the
revisions that went backwards and the orphan steps here, change the faults while the simulator
runs, expire sessions and tokens, and reset everything.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.simulator.faults import Faults
from services.simulator.routing import simulator_of
from services.simulator.state import SimulatorState

router = APIRouter(prefix="/_sim")


def _state(request: Request) -> SimulatorState:
    return simulator_of(request).state  # `reset` replaces the state object


def _found(view: dict[str, Any] | None) -> JSONResponse:
    if view is None:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return JSONResponse(view)


# --- inspection ----------------------------------------------------------------------------


@router.get("/portal/dossiers")
async def portal_dossiers(request: Request) -> dict[str, Any]:
    return {code: d.view() for code, d in _state(request).portal.items()}


@router.get("/portal/dossiers/{code}")
async def portal_dossier(request: Request, code: str) -> JSONResponse:
    found = _state(request).portal.get(code)
    return _found(None if found is None else found.view())


@router.get("/portal/orphans")
async def portal_orphans(request: Request) -> list[dict[str, Any]]:
    """Steps refused because the portal did not hold their dossier."""
    return [o.view() for o in _state(request).orphans]


@router.get("/portal/departments")
async def portal_departments(request: Request) -> dict[str, Any]:
    """The reporting API's units: the root, and the department of every agency code held."""
    sim = simulator_of(request)
    held = {d.madonvi for d in sim.state.portal.values()}
    children = sim.departments.children(held)
    return {
        "root": sim.departments.root.view(),
        "children": {agency: d.view() for agency, d in sorted(children.items())},
    }


@router.get("/portal/damaged")
async def portal_damaged(request: Request) -> dict[str, list[str]]:
    """The dossiers the portal lost (`lose_share`) or keeps at an older state (`stale_share`)."""
    state = _state(request)
    return {"lost": sorted(state.lost), "stale": sorted(state.stale)}


@router.get("/ndxp/dossiers")
async def ndxp_dossiers(request: Request) -> dict[str, Any]:
    return dict(_state(request).ndxp)


@router.get("/ndxp/dossiers/{code}")
async def ndxp_dossier(request: Request, code: str) -> JSONResponse:
    return _found(_state(request).ndxp.get(code))


@router.get("/calls")
async def calls(
    request: Request, destination: str | None = None, since: int = 0
) -> list[dict[str, Any]]:
    return [
        c.view()
        for c in _state(request).calls
        if c.seq > since and (destination is None or c.destination == destination)
    ]


@router.get("/revisions")
async def revisions(request: Request) -> dict[str, dict[str, int | None]]:
    """The latest revision of every dossier at each destination (cheap to poll)."""
    state = _state(request)
    return {
        "portal": {code: d.revision for code, d in state.portal.items()},
        "ndxp": {code: body.get("revision") for code, body in state.ndxp.items()},
    }


@router.get("/regressions")
async def regressions(request: Request) -> list[dict[str, Any]]:
    return [r.view() for r in _state(request).regressions]


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {
        "portal_dossiers": len(state.portal),
        "ndxp_dossiers": len(state.ndxp),
        "calls": len(state.calls),
        "regressions": len(state.regressions),
        "orphans": len(state.orphans),
        "late_steps": state.late_steps,
        "logins": state.logins,
        "tokens_issued": state.tokens_issued,
    }


# --- control -------------------------------------------------------------------------------


@router.get("/faults")
async def get_faults(request: Request) -> Faults:
    return simulator_of(request).faults


@router.post("/faults")
async def set_faults(request: Request) -> Faults:
    sim = simulator_of(request)
    changes = await request.json()
    sim.faults = sim.faults.model_copy(
        update=Faults.model_validate(sim.faults.model_dump() | changes).model_dump()
    )
    if "outage_seconds" in changes:
        sim.start_outage(sim.faults.outage_seconds)
    sim.faults_changed()
    return sim.faults


@router.post("/sessions/expire")
async def expire_sessions(request: Request) -> dict[str, str]:
    simulator_of(request).expire_sessions()
    return {"status": "ok"}


@router.post("/tokens/expire")
async def expire_tokens(request: Request) -> dict[str, str]:
    simulator_of(request).expire_tokens()
    return {"status": "ok"}


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    simulator_of(request).reset()
    return {"status": "ok"}
