"""Scores throughput: records applied per second by the scores worker vs. a bare consume loop of
the same records on the same broker, on SQLite and on PostgreSQL (target: a ratio of 0.5 or more).

    uv run python -m bench.scores_throughput [--dossiers 5000] [--revisions 4]

The records are `DossierRecord`s carrying their facts (as ingest publishes them), each dossier
revised `revisions` times, plus one portal acknowledgement per dossier on the acked topic. The
bare loop fetches every record of both topics and commits its offsets per batch; the worker
(`services.scores.consumer.ScoresWorker`) decodes, applies each batch in one transaction and
commits. PostgreSQL is the tests' server (`tests/support/database.py`). Writes a JSON report to
bench/results/.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.common import arguments, broker, table, write_report
from schemas.dossier import Channel, DossierHeader, DossierStatus, ProgressStep, RecordKind
from schemas.facts import DossierFacts, SyncAck
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.lifecycle import run_async
from services.common.settings import KafkaSettings
from services.scores.consumer import ScoresWorker
from services.scores.database import make_engine, migrate
from services.scores.metrics import ScoresMetrics
from services.scores.settings import ScoresOptions, ScoresSettings
from services.scores.store import ScoreStore
from tests.support.database import fresh_database, postgres_server
from tests.support.kafka import Topics
from tests.support.records import dossier_record

VN_START = datetime(2026, 1, 1, 1, tzinfo=UTC)
STATUSES = (DossierStatus.ACCEPTED, DossierStatus.IN_PROCESS, DossierStatus.FINISHED,
            DossierStatus.RETURNED)  # fmt: skip


def _facts(n: int, revision: int) -> DossierFacts:
    received = VN_START + timedelta(hours=n % 8000)
    status = STATUSES[min(revision - 1, len(STATUSES) - 1)]
    ended = received + timedelta(days=3 + n % 7) if status >= DossierStatus.FINISHED else None
    return DossierFacts(
        agency=f"000.00.{n % 20:02d}.H29",
        procedure_code=f"1.00{n % 50}",
        status=status,
        channel=Channel.ONLINE if n % 2 else Channel.IN_PERSON,
        received_at=received,
        due_at=received + timedelta(days=7),
        finished_at=ended,
        ended_at=ended,
        end_status=DossierStatus.FINISHED if ended else None,
        fee_bearing=n % 3 == 0,
        paid_online=1 if n % 6 == 0 else None,
        digitised=n % 4 == 0,
        attachments=True,
    )


def records(dossiers: int, revisions: int) -> Iterator[tuple[bytes, bytes]]:
    at = datetime.now(UTC)
    for revision in range(1, revisions + 1):
        for n in range(dossiers):
            code = f"H29.BENCH-{n:07d}"
            facts = _facts(n, revision)
            record = dossier_record(
                code, revision, RecordKind.PROGRESS, facts.status, agency=facts.agency or "",
                header=DossierHeader(), step=ProgressStep(handled_at=at, status=facts.status),
                at=at,
            )  # fmt: skip
            body = json.loads(record.model_dump_json())
            body["facts"] = json.loads(facts.model_dump_json())
            yield code.encode(), json.dumps(body).encode()


async def produce(settings: KafkaSettings, topics: Topics, dossiers: int, revisions: int) -> int:
    acked = topics.acked("portal")
    await ensure_topics(
        settings,
        [TopicSpec(topics.normalized, 6), TopicSpec.compacted(acked, 6),
         TopicSpec(topics.edocument_normalized, 6), TopicSpec(topics.dlq, 6)],
    )  # fmt: skip
    producer = make_producer(settings)
    count = 0
    async with producer:
        for key, value in records(dossiers, revisions):
            await producer.send(topics.normalized, value=value, key=key)
            count += 1
        for n in range(dossiers):
            ack = SyncAck(revision=revisions, received=True, header=n % 5 != 0)
            await producer.send(
                acked, value=ack.model_dump_json().encode(), key=f"H29.BENCH-{n:07d}".encode()
            )
            count += 1
        await producer.flush()
    return count


async def bare_loop(settings: KafkaSettings, topics: Topics, expected: int) -> float:
    group = f"bare-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(
        settings, topics.normalized, topics.acked("portal"), group_id=group, max_poll_records=2000
    )
    seen = 0
    async with consumer:
        started = time.perf_counter()
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            offsets = {}
            for tp, messages in batches.items():
                seen += len(messages)
                offsets[tp] = messages[-1].offset + 1
            if offsets:
                await consumer.commit(offsets)
        return time.perf_counter() - started


async def worker_loop(
    settings: KafkaSettings, topics: Topics, expected: int, url: str
) -> tuple[float, dict[str, Any]]:
    engine = make_engine(url)
    migrate(engine)
    store = ScoreStore(engine)
    store.prepare()
    options = ScoresSettings(
        kafka=settings, topic_dossier_normalized=topics.normalized,
        topic_edocument_normalized=topics.edocument_normalized, topic_dlq=topics.dlq,
        acked_topic_template=topics.acked_template, consumer_group=f"scores-{uuid.uuid4().hex[:8]}",
        scores=ScoresOptions(database_url=url),
    )  # fmt: skip
    consumer = make_consumer(
        settings, group_id=options.consumer_group, max_poll_records=options.scores.batch_max_records
    )
    producer = make_producer(settings)
    seen = applied = 0
    async with producer, consumer:
        worker = ScoresWorker(
            options, store, consumer=consumer, producer=producer,
            metrics=ScoresMetrics(CollectorRegistry()),
        )  # fmt: skip
        consumer.subscribe(worker.topics)
        started = time.perf_counter()
        while seen < expected:
            fetched = await consumer.getmany(timeout_ms=500, max_records=2000)
            if fetched:
                seen += sum(len(m) for m in fetched.values())
                result = await worker.process(fetched)
                applied += result.dossiers + result.acks
        seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, {"applied": applied, "batches": worker.applied_batches}


async def main_async(args: Any) -> dict[str, Any]:
    with broker() as bootstrap:
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        topics = Topics.unique("bench-scores", uuid.uuid4().hex[:8])
        count = await produce(settings, topics, args.dossiers, args.revisions)
        print(f"{count} records on the broker")
        bare = await bare_loop(settings, topics, count)
        results: dict[str, Any] = {"records": count, "bare_seconds": bare, "databases": {}}
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            urls = {"sqlite": f"sqlite:///{Path(tmp) / 'scores.sqlite3'}"}
            server = stack.enter_context(postgres_server())
            urls["postgresql"] = stack.enter_context(fresh_database(server))
            for name, url in urls.items():
                seconds, detail = await worker_loop(settings, topics, count, url)
                results["databases"][name] = {"seconds": seconds, **detail}
        rows = [["bare consume loop", count / bare, 1.0]]
        for name, found in results["databases"].items():
            rate = count / found["seconds"]
            found["records_per_second"] = rate
            found["ratio"] = bare / found["seconds"]
            rows.append([f"scores worker, {name}", rate, found["ratio"]])
        print(table(["loop", "records/s", "ratio"], rows))
        return results


def main() -> int:
    args = arguments(__doc__, dossiers=5000, revisions=4)
    report = run_async(main_async(args))
    write_report("scores_throughput", {"args": vars(args), **report})
    ratios = [d["ratio"] for d in report["databases"].values()]
    return 0 if all(r >= 0.5 for r in ratios) else 1


if __name__ == "__main__":
    raise SystemExit(main())
