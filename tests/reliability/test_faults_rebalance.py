"""Rebalances mid-stream: a second ingest and a second portal sync join and leave, twice.

One `govsync ingest` and one `govsync sync --target portal` run as processes while a producer
sends source events at a steady rate. A second instance of each joins the same groups (it is
ready only once it owns partitions and, for ingest, has restored their state), leaves with
SIGTERM, joins again, and then the first instances leave, so every partition changes hands at
least once in each direction. Afterwards:

- nothing is lost: every accepted event has its normalised record and reaches the portal;
- state follows its partitions: each dossier's revisions are 1..n with one event each, across
  every handover (a new owner without the state would start a dossier again at revision 1);
- order holds at the destination: the portal never sees a dossier go backwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.settings import KafkaSettings
from services.simulator.server import running_simulator
from services.simulator.simulator import PORTAL, Simulator
from tests.support.faults import (
    Figures,
    ServiceProcess,
    SteadyProducer,
    Topics,
    check_ingest,
    collect,
    destination_revisions,
    drain,
    ingest_env,
    regressions,
    repeated_deliveries,
    sampling_rss,
    service_processes,
    sync_env,
    wait_for,
)
from tests.support.kafka import create_topics

pytestmark = [pytest.mark.reliability, pytest.mark.kafka, pytest.mark.slow]

RATE = 40.0
DOSSIERS = 150
STEP = 80
"""Events sent, and portal revisions acknowledged, between two membership changes."""


async def test_members_join_and_leave_mid_stream(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    topics = Topics.unique("rebalance", unique)
    await create_topics(
        kafka_settings, topics.dossier, topics.normalized, topics.dlq, topics.state, partitions=3
    )
    sim = Simulator(seed=2)
    bootstrap = kafka_settings.bootstrap_servers
    async with running_simulator(sim) as running:
        ingest_env_ = ingest_env(bootstrap, topics)
        sync_env_ = sync_env(bootstrap, topics, running)
        ingest_a = ServiceProcess.ingest(ingest_env_, tmp_path, name="ingest-a")
        ingest_b = ServiceProcess.ingest(ingest_env_, tmp_path, name="ingest-b")
        portal_a = ServiceProcess.sync("portal", sync_env_, tmp_path, name="sync-portal-a")
        portal_b = ServiceProcess.sync("portal", sync_env_, tmp_path, name="sync-portal-b")
        services = (ingest_a, ingest_b, portal_a, portal_b)
        stream = SteadyProducer(
            kafka_settings, topics.dossier, prefix=f"R{unique}", dossiers=DOSSIERS, rate=RATE
        )

        def portal_total() -> int:
            return sum(revision for revision, _ in destination_revisions(sim, PORTAL).values())

        async def progress(*running: ServiceProcess) -> None:
            """Both the stream and the portal move on by `STEP` while `running` keep running."""
            sent, acked = stream.count + STEP, portal_total() + STEP

            def moved() -> bool:
                for service in running:
                    service.assert_running()
                return stream.count >= sent and portal_total() >= acked

            await wait_for(moved, within=90, what="the stream moving on")

        exits: list[int] = []
        async with service_processes(*services), sampling_rss(*services):
            await asyncio.gather(ingest_a.start(), portal_a.start())
            await asyncio.gather(ingest_a.wait_ready(90), portal_a.wait_ready(90))
            async with stream:
                await progress(ingest_a, portal_a)
                for round_ in range(2):
                    await asyncio.gather(ingest_b.start(), portal_b.start())
                    await asyncio.gather(ingest_b.wait_ready(90), portal_b.wait_ready(90))
                    await progress(ingest_a, ingest_b, portal_a, portal_b)
                    if round_ == 0:
                        exits += await asyncio.gather(ingest_b.stop(), portal_b.stop())
                        await progress(ingest_a, portal_a)
                exits += await asyncio.gather(ingest_a.stop(), portal_a.stop())
                await asyncio.gather(ingest_b.wait_ready(90), portal_b.wait_ready(90))
                await progress(ingest_b, portal_b)
            stopped = time.monotonic()
            sent = stream.sent
            assert stream.failed == 0, "the broker refused some of the stream"

            records = await collect(
                kafka_settings, topics.normalized, {e.event_id for e in sent}, within=90
            )
            check = check_ingest(sent, records)
            settled = await drain(
                sim, check.finals, [PORTAL], [ingest_b, portal_b], since=stopped, within=90,
                what="the portal up to date",
            )  # fmt: skip
            exits += await asyncio.gather(ingest_b.stop(), portal_b.stop())

    result = Figures(
        "rebalance",
        events=len(sent),
        lost=len(check.lost) + settled.lost(),
        regressions=regressions(sim),
        repeated={"ingest records": check.repeats, PORTAL: repeated_deliveries(sim, PORTAL)},
        max_rss_mb={s.name: s.max_rss_kb / 1024 for s in services},
        drain_seconds=settled.seconds,
        extra={"joins": 2 * 2, "leaves": 2 * 2, "dossiers": len(check.finals)},
    )
    result.report(figures)
    assert check.lost == [], f"ingest lost {len(check.lost)} accepted events: {check.lost[:5]}"
    assert check.revision_faults == [], f"revision gaps or restarts: {check.revision_faults[:5]}"
    assert settled.drained, f"not delivered to the portal: {settled.late[PORTAL][:5]}"
    assert sim.state.regressions == [], sim.state.regressions[:5]
    assert exits == [0] * 6, f"a process did not leave cleanly: {exits}"
