"""Scores throughput: records applied per second by the scores worker vs. a bare consume loop of
the same records on the same broker, on SQLite and on PostgreSQL (target: a ratio of 0.5 or more).

    uv run python -m bench.scores_throughput [--dossiers 5000] [--revisions 4] [--before REF]
        [--freeze 1]

The records are `DossierRecord`s carrying their facts (as ingest publishes them), each dossier
revised `revisions` times (revision by revision, as a backlog of every dossier would arrive),
plus one portal acknowledgement per dossier on the acked topic. The bare loop fetches every
record of both topics with the worker's fetch settings and commits its offsets per batch; it
runs before and after the workers, and the faster of the two is the baseline. The worker
(`services.scores.consumer.ScoresWorker.run`, as the service runs it) decodes, applies each
batch in one transaction and commits; it is timed from the group's assignment until every record
is committed. `--before REF` also runs the scores package as of a git revision (extracted with
`git archive`, driven as that version's own benchmark drove it) on the same broker and records:
the ratio before and after a change in one run. PostgreSQL is the tests' server
(`tests/support/database.py`). Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry

from bench.common import ROOT, arguments, broker, table, write_report
from schemas.dossier import Channel, DossierHeader, DossierStatus, ProgressStep, RecordKind
from schemas.facts import DossierFacts, SyncAck
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.lifecycle import freeze_startup_objects, run_async
from services.common.settings import KafkaSettings
from services.scores.main import fetch_options
from services.scores.settings import ScoresOptions, ScoresSettings
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


def _options(settings: KafkaSettings, topics: Topics, url: str) -> ScoresSettings:
    return ScoresSettings(
        kafka=settings, topic_dossier_normalized=topics.normalized,
        topic_edocument_normalized=topics.edocument_normalized, topic_dlq=topics.dlq,
        acked_topic_template=topics.acked_template, consumer_group=f"scores-{uuid.uuid4().hex[:8]}",
        scores=ScoresOptions(database_url=url),
    )  # fmt: skip


async def bare_loop(settings: KafkaSettings, topics: Topics, expected: int) -> float:
    """Fetch every record with the worker's own fetch settings and commit per batch."""
    fetch = fetch_options(_options(settings, topics, "sqlite://"))
    group = f"bare-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(
        settings, topics.normalized, topics.acked("portal"), group_id=group, **fetch
    )
    seen = 0
    async with consumer:
        started = time.perf_counter()
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=fetch["max_poll_records"])
            offsets = {}
            for tp, messages in batches.items():
                seen += len(messages)
                offsets[tp] = messages[-1].offset + 1
            if offsets:
                await consumer.commit(offsets)
        return time.perf_counter() - started


