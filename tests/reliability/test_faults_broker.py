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
  revision, no dossier went backwards, ingest's exact indicator gauges equal the figures counted
  from the stream, and both processes stop cleanly.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.settings import KafkaSettings
from services.simulator.simulator import PORTAL, Simulator
from tests.support.faults import KafkaProxy, wait_for
from tests.support.scenario import STEP, fault_scenario

pytestmark = [pytest.mark.reliability, pytest.mark.kafka, pytest.mark.slow]

BROKER_SECONDS = float(os.environ.get("GOVSYNC_FAULT_BROKER_SECONDS", "20"))
NOT_READY_WITHIN = 10.0
READY_AGAIN_WITHIN = 90.0


async def test_broker_black_hole_then_recovery(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    sim = Simulator(seed=5)
    async with (
        KafkaProxy(kafka_settings.bootstrap_servers) as proxy,
        fault_scenario(
            "broker", kafka_settings, unique, tmp_path, sim, bootstrap=proxy.bootstrap
        ) as scenario,
    ):
        ingest = scenario.ingest()
        portal = scenario.sync("portal")
        services = (ingest, portal)
        stream = scenario.stream(f"B{unique}")
        await scenario.start(*services)
        async with stream:
            await scenario.moving_on(stream, *services)
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
            await scenario.moving_on(stream, *services)
            resumed = time.monotonic() - restored
        delivery = await scenario.drain(stream, [PORTAL], [portal], what="the portal up to date")
        counted, expected = await scenario.indicator_figures(delivery, ingest)
        codes = [await s.stop() for s in services]

    check, settled = delivery.ingest, delivery.settled
    scenario.report(
        delivery,
        figures,
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
            "indicator figures exact": counted == expected,
        },
    )
    assert still_not_ready == [503, 503], "a service said ready while the broker was silent"
    assert proxy.unrewritten == 0, "a client reached the broker around the proxy"
    assert check.lost == [], f"ingest lost {len(check.lost)} accepted events: {check.lost[:5]}"
    faults = list(check.fault_details.items())[:3]
    assert check.revision_faults == [], f"revision gaps or restarts: {faults}"
    assert settled.drained, f"not delivered to the portal: {settled.late[PORTAL][:5]}"
    assert sim.state.regressions == [], sim.state.regressions[:5]
    assert counted == expected, "the indicator gauges after the black hole"
    assert codes == [0, 0], "a process did not stop cleanly"
