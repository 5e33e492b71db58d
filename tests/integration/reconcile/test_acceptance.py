"""Issue 15's first acceptance point, on the real broker: the portal sync delivers every
dossier's records to a simulated portal that loses 3% of the dossiers and keeps 2% at an older
status; one sweep finds exactly those (the sets the simulator names at `/_sim/portal/damaged`),
re-sends them through the sync, and the next sweep finds none; the portal's own scores then
equal govsync's within 0.01 points for every indicator the simulator scores.

The scores database holds govsync's view as the scores service would: each dossier's facts at
its latest revision, acknowledged by the portal (written here from the test's own plan).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from schemas.dossier import (
    Channel,
    DossierHeader,
    DossierRecord,
    DossierStatus,
    ProgressStep,
    RecordKind,
    Timeliness,
)
from schemas.facts import DossierFacts
from services.common.settings import KafkaSettings
from services.reconcile.options import ReconcileOptions
from services.reconcile.runtime import open_reconciler
from services.scores.changes import AckChange, Batch, DossierChange
from services.scores.crosswalk import Crosswalk
from services.scores.database import make_engine, migrate
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard
from services.scores.settings import ScoresOptions, ScoresSettings
from services.scores.store import ScoreStore
from services.simulator.departments import derived
from services.simulator.faults import Faults
from services.simulator.server import running_simulator
from services.simulator.simulator import PORTAL, Simulator
from services.sync.main import run as run_sync
from services.sync.settings import DeliverySettings, PortalSettings, SyncSettings, Target
from tests.support.kafka import Sent, create_topics, produce
from tests.support.reconcile import AGENCY, PERIOD, VN

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DOSSIERS = 500
NOVEMBER = Period.parse(PERIOD)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _timeline(n: int) -> tuple[datetime, datetime, datetime | None, bool]:
    received = datetime(2026, 11, 1 + n % 28, 8 + n % 8, tzinfo=VN)
    due = received + timedelta(days=4)
    finished = received + timedelta(days=1 + n % 6) if n % 3 else None  # some late
    return received, due, finished, n % 2 == 0


def _records(n: int) -> tuple[list[DossierRecord], DossierFacts]:
    """Header (2), step (4), and for two in three a finishing header (9)."""
    code = f"H29.AC-{n:05d}"
    received, due, finished, online = _timeline(n)
    channel = Channel.ONLINE if online else Channel.IN_PERSON

    def header(status: DossierStatus, at: datetime) -> DossierHeader:
        return DossierHeader(
            procedure_code="1.001234",
            received_at=received,
            due_at=due,
            finished_at=finished if status is DossierStatus.FINISHED else None,
            channel=channel,
        )

    facts_by_revision = [
        DossierFacts(agency=AGENCY, status=DossierStatus.ACCEPTED, channel=channel,
                     received_at=received, due_at=due, procedure_code="1.001234"),
        DossierFacts(agency=AGENCY, status=DossierStatus.IN_PROCESS, channel=channel,
                     received_at=received, due_at=due, procedure_code="1.001234"),
    ]  # fmt: skip
    changes: list[tuple[RecordKind, DossierStatus, datetime]] = [
        (RecordKind.DOSSIER, DossierStatus.ACCEPTED, received),
        (RecordKind.PROGRESS, DossierStatus.IN_PROCESS, received + timedelta(hours=1)),
    ]
    if finished is not None:
        changes.append((RecordKind.DOSSIER, DossierStatus.FINISHED, finished))
        facts_by_revision.append(
            facts_by_revision[-1].model_copy(
                update={
                    "status": DossierStatus.FINISHED,
                    "finished_at": finished,
                    "ended_at": finished,
                    "end_status": DossierStatus.FINISHED,
                }
            )
        )
    records = []
    for revision, (kind, status, at) in enumerate(changes, start=1):
        extra: dict[str, Any] = {}
        if "facts" in DossierRecord.model_fields:  # issue 12: every record carries its facts
            extra["facts"] = facts_by_revision[revision - 1]
        records.append(
            DossierRecord(
                dossier_code=code,
                agency=AGENCY,
                revision=revision,
                kind=kind,
                status=status,
                timeliness=Timeliness.IN_PROGRESS,
                source="acceptance",
                event_id=f"{code}-{revision}",
                event_time=at,
                ingested_at=at,
                header=header(status, at) if kind is RecordKind.DOSSIER else None,
                step=ProgressStep(handled_at=at, status=status, content="Xử lý")
                if kind is RecordKind.PROGRESS
                else None,
                **extra,
            )
        )
    return records, facts_by_revision[-1]


@contextlib.asynccontextmanager
async def _service(
    start: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(start(stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await task


def _delivered(sim: Simulator) -> set[tuple[str, int]]:
    """(dossier, revision) the portal acknowledged (kept or dropped by a fault alike)."""
    out: set[tuple[str, int | None]] = set()
    for call in sim.state.calls:
        if call.destination == PORTAL and call.error_code == 0:
            out.update(zip(call.dossiers, call.revisions, strict=False))
    return {(code, rev) for code, rev in out if rev is not None}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sweep_finds_the_damage_resends_it_and_the_scores_agree(
    kafka_settings: KafkaSettings, unique: str, database_url: str
) -> None:
    normalized, dlq = f"rc.normalized.{unique}", f"rc.dlq.{unique}"
    acked = f"rc.sync.{{target}}.acked.{unique}"
    await create_topics(kafka_settings, normalized, dlq)
    planned = [_records(n) for n in range(DOSSIERS)]
    faults = Faults(lose_share=0.03, stale_share=0.02, damage_seed=15)
    async with running_simulator(Simulator(faults, seed=5)) as simulated:
        sim = simulated.simulator
        sync = SyncSettings(
            kafka=kafka_settings,
            portal=PortalSettings(url=simulated.portal_url, password=SecretStr("secret"),
                                  dstcode="DVCQG", madonvi=AGENCY, linger_ms=10),
            delivery=DeliverySettings(commit_interval_seconds=0.2),
            topic_dossier_normalized=normalized,
            topic_dlq=dlq,
            acked_topic_template=acked,
            group_prefix=f"rc-sync-{unique}-",
            allow_http=True,
            http_port=0,
        )  # fmt: skip
        async with _service(lambda stop: run_sync(sync, Target.PORTAL, stop, serve_http=False)):
            await produce(
                kafka_settings,
                normalized,
                [
                    Sent(r.model_dump_json().encode(), r.dossier_code.encode())
                    for records, _ in planned
                    for r in records
                ],
            )
            wanted = {(r.dossier_code, r.revision) for records, _ in planned for r in records}
            async with asyncio.timeout(120):
                while not wanted <= _delivered(sim):  # noqa: ASYNC110 - bounded poll
                    await asyncio.sleep(0.2)
            # govsync's view, as the scores service keeps it: the latest facts, acknowledged.
            engine = make_engine(database_url)
            migrate(engine)
            store = ScoreStore(engine)
            store.apply(
                Batch(
                    dossiers=[
                        DossierChange(records[-1].dossier_code, records[-1].revision, facts)
                        for records, facts in planned
                    ],
                    acks=[
                        AckChange(records[-1].dossier_code, records[-1].revision, True)
                        for records, _ in planned
                    ],
                )
            )
            async with httpx.AsyncClient(base_url=simulated.base_url) as control:
                damaged = (await control.get("/_sim/portal/damaged")).json()
                # The faults end; what they did stays until govsync repairs it.
                await control.post("/_sim/faults", json={"lose_share": 0, "stale_share": 0})
            lost, stale = set(damaged["lost"]), set(damaged["stale"])
            # The faults were exercised (3% and 2% of 500 expected).
            assert len(lost) >= 5, damaged
            assert len(stale) >= 3, damaged
            settings = ScoresSettings(
                kafka=kafka_settings,
                topic_dossier_normalized=normalized,
                scores=ScoresOptions(database_url=database_url),
                portal=sync.portal,
                reconcile=ReconcileOptions(
                    lookups_per_second=300,
                    recheck_delay_seconds=1.0,
                    recheck_attempts=20,
                    reporting_url=f"{simulated.portal_url}/api/v1/reporting/evaluation",
                    departments={AGENCY: derived(AGENCY).id},
                ),
            )
            board = Scoreboard(store, Crosswalk(), lambda: NOW)
            async with open_reconciler(settings, engine, board, clock=lambda: NOW) as reconcile:
                first = await reconcile.dossiers(AGENCY, NOVEMBER)
                findings = reconcile.store.findings(first.id)
                assert {f.code for f in findings if f.state == "missing"} == lost
                assert {f.code for f in findings if f.state == "different"} == stale
                assert first.resent == len(lost) + len(stale)
                assert first.remaining == 0, [f for f in findings if f.now != "matched"]
                assert first.unknown == 0
                second = await reconcile.dossiers(AGENCY, NOVEMBER)
                assert (second.missing, second.different, second.matched) == (0, 0, DOSSIERS)
                checked = await reconcile.scores(AGENCY, NOVEMBER)
    scored = [r for r in checked.rows if r.portal[3] is not None and r.govsync[3] is not None]
    assert {"1.4", "2.1"} <= {r.indicator for r in scored}
    for row in scored:
        assert row.portal[3] == pytest.approx(row.govsync[3], abs=0.01), row
    assert sim.state.regressions == []
    engine.dispose()
