"""The simulator's HTTP app: the portal under `/portal`, NDXP under `/ndxp`, control under `/_sim`.

One router per destination: `portal.py` (login, integration, share), `reporting.py` (the
portal's evaluation endpoints), `ndxp.py` (token, status) and `control.py` (inspection, faults,
reset). What they answer comes from the `Simulator`.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.simulator import control, ndxp, portal, reporting
from services.simulator.simulator import Simulator


def create_app(sim: Simulator) -> FastAPI:
    """The HTTP face of `sim`; everything it answers comes from `sim`'s state and faults."""
    app = FastAPI(title="govsync simulator", version="1")
    app.state.simulator = sim  # read by `routing.simulator_of`
    app.include_router(portal.router)
    app.include_router(reporting.router)
    app.include_router(ndxp.router)
    app.include_router(control.router)
    return app
