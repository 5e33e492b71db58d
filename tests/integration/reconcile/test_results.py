"""Where a sweep's results show: the reconciliation page of the scores service (what differs,
what was re-sent, what remains, the score check), the gauges, and the schedule inside the scores
service's process. Against the real simulator and database; the differences are the test's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from lxml import html
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.reconcile import schedule
from services.reconcile.metrics import ReconcileMetrics
from services.reconcile.runtime import open_reconciler
from services.reconcile.store import ReconcileStore
from services.scores import pages
from services.scores.api import create_app
from services.scores.crosswalk import Crosswalk
from services.scores.database import make_engine, migrate
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard
from services.scores.store import ScoreStore
from services.simulator.departments import derived
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator
from tests.support.reconcile import (
    AGENCY,
    PERIOD,
    VN,
    Planned,
    moved,
    plan,
    put_on_portal,
    seed,
    settings,
)

NOVEMBER = Period.parse(PERIOD)
NOW = datetime(2026, 12, 2, tzinfo=UTC)
DECEMBER_1 = datetime(2026, 12, 1, tzinfo=VN)


def _engine(tmp_path: object) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/scores.sqlite3")
    migrate(engine)
    return engine


def _portal_side(planned: list[Planned]) -> tuple[list[Planned], set[str], set[str]]:
    missing = {p.code for p in planned[::9]}
    different = {p.code for p in planned[4::9]}
    side = [
        moved(p, status=2) if p.code in different else p for p in planned if p.code not in missing
    ]
    # One dossier the portal holds that govsync never knew (received in November).
    side.append(Planned("H29.RC-FOREIGN", 4, planned[0].received, planned[0].due))
    return side, missing, different


async def test_the_page_the_gauges_and_the_score_check(tmp_path: object) -> None:
    engine = _engine(tmp_path)
    planned = plan(90)
    seed(ScoreStore(engine), planned)
    side, missing, different = _portal_side(planned)
    board = Scoreboard(ScoreStore(engine), Crosswalk(), lambda: NOW)
    async with running_simulator(Simulator(seed=4)) as portal:
        await put_on_portal(portal.base_url, side)
        config = settings(
            portal.portal_url,
            str(engine.url),
            resend=False,
            reporting_url=f"{portal.portal_url}/api/v1/reporting/evaluation",
            departments={AGENCY: derived(AGENCY).id},
        )
        async with open_reconciler(config, engine, board, clock=lambda: NOW) as reconciler:
            sweep = await reconciler.dossiers(AGENCY, NOVEMBER)
            checked = await reconciler.scores(AGENCY, NOVEMBER)
    assert sweep.unknown == 1  # the one it holds beyond govsync's it was found to hold
    rows = {r.indicator: r for r in checked.rows}
    # 1.4: the portal holds 90 - 10 missing + 1 foreign received dossiers.
    assert rows["1.4"].portal[0] == len(planned) - len(missing) + 1
    assert rows["1.4"].govsync[:2] == (len(planned), len(planned))
    assert set(rows["1.4"].explaining) == missing | different

    app = create_app(board, registry=CollectorRegistry(), readiness=_ready, page_size=10)
    app.include_router(pages.router(board, page_size=10))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scores"
    ) as client:
        answer = await client.get(f"/reconcile/{AGENCY}", params={"period": PERIOD})
        card = await client.get(f"/scores/{AGENCY}", params={"period": PERIOD})
    assert answer.status_code == 200
    page = html.fromstring(answer.text)
    summary = {
        td.get("data-state"): td.text_content().strip() for td in page.cssselect("#summary td")
    }
    assert summary["missing"] == str(len(missing))
    assert summary["different"] == str(len(different))
    assert summary["unknown"] == "1"
    assert summary["remaining"] == str(len(missing) + len(different))
    listed = {tr.get("data-code") for tr in page.cssselect("#differs tbody tr")}
    assert listed == missing | different
    assert page.cssselect("#resent") == []  # re-sending was off
    assert {tr.get("data-code") for tr in page.cssselect("#remains tbody tr")} == listed
    assert page.cssselect('#scores tr[data-indicator="1.4"]')
    assert f"/reconcile/{AGENCY}?period={PERIOD}" in card.text

    registry = CollectorRegistry()
    metrics = ReconcileMetrics(registry, agencies=[AGENCY])
    metrics.publish(ReconcileStore(engine).latest_finished([PERIOD]))
    for state, value in (
        ("missing", len(missing)),
        ("different", len(different)),
        ("unknown", 1),
        ("matched", len(planned) - len(missing) - len(different)),
    ):
        got = registry.get_sample_value(
            "govsync_reconcile_dossiers", {"agency": AGENCY, "state": state}
        )
        assert got == value, state
    assert registry.get_sample_value(
        "govsync_reconcile_remaining_dossiers", {"agency": AGENCY}
    ) == len(missing) + len(different)
    assert registry.get_sample_value(
        "govsync_reconcile_last_sweep_timestamp_seconds", {"agency": AGENCY}
    ) == pytest.approx((sweep.finished_ms or 0) / 1000)
    engine.dispose()


def _matched(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(
        "govsync_reconcile_dossiers", {"agency": AGENCY, "state": "matched"}
    )


async def _ready() -> dict[str, bool]:
    return {"database": True}


async def test_the_schedule_sweeps_inside_the_scores_process(tmp_path: object) -> None:
    engine = _engine(tmp_path)
    planned = plan(30)
    seed(ScoreStore(engine), planned)
    board = Scoreboard(ScoreStore(engine), Crosswalk(), lambda: NOW)
    registry = CollectorRegistry()
    async with running_simulator(Simulator(seed=6)) as portal:
        await put_on_portal(portal.base_url, planned[1:])
        config = settings(
            portal.portal_url,
            str(engine.url),
            resend=False,
            schedule=True,
            agencies=frozenset({AGENCY}),
            interval_seconds=3600,
            gauges_refresh_seconds=0.2,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(schedule.run(config, engine, board, registry, stop))
        # November's dossiers; December's are those still open on 1 December (2.1).
        december = [p for p in planned if p.finished is None or p.finished >= DECEMBER_1]
        expected = (len(planned) - 1) + (len(december) - (planned[0] in december))
        try:
            async with asyncio.timeout(30):
                while _matched(registry) != expected:  # noqa: ASYNC110 - bounded poll
                    await asyncio.sleep(0.1)
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task
    swept = ReconcileStore(engine).history(AGENCY)
    # November, the month before the clock's, and December, the clock's own.
    assert [s.period for s in swept] == ["2026-12", "2026-11"]
    november = next(s for s in swept if s.period == "2026-11")
    assert (november.missing, november.matched) == (1, len(planned) - 1)
    engine.dispose()
