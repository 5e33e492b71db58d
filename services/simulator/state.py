"""What the simulated portal and NDXP hold: dossiers, steps, calls, regressions and orphans."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class PortalDossier:
    code: str
    madonvi: str
    header: dict[str, Any]
    status: int | None
    revision: int | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    updates: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "madonvi": self.madonvi,
            "status": self.status,
            "revision": self.revision,
            "header": self.header,
            "steps": self.steps,
            "updates": self.updates,
        }


@dataclass(slots=True)
class Call:
    seq: int
    at: float
    destination: str
    service: str
    http_status: int
    error_code: int | None
    dossiers: list[str]
    revisions: list[int | None]
    idempotency_key: str | None
    replayed: bool = False
    fault: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "destination": self.destination,
            "service": self.service,
            "http_status": self.http_status,
            "error_code": self.error_code,
            "dossiers": self.dossiers,
            "revisions": self.revisions,
            "idempotency_key": self.idempotency_key,
            "replayed": self.replayed,
            "fault": self.fault,
        }


@dataclass(slots=True)
class Regression:
    destination: str
    dossier: str
    had_revision: int
    received_revision: int
    at: float

    def view(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "dossier": self.dossier,
            "had_revision": self.had_revision,
            "received_revision": self.received_revision,
            "at": self.at,
        }


@dataclass(slots=True)
class Orphan:
    """A processing step for a dossier the portal does not hold, refused."""

    dossier: str
    revision: int | None
    status: object
    at: float

    def view(self) -> dict[str, Any]:
        return {
            "dossier": self.dossier,
            "revision": self.revision,
            "status": self.status,
            "at": self.at,
        }


@dataclass(slots=True)
class SimulatorState:
    max_calls: int = 200_000
    portal: dict[str, PortalDossier] = field(default_factory=dict)
    ndxp: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: deque[Call] = field(default_factory=deque)
    regressions: list[Regression] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    """Dossiers lost to `Faults.lose_share` and not held again since."""
    stale: set[str] = field(default_factory=set)
    """Dossiers a change was dropped for (`Faults.stale_share`) and not updated since."""
    late_steps: int = 0
    """Steps older than the dossier's latest revision, kept as history (the status stays)."""
    idempotent: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    logins: int = 0
    tokens_issued: int = 0
    _seq: int = 0

    def record_call(self, call: Call) -> None:
        self.calls.append(call)
        if len(self.calls) > self.max_calls:
            self.calls.popleft()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def check_revision(
        self, destination: str, dossier: str, had: int | None, received: int | None
    ) -> None:
        if had is not None and received is not None and received < had:
            self.regressions.append(Regression(destination, dossier, had, received, time.time()))
