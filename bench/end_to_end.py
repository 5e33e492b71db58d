"""End-to-end latency: a source event produced to the portal's acknowledgement, at a steady rate.

    uv run python -m bench.end_to_end [--rate 1000] [--seconds 30]

The services run as in production, each in its own process: `govsync ingest`, `govsync sync
--target portal` and `govsync simulate` (the portal), on one embedded broker. The benchmark
produces the local run's realistic traffic at `--rate` events/s and notes when it produced each
event; the simulator logs when the portal accepted each item (`/_sim/calls`: dossier, revision,
time). Latency = acceptance time - production time, per accepted event. Baseline, same run and
broker: one bare hop, produce -> a plain aiokafka consumer, at the same rate (the pipeline makes
two such hops plus the HTTP call). Target: p99 < 1 s. Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import (
    ServiceProcess,
    arguments,
    broker,
    ingest_env,
    latencies,
    running,
    table,
    wait_ready,
    write_report,
)
from services.common.kafka import TopicSpec, ensure_topics
from services.common.lifecycle import run_async
from services.common.settings import KafkaSettings
from services.localrun.traffic.generator import SourceEvent, TrafficGenerator
from services.localrun.traffic.options import TrafficOptions
from services.localrun.traffic.truth import Outcome
from tests.support.kafka import Topics

TARGET_P99_SECONDS = 1.0
SECRET = "bench-secret"  # noqa: S105 - the benchmark simulator's own credential
TICK_SECONDS = 0.02


def events_per_dossier(seed: int) -> float:
    """Events per arriving dossier in the steady state of the default traffic (virtual clock)."""
    generator = TrafficGenerator(TrafficOptions(dossiers_per_second=50), random.Random(seed))
    now, counted = datetime(2026, 1, 1, tzinfo=UTC), 0
    for tick in range(1200):  # 120 virtual seconds; count the second half only
        now += timedelta(milliseconds=100)
        made = len(generator.tick(now))
        counted += made if tick >= 600 else 0
    return counted / (50 * 60)


def paced_generator(rate: float, seed: int) -> TrafficGenerator:
    """The default traffic at about `rate` events/s once dossiers are in every stage."""
    options = TrafficOptions(dossiers_per_second=rate / events_per_dossier(seed))
    return TrafficGenerator(options, random.Random(seed))


async def paced_ticks(rate: float, seconds: float, seed: int) -> AsyncIterator[list[SourceEvent]]:
    """The traffic at exactly `rate` events/s from the first tick, for `seconds`.

    The generator runs on its own clock, ahead of the wall clock while its dossiers fill every
    stage, so the rate is steady from the start instead of ramping up with them.
    """
    generator = paced_generator(rate, seed)
    backlog: deque[SourceEvent] = deque()
    virtual, produced = datetime.now(UTC), 0
    begun = time.monotonic()
    while (started := time.monotonic()) < begun + seconds:
        # Owed since the start, not per tick: a late tick is made up by the next one.
        due = int(rate * (started - begun + TICK_SECONDS)) - produced
        while len(backlog) < due:
            virtual += timedelta(seconds=TICK_SECONDS)
            backlog.extend(generator.tick(virtual))
        produced += due
        yield [backlog.popleft() for _ in range(due)]
        await asyncio.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - started)))


async def produce_paced(
    bootstrap: str,
    topic: str,
    rate: float,
    seconds: float,
    *,
    seed: int,
    stamp: Callable[[list[SourceEvent], float], None],
) -> int:
    """Produce the generator's traffic for `seconds`; `stamp` notes each tick's send time first,
    so a reader never sees a record before its stamp."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    count = 0
    try:
        async for events in paced_ticks(rate, seconds, seed=seed):
            stamp(events, time.time())
            futures = [
                await producer.send(topic, value=e.value, key=e.key, headers=list(e.headers))
                for e in events
            ]
            await asyncio.gather(*futures)
            count += len(events)
    finally:
        await producer.stop()
    return count


