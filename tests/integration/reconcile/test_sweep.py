"""The per-dossier sweep against the real HTTP simulator and a real database: what it finds,
its rate, its pauses on portal errors, its checkpoint and its lease. The portal's side is put
there by the test through the portal's own protocol; which dossiers differ is the test's plan."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from services.reconcile.errors import SweepBusyError
from services.reconcile.runtime import open_reconciler
from services.reconcile.store import Resend
from services.reconcile.sweep import Stopped
from services.scores.crosswalk import Crosswalk
from services.scores.database import make_engine, migrate
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard
from services.scores.store import ScoreStore
from services.simulator.faults import Faults
from services.simulator.server import RunningSimulator, running_simulator
from services.simulator.simulator import Simulator
from tests.support.reconcile import (
    AGENCY,
    PERIOD,
    Planned,
    lookups,
    moved,
    plan,
    put_on_portal,
    seed,
    settings,
)

NOVEMBER = Period.parse(PERIOD)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def portal() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(Simulator(seed=3)) as running:
        yield running


def _board(engine: Engine) -> Scoreboard:
    return Scoreboard(ScoreStore(engine), Crosswalk(), lambda: NOW)


def _differing(planned: list[Planned]) -> tuple[list[Planned], set[str], set[str]]:
    """The portal's side: every 10th dossier missing, every 7th (not missing) at another status,
    every 11th (neither) with another due date."""
    portal, missing, different = [], set(), set()
    for n, p in enumerate(planned):
        if n % 10 == 0:
            missing.add(p.code)
            continue
        if n % 7 == 0:
            portal.append(moved(p, status=2))
            different.add(p.code)
        elif n % 11 == 0:
            portal.append(moved(p, due=p.due.replace(hour=(p.due.hour + 1) % 24)))
            different.add(p.code)
        else:
            portal.append(p)
    return portal, missing, different


async def test_a_sweep_finds_exactly_what_differs(
    engine: Engine, portal: RunningSimulator, database_url: str
) -> None:
    planned = plan(120)
    seed(ScoreStore(engine), planned)
    on_portal, missing, different = _differing(planned)
    await put_on_portal(portal.base_url, on_portal)
    config = settings(portal.portal_url, database_url, resend=False, batch_size=25)
    async with open_reconciler(config, engine, _board(engine)) as reconciler:
        sweep = await reconciler.dossiers(AGENCY, NOVEMBER)
    findings = {f.code: f for f in reconciler.store.findings(sweep.id)}
    assert {c for c, f in findings.items() if f.state == "missing"} == missing
    assert {c for c, f in findings.items() if f.state == "different"} == different
    assert (sweep.matched, sweep.missing, sweep.different) == (
        len(planned) - len(missing) - len(different),
        len(missing),
        len(different),
    )
    assert sweep.phase == "done"
    assert sweep.population == sweep.looked_up == len(planned)
    assert {f.resend for f in findings.values()} == {Resend.OFF}
    assert sweep.remaining == len(missing) + len(different)
    assert findings[planned[7].code].differences == "TrangThaiHoSo"
    assert findings[planned[11].code].differences == "NgayHenTra"
    # Each dossier looked up once.
    assert Counter(code for _, code in lookups(portal.simulator)) == {p.code: 1 for p in planned}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_rate_is_never_exceeded_and_sets_the_duration(
    engine: Engine, portal: RunningSimulator, database_url: str
) -> None:
    rate, count = 40.0, 160
    planned = plan(count)
    seed(ScoreStore(engine), planned)
    await put_on_portal(portal.base_url, planned)
    config = settings(
        portal.portal_url, database_url, resend=False, lookups_per_second=rate, batch_size=50
    )
    async with open_reconciler(config, engine, _board(engine)) as reconciler:
        sweep = await reconciler.dossiers(AGENCY, NOVEMBER)
    assert sweep.matched == count
    times = sorted(at for at, _ in lookups(portal.simulator))
    # No window of one second holds more than the rate (the simulator's own clock).
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert busiest <= rate
    implied = count / rate
    assert sweep.duration_seconds is not None
    # Never faster than the rate allows; how close it comes to the rate on a quiet machine is a
    # speed figure, measured by bench.reconcile_sweep, not asserted by a timed test.
    assert sweep.duration_seconds >= implied * 0.9


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_portal_errors_pause_the_sweep_and_never_make_a_dossier_missing(
    engine: Engine, portal: RunningSimulator, database_url: str
) -> None:
    planned = plan(150)
    seed(ScoreStore(engine), planned)
    on_portal, missing, different = _differing(planned)
    await put_on_portal(portal.base_url, on_portal)
    # 5xx and retryable error codes, sessions that expire every 9 calls, and an outage.
    portal.simulator.faults = Faults(error_rate=0.25, session_max_uses=9)
    config = settings(
        portal.portal_url,
        database_url,
        resend=False,
        batch_size=30,
        pause_initial_seconds=0.05,
        pause_max_seconds=0.4,
    )
    async with open_reconciler(config, engine, _board(engine)) as reconciler:
        task = asyncio.create_task(reconciler.dossiers(AGENCY, NOVEMBER))
        await asyncio.sleep(0.3)
        portal.simulator.start_outage(1.0)
        async with asyncio.timeout(120):
            sweep = await task
    findings = reconciler.store.findings(sweep.id)
    assert {f.code for f in findings if f.state == "missing"} == missing
    assert {f.code for f in findings if f.state == "different"} == different
    assert sweep.unchecked == 0
    assert sweep.pauses >= 1
    assert sweep.paused_seconds > 0
    faulted = [c for c in portal.simulator.state.calls if c.fault is not None]
    assert faulted, "the faults were not exercised"
    assert sweep.lookups > sweep.looked_up  # the failed ones were asked again


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_stopped_sweep_continues_from_its_checkpoint(
    engine: Engine, portal: RunningSimulator, database_url: str
) -> None:
    planned = plan(200)
    seed(ScoreStore(engine), planned)
    await put_on_portal(portal.base_url, planned)
    config = settings(
        portal.portal_url, database_url, resend=False, batch_size=20, lookups_per_second=100
    )
    stop = asyncio.Event()
    async with open_reconciler(config, engine, _board(engine)) as reconciler:
        task = asyncio.create_task(reconciler.dossiers(AGENCY, NOVEMBER, stop=stop))
        async with asyncio.timeout(30):
            while len(lookups(portal.simulator)) < 90:  # noqa: ASYNC110 - the simulator, bounded
                await asyncio.sleep(0.02)
        stop.set()
        with pytest.raises(Stopped):
            await task
        first = reconciler.store.unfinished(AGENCY, PERIOD)
        assert first is not None
        assert 0 < first.looked_up < len(planned)
        sweep = await reconciler.dossiers(AGENCY, NOVEMBER)
    assert sweep.id == first.id
    assert sweep.matched == sweep.looked_up == len(planned)
    counted = Counter(code for _, code in lookups(portal.simulator))
    assert set(counted) == {p.code for p in planned}
    assert all(n == 1 for n in counted.values())  # a stop lets the batch in flight finish


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_one_sweep_per_agency_at_a_time(
    engine: Engine, portal: RunningSimulator, database_url: str
) -> None:
    planned = plan(60)
    seed(ScoreStore(engine), planned)
    await put_on_portal(portal.base_url, planned)
    config = settings(portal.portal_url, database_url, resend=False, lookups_per_second=60)
    async with (
        open_reconciler(config, engine, _board(engine)) as one,
        open_reconciler(config, engine, _board(engine)) as other,
    ):
        first = asyncio.create_task(one.dossiers(AGENCY, NOVEMBER))
        await asyncio.sleep(0.3)
        with pytest.raises(SweepBusyError):
            await other.dossiers(AGENCY, NOVEMBER)
        done = await first
        again = await other.dossiers(AGENCY, NOVEMBER)  # the lease was released
    assert done.matched == again.matched == len(planned)
    assert again.id != done.id
