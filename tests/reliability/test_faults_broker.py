"""The broker stops answering for a while: services say not ready, stay up, and resume.

`govsync ingest` and `govsync sync --target portal` run as processes that reach the broker only
through a `KafkaProxy`; the source's producer writes to the broker directly, so the stream goes
on while the services are cut off. The proxy then black-holes every connection (bytes are held,
not refused: a broker that hangs, as one stopped with SIGSTOP) for
`GOVSYNC_FAULT_BROKER_SECONDS` (20 s by default). Checked:

- both services answer `/readyz` with 503 within `NOT_READY_WITHIN` seconds, and keep serving
  HTTP and running (no crash) for the whole black hole;
- once the broker answers again both are ready again, and the stream completes: every accepted
  event has its record with contiguous revisions, the portal holds each dossier's final
  revision, no dossier went backwards, and both processes stop cleanly.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.settings import KafkaSettings
from services.simulator.server import running_simulator
from services.simulator.simulator import PORTAL, Simulator
from tests.support.faults import (
    Figures,
    KafkaProxy,
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

BROKER_SECONDS = float(os.environ.get("GOVSYNC_FAULT_BROKER_SECONDS", "20"))
NOT_READY_WITHIN = 10.0
READY_AGAIN_WITHIN = 90.0
RATE = 40.0
DOSSIERS = 150
STEP = 80


async def test_broker_black_hole_then_recovery(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    topics = Topics.unique("broker", unique)
    await create_topics(
        kafka_settings, topics.dossier, topics.normalized, topics.dlq, topics.state, partitions=3
    )
    sim = Simulator(seed=5)
    async with (
        KafkaProxy(kafka_settings.bootstrap_servers) as proxy,
        running_simulator(sim) as running,
    ):
        ingest = ServiceProcess.ingest(ingest_env(proxy.bootstrap, topics), tmp_path)
        portal = ServiceProcess.sync("portal", sync_env(proxy.bootstrap, topics, running), tmp_path)
        services = (ingest, portal)
        stream = SteadyProducer(
            kafka_settings, topics.dossier, prefix=f"B{unique}", dossiers=DOSSIERS, rate=RATE
        )

        def portal_total() -> int:
            return sum(revision for revision, _ in destination_revisions(sim, PORTAL).values())

        async def progress() -> None:
            sent, acked = stream.count + STEP, portal_total() + STEP

            def moved() -> bool:
                for service in services:
                    service.assert_running()
                return stream.count >= sent and portal_total() >= acked

            await wait_for(moved, within=90, what="the stream moving on")

        async with service_processes(*services), sampling_rss(*services):
            await asyncio.gather(*(s.start() for s in services))
            await asyncio.gather(*(s.wait_ready(90) for s in services))
            async with stream:
                await progress()
                proxy.blackhole()
                cut = time.monotonic()
                not_ready = await asyncio.gather(
                    *(s.wait_not_ready(NOT_READY_WITHIN) for s in services)
                )

                def alive_until_restored() -> bool:
                    for service in services:
                        service.assert_running()
                    return time.monotonic() - cut >= BROKER_SECONDS

                await wait_for(alive_until_restored, within=BROKER_SECONDS + 5, what="the hole")
                still_not_ready = [await s.ready_status() for s in services]
                proxy.restore()
                restored = time.monotonic()
                ready_again = await asyncio.gather(
                    *(s.wait_ready(READY_AGAIN_WITHIN) for s in services)
                )
                await progress()
                resumed = time.monotonic() - restored
            stopped = time.monotonic()
            sent = stream.sent
            assert stream.failed == 0, "the broker refused some of the stream"

            records = await collect(
                kafka_settings, topics.normalized, {e.event_id for e in sent}, within=90
            )
            check = check_ingest(sent, records)
            settled = await drain(
                sim, check.finals, [PORTAL], [portal], since=stopped, within=90,
                what="the portal up to date",
            )  # fmt: skip
            codes = [await s.stop() for s in services]

    result = Figures(
        "broker",
        events=len(sent),
        lost=len(check.lost) + settled.lost(),
        regressions=regressions(sim),
        repeated={"ingest records": check.repeats, PORTAL: repeated_deliveries(sim, PORTAL)},
        max_rss_mb={s.name: s.max_rss_kb / 1024 for s in services},
        drain_seconds=settled.seconds,
        extra={
            "black hole s": BROKER_SECONDS,
            "not ready after s": {
                s.name: round(t, 1) for s, t in zip(services, not_ready, strict=True)
            },
            "ready again after s": {
                s.name: round(t, 1) for s, t in zip(services, ready_again, strict=True)
            },
            f"stream moved on by {STEP} after s": round(resumed, 1),
            "restarts": {s.name: s.starts - 1 for s in services},
        },
    )
    result.report(figures)
    assert still_not_ready == [503, 503], "a service said ready while the broker was silent"
    assert proxy.unrewritten == 0, "a client reached the broker around the proxy"
    assert check.lost == [], f"ingest lost {len(check.lost)} accepted events: {check.lost[:5]}"
    assert check.revision_faults == [], f"revision gaps or restarts: {check.revision_faults[:5]}"
    assert settled.drained, f"not delivered to the portal: {settled.late[PORTAL][:5]}"
    assert sim.state.regressions == [], sim.state.regressions[:5]
    assert codes == [0, 0], "a process did not stop cleanly"
