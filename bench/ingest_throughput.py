"""Ingest throughput: events/s through `govsync ingest` vs a bare aiokafka consume-produce loop.

    uv run python -m bench.ingest_throughput [--events 60000] [--partitions 3]

Both read the same bytes (the local run's realistic traffic: dialects, duplicates, stale and
broken events) from a topic filled beforehand, on the same embedded broker, in the same run.
Baseline: one consumer, `getmany`, produce each value to an output topic, wait for the acks,
commit: the least any at-least-once Kafka worker does, with the service's own client
settings. Ingest: the real service in its own process (decode, validate, normalise, decide,
publish the record and the state, dead-letter, commit), timed from its first decided event to
its last through `/metrics`.
Target: ingest >= 0.5 x baseline. Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import (
    ServiceProcess,
    arguments,
    broker,
    generate_events,
    ingest_env,
    produce_all,
    running,
    samples,
    table,
    total,
    wait_ready,
    write_report,
)
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.lifecycle import run_async
from services.common.settings import KafkaSettings
from services.ingest.envelope import decode_record
from services.ingest.errors import IngestError
from services.ingest.main import build_pipeline
from services.ingest.settings import IngestSettings
from services.localrun.traffic.generator import SourceEvent
from tests.support.kafka import Topics

TARGET_RATIO = 0.5


async def baseline(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """Consume, produce the same value, wait for the acks, commit; as fast as it goes."""
    out = f"{topic}.out"
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), [TopicSpec(out, 3)])
    # The same client settings as the service: only the work in between differs.
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    consumer = make_consumer(kafka, topic, group_id=f"baseline-{uuid.uuid4().hex[:6]}")
    producer = make_producer(kafka)
    await consumer.start()
    await producer.start()
    done, first = 0, 0.0
    try:
        while done < events:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            if batch and not first:
                first = time.monotonic()
            pending = []
            for records in batch.values():
                for r in records:
                    pending.append(
                        await producer.send(
                            out, value=r.value, key=r.key, headers=list(r.headers or ())
                        )
                    )
            await asyncio.gather(*pending)
            if batch:
                await consumer.commit()
            done += len(pending)
        seconds = time.monotonic() - first
    finally:
        await producer.stop()
        await consumer.stop()
    return {"case": "bare aiokafka loop (median of 3)", "events": done, "seconds": seconds}


def pure_path(events: list[SourceEvent]) -> dict[str, Any]:
    """The service's work without Kafka: decode, validate, normalise, decide, serialise.

    The ceiling a single ingest process could reach if the Kafka client cost nothing; the
    stages' shares show where that time goes.
    """
    pipeline = build_pipeline(IngestSettings())
    states: dict[str, bytes] = {}
    clock = time.perf_counter
    decoding = deciding = serialising = 0.0
    for event in events:
        t0 = clock()
        try:
            envelope = decode_record(
                event.value, event.headers, topic="bench", max_bytes=1024 * 1024
            )
        except IngestError:
            decoding += clock() - t0
            continue
        t1 = clock()
        result = pipeline.handle(envelope, states=states, now=datetime.now(UTC))
        t2 = clock()
        decision = result.decision
        if decision is not None and decision.accepted is not None:
            decision.record_bytes()  # the state is packed as it is decided
        t3 = clock()
        decoding, deciding, serialising = (
            decoding + t1 - t0,
            deciding + t2 - t1,
            serialising + t3 - t2,
        )
    per_event = 1e6 / len(events)
    return {
        "case": "pure path in process (no Kafka)",
        "events": len(events),
        "seconds": decoding + deciding + serialising,
        "us_per_event": {
            "decode": round(decoding * per_event, 1),
            "validate_normalise_decide": round(deciding * per_event, 1),
            "serialise": round(serialising * per_event, 1),
        },
    }


async def ingest(bootstrap: str, topics: Topics, events: int, partitions: int) -> dict[str, Any]:
    env = ingest_env(bootstrap, topics, partitions=partitions)
    service = ServiceProcess(["ingest"], env)
    async with running(service), httpx.AsyncClient(timeout=5) as client:
        await wait_ready(client, service.base)
        first = last = 0.0
        decided = 0.0
        async with asyncio.timeout(600):
            while decided < events:
                decided = total(await samples(client, service.base), "govsync_events_total")
                now = time.monotonic()
                if decided and not first:
                    first = now
                last = now
                await asyncio.sleep(0.1)
        rss = service.rss_bytes()
    return {
        "case": "govsync ingest (own process)",
        "events": int(decided),
        "seconds": last - first,
        "rss_mb": round(rss / 2**20, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    events, generator = generate_events(args.events)
    print(f"{len(events):,} events over {generator.truth.dossiers:,} dossiers generated")
    with broker() as bootstrap:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        run = uuid.uuid4().hex[:8]
        topics = Topics.unique("bench", run)
        base_topic, ingest_topic = f"bench.base.{run}", topics.dossier
        await ensure_topics(
            kafka,
            [TopicSpec(base_topic, args.partitions), TopicSpec(ingest_topic, args.partitions)],
        )
        await produce_all(bootstrap, base_topic, events)
        await produce_all(bootstrap, ingest_topic, events)
        # The bare loop finishes in a second or two and varies by half from run to run on a
        # shared machine: the median of three is the baseline.
        runs = [await baseline(bootstrap, base_topic, len(events)) for _ in range(3)]
        bare = sorted(runs, key=lambda r: r["events"] / r["seconds"])[1]
        bare["runs_events_per_second"] = [round(r["events"] / r["seconds"]) for r in runs]
        service = await ingest(bootstrap, topics, len(events), args.partitions)
    pure = pure_path(events)
    for row in (bare, service, pure):
        row["events_per_second"] = round(row["events"] / row["seconds"], 1)
    ratio = round(service["events_per_second"] / bare["events_per_second"], 3)
    print(
        table(
            ["case", "events", "seconds", "events/s"],
            [
                [r["case"], r["events"], r["seconds"], r["events_per_second"]]
                for r in (bare, service, pure)
            ],
        )
    )
    ceiling = round(pure["events_per_second"] / bare["events_per_second"], 3)
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"baseline runs: {bare['runs_events_per_second']} events/s (the median is used)")
    print(f"ingest / baseline = {ratio} ({verdict} the >= {TARGET_RATIO} target)")
    print(f"pure path / baseline = {ceiling} (the most one process could reach on this machine)")
    print(f"pure path, microseconds per event: {pure['us_per_event']}")
    report = {
        "events": len(events),
        "partitions": args.partitions,
        "baseline": bare,
        "ingest": service,
        "pure_path": pure,
        "ratio": ratio,
        "pure_path_ratio": ceiling,
        "target_ratio": TARGET_RATIO,
    }
    write_report("ingest_throughput", report)
    return report


def cli() -> None:
    run_async(main(arguments(__doc__, events=60_000, partitions=3)))


if __name__ == "__main__":
    cli()
