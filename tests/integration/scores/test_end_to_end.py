"""End to end on the real broker: source events through `ingest`, `sync --target portal` to the
simulated portal, and `scores`; November's figures equal a computation of the test's own from
the events it sent (and, for 1.4, from what the simulated portal holds), on SQLite and
PostgreSQL.

It relies on every `DossierRecord` carrying its facts (issue 12's ingest side).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from services.common.settings import KafkaSettings
from services.scores.crosswalk import Crosswalk
from services.scores.database import make_engine, migrate
from services.scores.main import run as run_scores
from services.scores.scoreboard import Scoreboard
from services.scores.settings import ScoresOptions, ScoresSettings
from services.scores.store import ScoreStore
from services.simulator.server import running_simulator
from services.simulator.simulator import PORTAL, Simulator
from services.sync.main import run as run_sync
from services.sync.settings import DeliverySettings, PortalSettings, SyncSettings, Target
from tests.support.faults import destination_revisions
from tests.support.ingest import ingest_settings, running_ingest
from tests.support.kafka import Sent, create_topics, produce

VN = timezone(timedelta(hours=7))
AGENCY = "000.00.10.H29"
DOSSIERS = 40
pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@dataclass(frozen=True, slots=True)
class Planned:
    """One dossier of the test, as its events describe it."""

    code: str
    received: datetime
    due: datetime
    ended: datetime | None
    online: bool
    digitised: bool
    vneid: bool


def plan() -> list[Planned]:
    out = []
    for n in range(DOSSIERS):
        received = datetime(2026, 11, 1 + n % 25, 9, tzinfo=VN)
        due = received + timedelta(days=5)
        ended = None if n % 4 == 0 else received + timedelta(days=2 + n % 6)  # some late
        out.append(
            Planned(f"H29.E2E-{n:04d}", received, due, ended, n % 3 != 0, n % 2 == 0, n % 5 == 0)
        )
    return out


def events(dossier: Planned) -> list[bytes]:
    def event(change: int, status: int, at: datetime, **extra: object) -> bytes:
        item = {
            "MaHoSo": dossier.code,
            "MaTTHC": "1.001234",
            "TrangThaiHoSo": status,
            "KenhThucHien": 2 if dossier.online else 1,
            "NgayTiepNhan": dossier.received.isoformat(),
            "NgayHenTra": dossier.due.isoformat(),
            "HoSoCoThanhPhanSoHoa": int(dossier.digitised),
            "TaiKhoanDuocXacThucVoiVNeID": int(dossier.vneid),
            **extra,
        }
        return json.dumps(
            {
                "specversion": "1.0",
                "id": f"{dossier.code}-{change}",
                "source": "urn:vn:gov:dvc:test",
                "type": "vn.gov.dvc.dossier.v1",
                "time": at.isoformat(),
                "agency": AGENCY,
                "data": item,
            }
        ).encode()

    out = [event(1, 2, dossier.received)]
    if dossier.ended is not None:
        out.append(event(2, 9, dossier.ended, NgayKetThucXuLy=dossier.ended.isoformat()))
    else:
        out.append(event(2, 4, dossier.received + timedelta(hours=1)))
    return out


def expected(planned: list[Planned], held: set[str]) -> dict[str, tuple[int, int]]:
    """November's figures, worked out from the plan (all received in November, judged after
    it ended: open ones at 1 Dec 00:00)."""
    end_of_november = datetime(2026, 12, 1, tzinfo=VN)
    on_time = sum(
        (p.ended <= p.due) if p.ended is not None else (end_of_november <= p.due) for p in planned
    )
    return {
        "1.4": (len(held), len(planned)),
        "2.1": (on_time, len(planned)),
        "3.3": (sum(p.online for p in planned), len(planned)),
        "4.3": (sum(p.digitised for p in planned), len(planned)),
        "4.5b": (sum(p.vneid for p in planned), len(planned)),
    }


@contextlib.asynccontextmanager
async def service(coroutine: object) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    assert callable(coroutine)
    task = asyncio.create_task(coroutine(stop))
    try:
        yield task
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await task


async def test_ingest_sync_scores(
    kafka_settings: KafkaSettings, unique: str, database_url: str
) -> None:
    planned = plan()
    ingest = ingest_settings(kafka_settings, unique)
    acked_template = f"e2e.sync.{{target}}.acked.{unique}"
    await create_topics(kafka_settings, ingest.topic_dossier, ingest.topic_state)
    engine = make_engine(database_url)
    migrate(engine)
    board = Scoreboard(ScoreStore(engine), Crosswalk())
    async with running_simulator(Simulator(seed=1)) as simulated:
        sync = SyncSettings(
            kafka=kafka_settings,
            portal=PortalSettings(url=simulated.portal_url, password=SecretStr("secret"),
                                  dstcode="DVCQG", madonvi=AGENCY, linger_ms=10),
            delivery=DeliverySettings(commit_interval_seconds=0.2),
            topic_dossier_normalized=ingest.topic_dossier_normalized,
            topic_dlq=ingest.topic_dlq,
            acked_topic_template=acked_template,
            group_prefix=f"e2e-sync-{unique}-",
            http_port=0,
            allow_http=True,  # the simulator speaks plain http on loopback
        )  # fmt: skip
        scores = ScoresSettings(
            kafka=kafka_settings,
            topic_dossier_normalized=ingest.topic_dossier_normalized,
            topic_edocument_normalized=ingest.topic_edocument_normalized,
            topic_dlq=ingest.topic_dlq,
            acked_topic_template=acked_template,
            consumer_group=f"e2e-scores-{unique}",
            scores=ScoresOptions(database_url=database_url, metrics_refresh_seconds=1),
        )
        async with (
            running_ingest(ingest),
            service(lambda stop: run_sync(sync, Target.PORTAL, stop, serve_http=False)) as syncing,
            service(lambda stop: run_scores(scores, stop, serve_http=False)) as scoring,
        ):
            records = [Sent(e, p.code.encode()) for p in planned for e in events(p)]
            await produce(kafka_settings, ingest.topic_dossier, records)
            period = board.parse_period("2026-11")

            def figures() -> dict[str, tuple[int, int]]:
                card = board.scorecard(AGENCY, period)
                return {i.id: (i.numerator, i.denominator) for i in card.indicators}

            held: set[str] = set()
            want: dict[str, tuple[int, int]] = {}
            got: dict[str, tuple[int, int]] = {}
            try:
                # Generous (CI shares two cores), and inside pytest's own bound, so that a miss
                # says what was missing.
                async with asyncio.timeout(240):
                    while True:
                        held = {
                            code
                            for code, (revision, _) in destination_revisions(
                                simulated.simulator, PORTAL
                            ).items()
                            if revision
                        }
                        want = expected(planned, held)
                        got = await asyncio.to_thread(figures)
                        if len(held) == DOSSIERS and all(got[k] == v for k, v in want.items()):
                            break
                        for name, task in (("sync", syncing), ("scores", scoring)):
                            if task.done():  # a service that stopped would leave this to time out
                                pytest.fail(f"{name} stopped: {task.exception()!r}")
                        await asyncio.sleep(0.5)
            except TimeoutError:
                missing = sorted(p.code for p in planned if p.code not in held)
                pytest.fail(f"portal holds {len(held)} (missing {missing}); {got=} {want=}")
            card = await asyncio.to_thread(board.scorecard, AGENCY, period)
            assert card.final
    engine.dispose()
