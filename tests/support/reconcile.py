"""What the reconciliation tests share: dossiers planned by the test, put in the scores
database as their facts and on the simulated portal as its own items (each side written by the
test's own code), the portal's lookups read back from the simulator's calls, and settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from pydantic import SecretStr

from schemas.dossier import DossierStatus
from schemas.facts import DossierFacts
from services.reconcile.options import ReconcileOptions
from services.scores.changes import AckChange, Batch, DossierChange
from services.scores.settings import ScoresOptions, ScoresSettings
from services.scores.store import ScoreStore
from services.simulator.simulator import Simulator
from services.sync.settings import PortalSettings

VN = timezone(timedelta(hours=7))
AGENCY = "000.00.10.H29"
PERIOD = "2026-11"
PORTAL_DATE = "%Y%m%d%H%M%S"


@dataclass(frozen=True, slots=True)
class Planned:
    code: str
    status: int
    received: datetime
    due: datetime
    finished: datetime | None = None

    def facts(self) -> DossierFacts:
        done = self.finished is not None
        return DossierFacts(
            agency=AGENCY,
            status=DossierStatus(self.status),
            received_at=self.received,
            due_at=self.due,
            finished_at=self.finished,
            ended_at=self.finished,
            end_status=DossierStatus.FINISHED if done else None,
        )

    def item(self) -> dict[str, Any]:
        """The DongBoHoSoMC item the portal would hold for it."""
        item: dict[str, Any] = {
            "MaHoSo": self.code,
            "TrangThaiHoSo": self.status,
            "NgayTiepNhan": self.received.strftime(PORTAL_DATE),
            "NgayHenTra": self.due.strftime(PORTAL_DATE),
        }
        if self.finished is not None:
            item["NgayKetThucXuLy"] = self.finished.strftime(PORTAL_DATE)
        return item


def plan(count: int, *, prefix: str = "H29.RC") -> list[Planned]:
    out = []
    for n in range(count):
        received = datetime(2026, 11, 1 + n % 28, 8 + n % 9, tzinfo=VN)
        finished = received + timedelta(days=1 + n % 4) if n % 3 else None
        out.append(
            Planned(
                f"{prefix}-{n:06d}",
                9 if finished else 4,
                received,
                received + timedelta(days=3),
                finished,
            )
        )
    return out


def seed(store: ScoreStore, planned: Iterable[Planned], *, chunk: int = 5000) -> None:
    """govsync's side: each dossier's facts at revision 1, acknowledged by the portal."""
    rows = list(planned)
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        store.apply(
            Batch(
                dossiers=[DossierChange(p.code, 1, p.facts()) for p in part],
                acks=[AckChange(p.code, 1, True) for p in part],
            )
        )


async def put_on_portal(base_url: str, planned: Sequence[Planned], *, batch: int = 200) -> None:
    """The portal's side, through its own protocol (login, DongBoHoSoMC)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        login = await client.post(
            "/portal/api/auth/login",
            json={"username": "govsync", "password": "secret"},
            headers={"dstcode": "DVCQG"},
        )
        session = login.json()["session"]
        for i in range(0, len(planned), batch):
            answer = await client.post(
                "/portal/api/integration",
                json={
                    "session": session,
                    "madonvi": AGENCY,
                    "service": "DongBoHoSoMC",
                    "isUpdating": "False",
                    "data": [p.item() for p in planned[i : i + batch]],
                },
            )
            assert answer.json()["error_code"] == 0, answer.text


def lookups(sim: Simulator) -> list[tuple[float, str]]:
    """Every TraCuuHoSo call the simulator received (faulted ones too): (time, code or '')."""
    return [
        (c.at, c.dossiers[0] if c.dossiers else "")
        for c in sim.state.calls
        if c.service == "TraCuuHoSo"
    ]


def settings(portal_url: str, database_url: str, **options: Any) -> ScoresSettings:
    options.setdefault("lookups_per_second", 200.0)
    options.setdefault("recheck_delay_seconds", 0.5)
    return ScoresSettings(
        scores=ScoresOptions(database_url=database_url),
        portal=PortalSettings(
            url=portal_url, password=SecretStr("secret"), dstcode="DVCQG", madonvi=AGENCY
        ),
        reconcile=ReconcileOptions(**options),
    )


def moved(p: Planned, **changes: Any) -> Planned:
    return replace(p, **changes)
