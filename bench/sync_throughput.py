"""Sync throughput: records/s through `govsync sync` vs. bare httpx posts of the same bodies.

    uv run python -m bench.sync_throughput [--records 4000] [--in-flight 32] [--latency-ms 50]

The simulator runs in its own process (`govsync simulate`) so that it does not share a core's
event loop with the worker. Case 1, zero latency: the NDXP worker (one request per record,
Kafka fetch, ordering, acknowledged-revision writes, commits) against a baseline that posts the
same JSON bodies with httpx at the same concurrency, in the same run. The portal worker (batched
DongBoHoSoMC) is shown beside them. Case 2, 50 ms latency per request: the NDXP worker against
the bound 0.8 x in-flight / latency, with the simulator checking that no dossier went backwards.
Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from bench.common import (
    ServiceProcess,
    arguments,
    broker,
    running,
    table,
    wait_ready,
    write_report,
)
from schemas.dossier import (
    DossierHeader,
    DossierRecord,
    DossierStatus,
    ProgressStep,
    RecordKind,
    Timeliness,
)
from schemas.facts import DossierFacts
from services.common.kafka import TopicSpec, ensure_topics, make_producer
from services.common.lifecycle import run_async
from services.common.settings import KafkaSettings
from services.sync.main import run
from services.sync.mapping import ndxp_status
from services.sync.settings import (
    DeliverySettings,
    NdxpSettings,
    PortalSettings,
    SyncSettings,
    Target,
)
from tests.support.kafka import Topics


def make_stream(prefix: str, records: int, revisions: int = 3) -> list[DossierRecord]:
    """`records` records over records/revisions dossiers, interleaved, each dossier in order."""
    now = datetime.now(UTC)
    per: list[list[DossierRecord]] = []
    for n in range(records // revisions):
        code = f"{prefix}-{n:06d}"
        per.append(
            [
                DossierRecord(
                    dossier_code=code,
                    agency="000.00.10.H29",
                    revision=r,
                    kind=RecordKind.DOSSIER if r == 1 else RecordKind.PROGRESS,
                    status=DossierStatus(min(r + 1, 10)),
                    timeliness=Timeliness.IN_PROGRESS,
                    source="bench",
                    event_id=f"{code}-{r}",
                    event_time=now,
                    ingested_at=now,
                    facts=DossierFacts(
                        agency="000.00.10.H29", status=DossierStatus(min(r + 1, 10))
                    ),
                    header=DossierHeader(procedure_code="1.0001", received_at=now)
                    if r == 1
                    else None,
                    step=ProgressStep(handled_at=now, status=DossierStatus(min(r + 1, 10)))
                    if r > 1
                    else None,
                )
                for r in range(1, revisions + 1)
            ]
        )
    rng = random.Random(1)
    stream: list[DossierRecord] = []
    cursors = [0] * len(per)
    live = list(range(len(per)))
    while live:
        i = rng.choice(live)
        stream.append(per[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(per[i]):
            live[live.index(i)] = live[-1]
            live.pop()
    return stream


async def wait_delivered(
    client: httpx.AsyncClient, destination: str, finals: dict[str, int], within: float
) -> None:
    async with asyncio.timeout(within):
        while True:
            revisions = (await client.get("/_sim/revisions")).json()[destination]
            if all(revisions.get(code) == rev for code, rev in finals.items()):
                return
            await asyncio.sleep(0.2)  # polling costs the simulator CPU: keep it rare


async def sync_case(
    kafka: KafkaSettings,
    sim: ServiceProcess,
    target: Target,
    stream: list[DossierRecord],
    in_flight: int,
) -> dict[str, Any]:
    """Records/s from the first produced record to the last acknowledgement, worker warmed up."""
    unique = uuid.uuid4().hex[:8]
    topics = Topics.unique("bench", unique)
    settings = SyncSettings(
        kafka=kafka,
        allow_http=True,
        portal=PortalSettings(
            url=f"{sim.base}/portal", password=SecretStr("secret"), dstcode="DVCQG"
        ),
        ndxp=NdxpSettings(url=f"{sim.base}/ndxp", client_secret=SecretStr("secret")),
        delivery=DeliverySettings(max_in_flight=in_flight, max_buffered=5000),
        topic_dossier_normalized=topics.normalized,
        topic_dlq=topics.dlq,
        acked_topic_template=topics.acked_template,
        group_prefix=topics.sync_group_prefix,
    )
    topic = settings.topic_dossier_normalized
    await ensure_topics(kafka, [TopicSpec(topic, 6)])
    stop = asyncio.Event()
    worker = asyncio.create_task(run(settings, target, stop, serve_http=False))
    async with (
        httpx.AsyncClient(base_url=sim.base, timeout=30) as client,
        make_producer(kafka) as producer,
    ):
        warm = make_stream(f"warm{unique}", 3, revisions=1)
        await producer.send_and_wait(topic, key=b"w", value=warm[0].model_dump_json().encode())
        await wait_delivered(client, target.value, {warm[0].dossier_code: 1}, 60)
        regressions_before = len((await client.get("/_sim/regressions")).json())
        finals = {r.dossier_code: r.revision for r in stream}
        started = time.perf_counter()
        for r in stream:
            await producer.send(
                topic, key=r.dossier_code.encode(), value=r.model_dump_json().encode()
            )
        await producer.flush()
        await wait_delivered(client, target.value, finals, 600)
        elapsed = time.perf_counter() - started
        regressions = len((await client.get("/_sim/regressions")).json()) - regressions_before
    stop.set()
    await worker
    return {
        "case": f"govsync sync --target {target.value}",
        "records": len(stream),
        "seconds": round(elapsed, 3),
        "records_per_second": round(len(stream) / elapsed, 1),
        "regressions": regressions,
    }


async def baseline_case(
    sim: ServiceProcess, stream: list[DossierRecord], in_flight: int
) -> dict[str, Any]:
    """The same NDXP bodies posted with bare httpx, `in_flight` at a time, no ordering."""
    bodies = [json.dumps(ndxp_status(r), ensure_ascii=False).encode() for r in stream]
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=f"{sim.base}/ndxp", limits=limits, timeout=30) as client:
        token = (
            await client.post(
                "/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "govsync",
                    "client_secret": "secret",
                },
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        queue = iter(bodies)

        async def lane() -> None:
            for body in queue:
                response = await client.post("/dossier/v1/status", content=body, headers=headers)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return {
        "case": "bare httpx posts (baseline)",
        "records": len(stream),
        "seconds": round(elapsed, 3),
        "records_per_second": round(len(stream) / elapsed, 1),
        "regressions": None,
    }


async def set_latency(sim: ServiceProcess, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=sim.base) as client:
        await client.post("/_sim/faults", json={"latency_seconds": seconds})


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with broker() as bootstrap:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        async with running(ServiceProcess.simulator()) as sim:
            async with httpx.AsyncClient(timeout=1) as client:
                await wait_ready(client, sim.base, 20, path="/_sim/stats")
            zero = make_stream("z", args.records)
            baseline = await baseline_case(sim, make_stream("b", args.records), args.in_flight)
            ndxp = await sync_case(kafka, sim, Target.NDXP, zero, args.in_flight)
            portal = await sync_case(
                kafka, sim, Target.PORTAL, make_stream("p", args.records), args.in_flight
            )
            await set_latency(sim, args.latency_ms / 1000)
            slow_records = args.latency_records
            slow = await sync_case(
                kafka, sim, Target.NDXP, make_stream("l", slow_records), args.in_flight
            )
            slow["case"] += f" @{args.latency_ms:g} ms"
    bound = 0.8 * args.in_flight / (args.latency_ms / 1000)
    report = {
        "at": datetime.now(UTC).isoformat(),
        "in_flight": args.in_flight,
        "zero_latency": {
            "baseline": baseline,
            "ndxp": ndxp,
            "portal": portal,
            "ndxp_vs_baseline": round(
                ndxp["records_per_second"] / baseline["records_per_second"], 3
            ),
        },
        "latency": {
            "latency_ms": args.latency_ms,
            "ndxp": slow,
            "bound_records_per_second": round(bound, 1),
            "ratio_to_bound": round(slow["records_per_second"] / bound, 3),
        },
    }
    rows = [baseline, ndxp, portal, slow]
    print(
        table(
            ["case", "records", "seconds", "rec/s", "regressions"],
            [
                [
                    r["case"],
                    r["records"],
                    r["seconds"],
                    r["records_per_second"],
                    "-" if r["regressions"] is None else r["regressions"],
                ]
                for r in rows
            ],
        )
    )
    print(f"ndxp / baseline at zero latency: {report['zero_latency']['ndxp_vs_baseline']}")
    print(
        f"at {args.latency_ms:g} ms: {slow['records_per_second']} rec/s vs bound"
        f" 0.8 x {args.in_flight} / {args.latency_ms / 1000:g} s = {bound:.0f} rec/s"
        f" (ratio {report['latency']['ratio_to_bound']}), regressions {slow['regressions']}"
    )
    write_report("sync_throughput", report)
    return report


def cli() -> None:
    run_async(
        main(arguments(__doc__, records=4000, latency_records=3000, in_flight=32, latency_ms=50.0))
    )


if __name__ == "__main__":
    cli()