async def pipeline_case(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    topics = Topics.unique("e2e", uuid.uuid4().hex[:8])
    simulator = ServiceProcess.simulator(
        {"GOVSYNC_SIMULATOR_PASSWORD": SECRET, "GOVSYNC_SIMULATOR_CLIENT_SECRET": SECRET}
    )
    ingest = ServiceProcess(["ingest"], ingest_env(bootstrap, topics, partitions=6))
    sync = ServiceProcess(
        ["sync", "--target", "portal"],
        {"GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        | topics.sync_env()
        | {
            "GOVSYNC_ALLOW_HTTP": "true",
            "GOVSYNC_PORTAL_URL": f"{simulator.base}/portal",
            "GOVSYNC_PORTAL_PASSWORD": SECRET,
            "GOVSYNC_PORTAL_DSTCODE": "000.00.00.G22",
        },
    )
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap),
        [TopicSpec(t, 6) for t in (topics.dossier, topics.normalized, topics.dlq)],
    )
    sent: dict[tuple[str, int], float] = {}
    async with (
        running(simulator),
        running(ingest),
        running(sync),
        httpx.AsyncClient(timeout=10) as client,
    ):
        for service in (ingest, sync):
            await wait_ready(client, service.base)

        def accepted(events: list[SourceEvent], at: float) -> None:
            for e in events:
                if e.expected is Outcome.ACCEPTED and e.dossier is not None:
                    sent[(e.dossier, e.sequence)] = at

        produced = await produce_paced(
            bootstrap, topics.dossier, rate, seconds, seed=7, stamp=accepted
        )
        measured = await collect(client, simulator.base, sent, within=60)
    return {
        "case": "source event -> portal acknowledged",
        "events": produced,
        "accepted_events": len(sent),
        "measured": len(measured),
        "seconds": seconds,
        **latencies(measured),
    }


async def collect(
    client: httpx.AsyncClient, base: str, sent: dict[tuple[str, int], float], within: float
) -> list[float]:
    """Read the portal's call log until every accepted event was acknowledged (or `within`)."""
    acked: dict[tuple[str, int], float] = {}
    since = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while len(acked) < len(sent):
                answer = await client.get(
                    f"{base}/_sim/calls", params={"destination": "portal", "since": since}
                )
                calls = answer.json()
                for call in calls:
                    since = max(since, call["seq"])
                    if call["error_code"] != 0:
                        continue
                    for code, revision in zip(call["dossiers"], call["revisions"], strict=False):
                        if revision is not None:
                            acked.setdefault((code, revision), call["at"])
                await asyncio.sleep(0.5)
    return [acked[k] - sent[k] for k in sent if k in acked]


async def baseline_case(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """One bare hop at the same rate: produce, and a plain consumer receives."""
    topic = f"e2e.base.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), [TopicSpec(topic, 6)])
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest"
    )
    await consumer.start()
    await asyncio.sleep(1.0)  # position at the end before producing
    measured: list[float] = []
    stamps: dict[bytes, float] = {}

    async def consume() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for r in records:
                    stamp = stamps.pop(r.value, None) if r.value is not None else None
                    if stamp is not None:
                        measured.append(now - stamp)

    def every(events: list[SourceEvent], at: float) -> None:
        stamps.update((e.value, at) for e in events)

    reader = asyncio.create_task(consume())
    try:
        count = await produce_paced(bootstrap, topic, rate, seconds, seed=8, stamp=every)
        await asyncio.sleep(2.0)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
    return {
        "case": "baseline: one bare Kafka hop",
        "events": count,
        "measured": len(measured),
        "seconds": seconds,
        **latencies(measured),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with broker() as bootstrap:
        base = await baseline_case(bootstrap, args.rate, min(args.seconds, 15.0))
        e2e = await pipeline_case(bootstrap, args.rate, args.seconds)
    rows = [
        [r["case"], r["events"], r["measured"], r["p50"], r["p90"], r["p99"], r["max"]]
        for r in (base, e2e)
    ]
    print(table(["case", "events", "measured", "p50 s", "p90 s", "p99 s", "max s"], rows))
    achieved = e2e["events"] / args.seconds
    verdict = "meets" if e2e["p99"] < TARGET_P99_SECONDS else "MISSES"
    print(
        f"at {achieved:,.0f} events/s for {args.seconds:g} s: p99 {e2e['p99']:.3f} s"
        f" ({verdict} the < {TARGET_P99_SECONDS:g} s target); baseline hop p99 {base['p99']:.3f} s"
    )
    report = {
        "rate": args.rate,
        "achieved_rate": round(achieved, 1),
        "seconds": args.seconds,
        "baseline": base,
        "pipeline": e2e,
        "target_p99_seconds": TARGET_P99_SECONDS,
    }
    write_report("end_to_end", report)
    return report


def cli() -> None:
    run_async(main(arguments(__doc__, rate=1000.0, seconds=30.0)))


if __name__ == "__main__":
    cli()
