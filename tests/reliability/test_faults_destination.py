"""The portal down, then slow, then rate-limiting, while the stream keeps coming.

`govsync sync --target portal` runs as a process; a producer sends normalised records at a
steady rate throughout. Through the simulator's control endpoint the portal is then:

1. down (503 to everything) for `GOVSYNC_FAULT_OUTAGE_SECONDS` (120 s by default);
2. slow: every call takes `SLOW_CALL_SECONDS` (2 s), until deliveries resume (the circuit
   breaker's next probe) and for `SLOW_PHASE_SECONDS` after that;
3. answering 429 with `Retry-After` to every call for `RATE_LIMITED_SECONDS`;

and then healthy again. Meanwhile the sync process's VmRSS (from /proc/<pid>/status) and its
`govsync_sync_backlog` and `govsync_sync_paused` gauges are sampled every second. Checked:

- fetching was paused during the outage and the backlog never exceeded `max_buffered`;
- the process's memory grew by less than `RSS_GROWTH_BOUND_MIB` while the portal was down;
- deliveries went on while the portal was slow;
- afterwards the backlog drains: the portal holds every dossier's final revision, nothing was
  dead-lettered, no dossier went backwards, and the process stops cleanly.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.common.settings import KafkaSettings
from services.simulator.faults import Faults
from services.simulator.server import running_simulator
from services.simulator.simulator import PORTAL, Simulator
from services.sync.main import run
from services.sync.settings import Target
from tests.integration.sync.test_acceptance import produce, sync_settings
from tests.support.faults import ServiceProcess, count_records, wait_for
from tests.support.ingest import metric_value
from tests.support.kafka import create_topics
from tests.support.records import dossier_stream
from tests.support.scenario import fault_scenario

pytestmark = [pytest.mark.reliability, pytest.mark.kafka, pytest.mark.slow]

OUTAGE_SECONDS = float(os.environ.get("GOVSYNC_FAULT_OUTAGE_SECONDS", "120"))
SLOW_CALL_SECONDS = 2.0
SLOW_PHASE_SECONDS = 12.0
RATE_LIMITED_SECONDS = 8.0
RETRY_AFTER_SECONDS = 1.0
RATE = 30.0
DOSSIERS = 300
MAX_BUFFERED = 200
BREAKER_MAX_RESET_SECONDS = 60.0
"""The circuit breaker's longest wait between two probes (`CircuitBreaker.max_reset_seconds`)."""
RSS_GROWTH_BOUND_MIB = 48.0
"""The whole backlog of a two-minute outage (3,600 records) is about 10 MiB as Python objects;
a worker that kept fetching while paused would pass this bound within the outage."""


@dataclass(slots=True)
class Samples:
    """What the sampler saw of the sync process, per phase."""

    rss_kb: dict[str, list[int]] = field(default_factory=dict)
    backlog: list[float] = field(default_factory=list)
    paused: dict[str, list[float]] = field(default_factory=dict)

    def growth_mib(self, phase: str) -> float:
        values = self.rss_kb.get(phase, [0])
        return (max(values) - values[0]) / 1024


async def sample_phase(
    sync: ServiceProcess,
    samples: Samples,
    phase: str,
    seconds: float,
    *,
    until: Callable[[], bool] = lambda: True,
    within: float = 0.0,
) -> None:
    """Sample RSS and the back-pressure gauges every second for `seconds`, and beyond that
    until `until()` holds (for at most `within` more seconds); the process must live."""
    ends = time.monotonic() + seconds

    async def one() -> bool:
        sync.assert_running()
        samples.rss_kb.setdefault(phase, []).append(sync.sample_rss())
        text = await sync.metrics()
        samples.backlog.append(metric_value(text, "govsync_sync_backlog", target=PORTAL))
        samples.paused.setdefault(phase, []).append(
            metric_value(text, "govsync_sync_paused", target=PORTAL)
        )
        return time.monotonic() >= ends and until()

    async with asyncio.timeout(seconds + within + 30):
        while True:
            if await one():
                return
            await asyncio.sleep(min(1.0, max(ends - time.monotonic(), 0.0)))