async def worker_loop(
    settings: KafkaSettings,
    topics: Topics,
    expected: int,
    url: str,
    package: str = "services.scores",
) -> tuple[float, dict[str, Any]]:
    """The service's worker as it runs (`ScoresWorker.run`), timed from its start until it has
    applied and committed every record; `package` is this tree's or one from `load_before`."""
    engine, store, options = _prepared(package, settings, topics, url, group="scores")
    fetch = _module(package, "main").fetch_options(options)
    consumer = make_consumer(settings, group_id=options.consumer_group, **fetch)
    producer = make_producer(settings)
    metrics = _module(package, "metrics").ScoresMetrics(CollectorRegistry())
    async with producer, consumer:
        worker = _module(package, "consumer").ScoresWorker(
            options, store, consumer=consumer, producer=producer, metrics=metrics
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        # Timed from the group's assignment, as the bare loop is (its consumer joins in
        # `start`); polled: 10 ms at most on a figure of seconds.
        while not consumer.assignment() and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        while worker.records_done < expected and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        stop.set()
        await task
    engine.dispose()

    def outcome(kind: str, name: str) -> int:
        return int(metrics.records.labels(kind, name)._value.get())

    detail = {
        "batches": worker.applied_batches,
        "dossiers_applied": outcome("dossier", "applied"),
        "dossiers_stale": outcome("dossier", "stale"),
        "acks_applied": outcome("ack", "applied"),
    }
    return seconds, detail


def load_before(ref: str, into: Path) -> str:
    """Extract `services/scores` as of `ref` into `into` as the package `scores_before`; its
    imports of itself are rewritten, everything else (schemas, common) is today's."""
    archive = subprocess.run(  # noqa: S603 - fixed arguments
        ["git", "-C", str(ROOT), "archive", ref, "services/scores"],  # noqa: S607
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "scores_before"
    (into / "services" / "scores").rename(package)
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8").replace("services.scores", "scores_before")
        source.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(into))
    return "scores_before"


def _module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def _prepared(
    package: str, settings: KafkaSettings, topics: Topics, url: str, *, group: str
) -> tuple[Any, Any, Any]:
    """`package`'s migrated database, its prepared store and its settings for the bench's
    topics, under a fresh consumer group named after `group`."""
    database = _module(package, "database")
    engine = database.make_engine(url)
    database.migrate(engine)
    store = _module(package, "store").ScoreStore(engine)
    store.prepare()
    configured = _module(package, "settings")
    options = configured.ScoresSettings(
        kafka=settings, topic_dossier_normalized=topics.normalized,
        topic_edocument_normalized=topics.edocument_normalized, topic_dlq=topics.dlq,
        acked_topic_template=topics.acked_template,
        consumer_group=f"{group}-{uuid.uuid4().hex[:8]}",
        scores=configured.ScoresOptions(database_url=url),
    )  # fmt: skip
    return engine, store, options


async def before_loop(
    package: str, settings: KafkaSettings, topics: Topics, expected: int, url: str
) -> tuple[float, dict[str, Any]]:
    """The extracted version's worker as that version's benchmark drove it: `run` where it has
    one (`worker_loop`), else fed batch by batch with `process` and its fetch size; timed from
    the group's assignment."""
    if hasattr(_module(package, "consumer").ScoresWorker, "run"):
        return await worker_loop(settings, topics, expected, url, package)
    engine, store, options = _prepared(package, settings, topics, url, group="before")
    limit = options.scores.batch_max_records
    consumer = make_consumer(settings, group_id=options.consumer_group, max_poll_records=limit)
    producer = make_producer(settings)
    seen = 0
    started: float | None = None
    async with producer, consumer:
        worker = _module(package, "consumer").ScoresWorker(
            options, store, consumer=consumer, producer=producer,
            metrics=_module(package, "metrics").ScoresMetrics(CollectorRegistry()),
        )  # fmt: skip
        consumer.subscribe(worker.topics)
        while seen < expected:
            fetched = await consumer.getmany(timeout_ms=50, max_records=limit)
            if started is None and consumer.assignment():
                started = time.perf_counter()
            if fetched:
                seen += sum(len(m) for m in fetched.values())
                await worker.process(fetched)
        seconds = time.perf_counter() - (started or 0.0)
    engine.dispose()
    return seconds, {"batches": worker.applied_batches}


async def main_async(args: Any) -> dict[str, Any]:
    with broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        topics = Topics.unique("bench-scores", uuid.uuid4().hex[:8])
        count = await produce(settings, topics, args.dossiers, args.revisions)
        print(f"{count} records on the broker")
        package = load_before(args.before, Path(tmp) / "before") if args.before else None
        if args.freeze:
            # As the service does once started (`freeze_startup_objects`). Every loop runs in
            # this one process, so the bare loop gains from it too; `--freeze 0` measures as
            # before it (the imports' heap walked by every full collection, in each loop).
            freeze_startup_objects()
        bare = [await bare_loop(settings, topics, count)]
        results: dict[str, Any] = {"records": count, "databases": {}}
        with contextlib.ExitStack() as stack:
            urls = {"sqlite": f"sqlite:///{Path(tmp) / 'scores.sqlite3'}"}
            server = stack.enter_context(postgres_server())
            urls["postgresql"] = stack.enter_context(fresh_database(server))
            for name, url in urls.items():
                if package is not None:
                    before_url = (
                        f"sqlite:///{Path(tmp) / 'before.sqlite3'}"
                        if name == "sqlite"
                        else stack.enter_context(fresh_database(server))
                    )
                    seconds, detail = await before_loop(
                        package, settings, topics, count, before_url
                    )
                    results["databases"][f"{name}, before ({args.before})"] = {
                        "seconds": seconds,
                        **detail,
                    }
                seconds, detail = await worker_loop(settings, topics, count, url)
                results["databases"][name] = {"seconds": seconds, **detail}
        bare.append(await bare_loop(settings, topics, count))
        baseline = min(bare)
        results["bare_seconds"] = bare
        rows = [["bare consume loop (faster of 2)", count / baseline, 1.0]]
        for name, found in results["databases"].items():
            rate = count / found["seconds"]
            found["records_per_second"] = rate
            found["ratio"] = baseline / found["seconds"]
            rows.append([f"scores worker, {name}", rate, found["ratio"]])
        print(table(["loop", "records/s", "ratio"], rows))
        return results


def main() -> int:
    args = arguments(__doc__, dossiers=5000, revisions=4, before="", freeze=1)
    report = run_async(main_async(args))
    write_report("scores_throughput", {"args": vars(args), **report})
    ratios = [d["ratio"] for name, d in report["databases"].items() if "before" not in name]
    return 0 if all(r >= 0.5 for r in ratios) else 1


if __name__ == "__main__":
    raise SystemExit(main())
