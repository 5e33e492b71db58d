"""Rebalances mid-stream: a second ingest and a second portal sync join and leave, twice.

One `govsync ingest` and one `govsync sync --target portal` run as processes while a producer
sends source events at a steady rate. A second instance of each joins the same groups (it is
ready only once it owns partitions and, for ingest, has restored their state), leaves with
SIGTERM, joins again, and then the first instances leave, so every partition changes hands at
least once in each direction. Afterwards:

- nothing is lost: every accepted event has its normalised record and reaches the portal;
- state follows its partitions: each dossier's revisions are 1..n with one event each, across
  every handover (a new owner without the state would start a dossier again at revision 1);
- order holds at the destination: the portal never sees a dossier go backwards;
- the acknowledged state follows its partitions too: the synced gauge of the last portal worker
  equals the dossiers sent in a received status, and no step reached the portal without its
  dossier;
- the exact indicator gauges of the last owner equal the figures counted from the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.settings import KafkaSettings
from services.simulator.simulator import PORTAL, Simulator
from tests.support.scenario import fault_scenario

pytestmark = [pytest.mark.reliability, pytest.mark.kafka, pytest.mark.slow]

# DOMAIN.md §2: received = status in {2, 4, 5, 6, 7, 8, 9, 10}.
RECEIVED = frozenset({2, 4, 5, 6, 7, 8, 9, 10})


def gauge_total(text: str, name: str) -> float:
    """The sum of every sample of gauge `name` in Prometheus text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def test_members_join_and_leave_mid_stream(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    sim = Simulator(seed=2)
    async with fault_scenario("rebalance", kafka_settings, unique, tmp_path, sim) as scenario:
        ingest_a = scenario.ingest(name="ingest-a")
        ingest_b = scenario.ingest(name="ingest-b")
        portal_a = scenario.sync("portal", name="sync-portal-a")
        portal_b = scenario.sync("portal", name="sync-portal-b")
        stream = scenario.stream(f"R{unique}")

        exits: list[int] = []
        await scenario.start(ingest_a, portal_a)
        async with stream:
            await scenario.moving_on(stream, ingest_a, portal_a)
            for round_ in range(2):
                await scenario.start(ingest_b, portal_b)
                await scenario.moving_on(stream, ingest_a, ingest_b, portal_a, portal_b)
                if round_ == 0:
                    exits += await asyncio.gather(ingest_b.stop(), portal_b.stop())
                    await scenario.moving_on(stream, ingest_a, portal_a)
            exits += await asyncio.gather(ingest_a.stop(), portal_a.stop())
            await scenario.ready(ingest_b, portal_b)
            await scenario.moving_on(stream, ingest_b, portal_b)
        delivery = await scenario.drain(
            stream, [PORTAL], [ingest_b, portal_b], what="the portal up to date"
        )
        synced = gauge_total(await portal_b.metrics(), "govsync_portal_synced_dossiers")
        counted, expected = await scenario.indicator_figures(delivery, ingest_b)
        exits += await asyncio.gather(ingest_b.stop(), portal_b.stop())

    check, settled = delivery.ingest, delivery.settled
    scenario.report(
        delivery,
        figures,
        extra={
            "joins": 2 * 2,
            "leaves": 2 * 2,
            "dossiers": len(check.finals),
            "indicator figures exact": counted == expected,
        },
    )
    assert check.lost == [], f"ingest lost {len(check.lost)} accepted events: {check.lost[:5]}"
    faults = list(check.fault_details.items())[:3]
    assert check.revision_faults == [], f"revision gaps or restarts: {faults}"
    assert settled.drained, f"not delivered to the portal: {settled.late[PORTAL][:5]}"
    assert sim.state.regressions == [], sim.state.regressions[:5]
    # 1.4's numerator, derived from the acked state after four handovers, equals the count
    # of dossiers sent in a received status (the portal refuses none of them here).
    assert synced == len({e.dossier for e in delivery.sent if e.status in RECEIVED})
    assert sim.state.orphans == [], sim.state.orphans[:5]
    assert counted == expected, "the indicator gauges after the handovers"
    assert exits == [0] * 6, f"a process did not leave cleanly: {exits}"