async def test_portal_outage_then_slow_then_rate_limited(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    sim = Simulator(seed=3)
    samples = Samples()
    async with (
        fault_scenario(
            "destination", kafka_settings, unique, tmp_path, sim, source=False, sample_rss=False
        ) as scenario,
        httpx.AsyncClient(base_url=scenario.running.base_url, timeout=5) as control,
    ):
        sync = scenario.sync(
            "portal",
            GOVSYNC_DELIVERY_MAX_BUFFERED=str(MAX_BUFFERED),
            GOVSYNC_DELIVERY_BREAKER_RESET_SECONDS="2",
        )
        portal_total = scenario.acknowledged

        async def faults(**changes: object) -> None:
            (await control.post("/_sim/faults", json=changes)).raise_for_status()

        await scenario.start(sync)
        stream = scenario.stream(f"D{unique}", dossiers=DOSSIERS, rate=RATE)
        async with stream:
            await wait_for(lambda: portal_total() >= 100, within=60, what="first deliveries")
            await faults(outage_seconds=OUTAGE_SECONDS)
            await sample_phase(sync, samples, "outage", OUTAGE_SECONDS)
            during_outage = stream.count
            await faults(latency_seconds=SLOW_CALL_SECONDS)
            before_slow = portal_total()
            # The circuit breaker's probe interval doubled through the outage (up to 60 s):
            # the slow phase lasts until the probe got through and deliveries resumed.
            await sample_phase(
                sync,
                samples,
                "slow",
                0,
                until=lambda: portal_total() > before_slow,
                within=BREAKER_MAX_RESET_SECONDS + 10,
            )
            await sample_phase(sync, samples, "slow", SLOW_PHASE_SECONDS)
            slow_progress = portal_total() - before_slow
            await faults(
                latency_seconds=0,
                rate_limit_rate=1.0,
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
            await sample_phase(sync, samples, "rate-limited", RATE_LIMITED_SECONDS)
            await faults(rate_limit_rate=0.0)
        delivery = await scenario.drain(
            stream, [PORTAL], [sync], within=120, what="the backlog drained"
        )
        dead_letter_metric = await sync.metric(
            "govsync_sync_records_total", target=PORTAL, outcome="dead_lettered"
        )
        code = await sync.stop()
        dead_letters = await count_records(kafka_settings, scenario.topics.dlq)

    settled = delivery.settled
    outage_calls = sum(1 for c in sim.state.calls if c.fault == "outage")
    limited_calls = sum(1 for c in sim.state.calls if c.fault == "rate_limited")
    scenario.report(
        delivery,
        figures,
        extra={
            "outage s": OUTAGE_SECONDS,
            "sent during outage": during_outage,
            "RSS growth in outage MiB": round(samples.growth_mib("outage"), 1),
            "max backlog": int(max(samples.backlog)),
            "max_buffered": MAX_BUFFERED,
            "portal calls refused (outage / 429)": f"{outage_calls} / {limited_calls}",
            "revisions acked while slow": slow_progress,
            "dead letters": dead_letters,
        },
    )
    assert max(samples.paused["outage"]) == 1, "fetching was never paused during the outage"
    assert max(samples.backlog) <= MAX_BUFFERED, f"backlog reached {max(samples.backlog)}"
    assert samples.growth_mib("outage") < RSS_GROWTH_BOUND_MIB
    assert slow_progress > 0, "nothing was delivered while the portal was slow"
    assert outage_calls > 0, "the outage never reached the worker"
    assert limited_calls > 0, "no call was rate-limited"
    assert settled.drained, f"not delivered after the faults: {settled.late[PORTAL][:5]}"
    assert dead_letters == 0, "transient faults made dead letters"
    assert dead_letter_metric == 0
    assert sim.state.regressions == [], sim.state.regressions[:5]
    assert code == 0, "the sync process did not stop cleanly"


async def test_backlog_stays_within_max_buffered(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """Regression: a fetch made below `max_buffered` could overshoot it by up to a whole batch.

    With a portal that takes 5 s per call, 30 records are fetched and stay unfinished; 70 more
    arrive. The worker may take 20 of them, not all 70 (before the fix: a backlog of 100).
    """
    buffered = 50
    sim = Simulator(Faults(latency_seconds=5.0), seed=4)
    stream = dossier_stream(f"B{unique}", 100, max_revisions=1)
    async with running_simulator(sim) as running:
        settings = sync_settings(
            kafka_settings, running, unique, max_buffered=buffered, max_in_flight=4
        )
        topic = settings.topic_dossier_normalized
        await create_topics(kafka_settings, topic, partitions=3)
        registry = CollectorRegistry()
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run(settings, Target.PORTAL, stop, registry=registry, serve_http=False)
        )
        seen: list[float] = []

        def backlog_reached(count: int) -> Callable[[], bool]:
            def check() -> bool:
                if worker.done():
                    worker.result()
                value = registry.get_sample_value("govsync_sync_backlog", {"target": "portal"})
                seen.append(value or 0.0)
                return seen[-1] >= count

            return check

        try:
            await produce(kafka_settings, topic, stream[:30])
            await wait_for(backlog_reached(30), within=60, what="30 records fetched")
            await produce(kafka_settings, topic, stream[30:])
            await wait_for(backlog_reached(buffered), within=10, what="a full backlog")
            settled = len(seen) + 20
            await wait_for(
                lambda: backlog_reached(buffered + 1)() or len(seen) >= settled,
                within=10,
                what="the backlog settling",
            )
        finally:
            stop.set()
            async with asyncio.timeout(30):
                await worker
    assert max(seen) <= buffered, f"backlog reached {max(seen)} with max_buffered {buffered}"
