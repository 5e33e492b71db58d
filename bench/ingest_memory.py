"""Ingest memory: RSS after a million dossier events over 200,000 dossiers, kept vs evicted.

    uv run python -m bench.ingest_memory [--events 1000000] [--dossiers 200000]

`govsync ingest` runs in its own process; its resident memory is VmRSS from /proc/<pid>/status.
Baseline, same run: the RSS of an idle ingest process (started, ready, no events). Then two
runs over the same events (the local run's realistic dossier events, most dossiers finishing):
`keep`, finished dossiers retained (the default 30 days), and `evict`, with
`GOVSYNC_FINISHED_RETENTION=PT1S` so finished dossiers move to the archive at the worker's next
eviction pass (`GOVSYNC_EVICTION_INTERVAL_SECONDS=5`; the benchmark waits for it). An evicted
dossier keeps an archive entry (revision, watermarks, facts) for 400 days, so the evicting run
holds about as many entries as the keeping one, each a little smaller. The archive's own
memory is measured apart, in this process: the pure pipeline decides the first 100,000 events,
and tracemalloc weighs the held dossiers' packed states, live and then archived. Targets: RSS
under 300 MB after all events. Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import tracemalloc
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
from services.common.kafka import TopicSpec, ensure_topics
from services.common.lifecycle import run_async
from services.common.settings import KafkaSettings
from services.ingest.dossiers.state import DossierState
from services.ingest.envelope import decode_record
from services.ingest.errors import IngestError
from services.ingest.main import build_pipeline
from services.ingest.settings import IngestSettings
from services.localrun.traffic.generator import SourceEvent
from services.localrun.traffic.options import TrafficOptions
from tests.support.kafka import Topics

TARGET_MB = 300.0
EVICTION_INTERVAL_SECONDS = 5.0
SAMPLE_EVENTS = 100_000


def _env(bootstrap: str, retention: str | None) -> dict[str, str]:
    topics = Topics.unique("mem", uuid.uuid4().hex[:8])
    retained = (
        {
            "GOVSYNC_FINISHED_RETENTION": retention,
            "GOVSYNC_EVICTION_INTERVAL_SECONDS": str(EVICTION_INTERVAL_SECONDS),
        }
        if retention
        else {}
    )
    return ingest_env(bootstrap, topics, partitions=3, **retained)


def archive_cost(events: list[SourceEvent]) -> dict[str, Any]:
    """Bytes a held dossier costs in memory, live and archived: the pure pipeline decides
    `events`, then tracemalloc weighs a map of the packed states as the worker keeps them."""
    pipeline = build_pipeline(IngestSettings())
    states: dict[str, bytes] = {}
    now = datetime.now(UTC)
    for event in events:
        try:
            envelope = decode_record(event.value, list(event.headers), topic="m", max_bytes=2**20)
        except IngestError:
            continue
        pipeline.handle(envelope, states=states, now=now)
    live = list(states.items())

    def weigh(entries: list[tuple[str, bytes]]) -> float:
        """Bytes per entry of a fresh map of fresh copies (keys and values made while traced)."""
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        held = {code.encode().decode(): bytes(bytearray(packed)) for code, packed in entries}
        size = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del held
        return size / max(1, len(entries))

    archived = []
    for code, packed in live:
        state = DossierState.from_bytes(packed)
        state.archived = True
        archived.append((code, state.to_bytes()))
    live_bytes, archived_bytes = weigh(live), weigh(archived)
    return {
        "dossiers": len(live),
        "bytes_per_live_dossier": round(live_bytes),
        "bytes_per_archived_dossier": round(archived_bytes),
        "archived_value_bytes": round(sum(len(p) for _, p in archived) / max(1, len(archived))),
    }


async def idle(bootstrap: str) -> dict[str, Any]:
    service = ServiceProcess(["ingest"], _env(bootstrap, None))
    async with running(service), httpx.AsyncClient(timeout=5) as client:
        await wait_ready(client, service.base)
        await asyncio.sleep(2.0)
        rss = service.rss_bytes()
    return {"case": "idle ingest (baseline)", "events": 0, "tracked": 0, "rss_mb": rss / 2**20}


async def loaded(
    bootstrap: str, events: list[SourceEvent], *, retention: str | None, case: str
) -> dict[str, Any]:
    env = _env(bootstrap, retention)
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap), [TopicSpec(env["GOVSYNC_TOPIC_DOSSIER"], 3)]
    )
    await produce_all(bootstrap, env["GOVSYNC_TOPIC_DOSSIER"], events)
    service = ServiceProcess(["ingest"], env)
    peak = 0
    async with running(service), httpx.AsyncClient(timeout=10) as client:
        await wait_ready(client, service.base)
        started = time.monotonic()
        decided = 0.0
        async with asyncio.timeout(3600):
            while decided < len(events):
                decided = total(await samples(client, service.base), "govsync_events_total")
                peak = max(peak, service.rss_bytes())
                await asyncio.sleep(1.0)
        seconds = time.monotonic() - started
        if retention:
            # Wait for an eviction pass after the last event (the worker runs one every 60 s).
            found = await samples(client, service.base)
            before = total(found, "govsync_ingest_dossiers_evicted_total")
            evicted = before
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EVICTION_INTERVAL_SECONDS + 15):
                    while evicted == before:
                        await asyncio.sleep(1.0)
                        found = await samples(client, service.base)
                        evicted = total(found, "govsync_ingest_dossiers_evicted_total")
            await asyncio.sleep(2.0)
        found = await samples(client, service.base)
        rss = service.rss_bytes()
    return {
        "case": case,
        "events": int(decided),
        "seconds": round(seconds, 1),
        "tracked": int(total(found, "govsync_ingest_dossiers_tracked")),
        "archived": int(total(found, "govsync_ingest_dossiers_archived")),
        "evicted": int(total(found, "govsync_ingest_dossiers_evicted_total")),
        "rss_mb": rss / 2**20,
        "peak_rss_mb": peak / 2**20,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    # Dossier (DongBoHoSoMC) events only: with progress steps as well, a million events would
    # cover some 145,000 dossiers instead of the 200,000 the target names.
    events, generator = generate_events(
        args.events, dossiers=args.dossiers, options=TrafficOptions(progress_share=0.0)
    )
    finished = sum(t.finished for t in generator.truth.agencies.values())
    print(
        f"{len(events):,} events over {generator.truth.dossiers:,} dossiers"
        f" ({finished:,} finished) generated"
    )
    with broker() as bootstrap:
        base = await idle(bootstrap)
        keep = await loaded(bootstrap, events, retention=None, case="keep finished (30 days)")
        evict = await loaded(bootstrap, events, retention="PT1S", case="evict finished (PT1S)")
    cost = archive_cost(events[:SAMPLE_EVENTS])
    rows = [base, keep, evict]
    print(
        table(
            ["case", "events", "held", "archived", "RSS MB", "peak RSS MB", "over idle MB"],
            [
                [
                    r["case"],
                    r["events"],
                    r["tracked"],
                    r.get("archived", 0),
                    round(r["rss_mb"], 1),
                    round(r.get("peak_rss_mb", r["rss_mb"]), 1),
                    round(r["rss_mb"] - base["rss_mb"], 1),
                ]
                for r in rows
            ],
        )
    )
    worst = max(keep["peak_rss_mb"], evict["peak_rss_mb"])
    verdict = "meets" if worst < TARGET_MB else "MISSES"
    archive_mb = evict["archived"] * cost["bytes_per_archived_dossier"] / 2**20
    print(
        f"peak RSS {worst:.0f} MB ({verdict} the < {TARGET_MB:.0f} MB target);"
        f" a held dossier costs {cost['bytes_per_live_dossier']} bytes live,"
        f" {cost['bytes_per_archived_dossier']} archived ({cost['archived_value_bytes']} of them"
        f" its packed state, over {cost['dossiers']:,} dossiers);"
        f" the evicting run's archive: {evict['archived']:,} entries, about {archive_mb:.0f} MB"
    )
    report = {
        "events": len(events),
        "dossiers": generator.truth.dossiers,
        "finished_dossiers": finished,
        "idle": base,
        "keep": keep,
        "evict": evict,
        "target_mb": TARGET_MB,
        "archive_cost": cost,
        "archive_mb": round(archive_mb, 1),
    }
    write_report("ingest_memory", report)
    return report


def cli() -> None:
    run_async(main(arguments(__doc__, events=1_000_000, dossiers=200_000)))


if __name__ == "__main__":
    cli()
