"""The scores service on the real broker and a real database: the three topics applied, bad
records dead-lettered with the reason, offsets committed, and a replay of every topic from the
start (a new consumer group) changing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Engine, func, select

from schemas.dossier import DossierHeader, DossierStatus, ProgressStep, RecordKind
from schemas.edocument import Direction, SignatureVerdict
from schemas.facts import DossierFacts, SyncAck
from services.common.deadletter import REASON, STAGE
from services.common.kafka import client_options
from services.common.settings import KafkaSettings
from services.scores.database import make_engine, migrate
from services.scores.formulas import figures
from services.scores.main import run
from services.scores.periods import Period
from services.scores.settings import ScoresOptions, ScoresSettings
from services.scores.store import ScoreStore
from services.scores.tables import dossiers
from services.sync.main import prepare_topics
from services.sync.settings import SyncSettings, Target
from tests.support.kafka import Sent, Topics, create_topics, produce, read_topic
from tests.support.records import dossier_record
from tests.support.scores_cases import AGENCY, NOVEMBER, NOVEMBER_FIGURES, NOW_AFTER, at, facts

pytestmark = pytest.mark.kafka

MARKER = b"\x00govsync-restore-marker"


def record_value(code: str, revision: int, facts: DossierFacts) -> bytes:
    """A `DossierRecord` as ingest publishes it, carrying its facts."""
    record = dossier_record(
        code,
        revision,
        RecordKind.DOSSIER,
        facts.status,
        agency=facts.agency or AGENCY,
        header=DossierHeader(),
        step=ProgressStep(handled_at=datetime.now(UTC)),
    )
    body = json.loads(record.model_dump_json())
    body["facts"] = json.loads(facts.model_dump_json())
    return json.dumps(body).encode()


def ack_value(revision: int, header: bool) -> bytes:
    ack = SyncAck(revision=revision, received=header, header=header, at=datetime.now(UTC))
    return ack.model_dump_json().encode()


def edocument_value(document_id: str, verified: bool) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "document_id": document_id,
            "issuer": {"organ_id": AGENCY, "code_valid": True},
            "promulgation_date": "2026-11-09T17:00:00+00:00",
            "business_type": "new",
            "direction": Direction.OUTGOING.value,
            "signature": {
                "verdict": (
                    SignatureVerdict.VERIFIED if verified else SignatureVerdict.UNSIGNED
                ).value
            },
            "agency": AGENCY,
            "package_sha256": "0" * 64,
            "source": "test",
            "event_id": document_id,
            "event_time": now,
            "ingested_at": now,
        }
    ).encode()


def scores_settings(
    kafka: KafkaSettings, topics: Topics, group: str, **options: Any
) -> ScoresSettings:
    """The service on the test's topics, in consumer group `group`."""
    return ScoresSettings(
        kafka=kafka,
        topic_dossier_normalized=topics.normalized,
        topic_edocument_normalized=topics.edocument_normalized,
        topic_dlq=topics.dlq,
        acked_topic_template=topics.acked_template,
        consumer_group=group,
        scores=ScoresOptions(**options),
    )


def dossier_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(dossiers)).scalar_one())


@contextlib.asynccontextmanager
async def running(settings: ScoresSettings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop, serve_http=False, clock=lambda: NOW_AFTER))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(60):
            await task


async def until(check: object, what: str, within: float = 60.0) -> None:
    assert callable(check)
    try:
        async with asyncio.timeout(within):
            while True:
                if await asyncio.to_thread(check):
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not within {within}s: {what}") from None


async def test_topics_applied_replayed_and_dead_lettered(
    kafka_settings: KafkaSettings, unique: str, database_url: str
) -> None:
    topics = Topics.unique("scores", unique)
    acked = topics.acked("portal")
    await create_topics(
        kafka_settings, topics.normalized, topics.edocument_normalized, acked, topics.dlq
    )
    records = [Sent(record_value(c.code, 1, c.facts), c.code.encode()) for c in NOVEMBER]
    # D5's payment flag arrives on a later revision: 3.6 becomes 2/2.
    d5 = next(c for c in NOVEMBER if c.code == "D5").facts
    records.append(Sent(record_value("D5", 2, d5.model_copy(update={"paid_online": 1})), b"D5"))
    records.append(Sent(b'{"dossier_code": "BAD", "revision": 1}', b"BAD"))  # no facts
    acks = [Sent(ack_value(1, c.portal_holds), c.code.encode()) for c in NOVEMBER]
    acks += [Sent(b"marker-value", MARKER), Sent(None, b"D1-tombstone")]
    docs = [
        Sent(edocument_value("DOC1", True), b"DOC1", (("govsync-record-type", b"edocument"),)),
        Sent(edocument_value("DOC2", False), b"DOC2", (("govsync-record-type", b"edocument"),)),
    ]
    await produce(kafka_settings, topics.normalized, records)
    await produce(kafka_settings, acked, acks)
    await produce(kafka_settings, topics.edocument_normalized, docs)

    def settings(group: str) -> ScoresSettings:
        return scores_settings(
            kafka_settings, topics, group, database_url=database_url, metrics_refresh_seconds=0.5
        )

    engine = make_engine(database_url)
    migrate(engine)  # before the service starts: this test reads the tables meanwhile
    period = Period.parse("2026-11")

    def figures_now() -> dict[str, tuple[int, int]]:
        store = ScoreStore(engine)
        found = figures(store.sums([AGENCY], period, now=NOW_AFTER), catalogue_configured=False)
        return {f.id: (f.numerator, f.denominator) for f in found}

    expected = {k: (n, d) for k, (n, d, _, _) in NOVEMBER_FIGURES.items()}
    expected["3.6"] = (2, 2)
    expected["signature"] = (1, 2)
    try:
        group = f"scores-{unique}"
        async with running(settings(group)):
            await until(lambda: figures_now() == expected, "the November figures")
            letters = await read_topic(kafka_settings, topics.dlq, at_least=1)
        assert len(letters) == 1
        assert letters[0].key == b"BAD"
        assert b"facts" in letters[0].headers[REASON]
        assert letters[0].headers[STAGE] == b"scores"
        # Every record finished: the group's offsets are at the end of every partition.
        await _assert_committed(kafka_settings, group, [topics.normalized, acked])
        # A replay of every topic from the start: the figures do not move.
        replay = f"scores-replay-{unique}"
        async with running(settings(replay)):
            await _wait_committed(kafka_settings, replay, [topics.normalized, acked])
            assert figures_now() == expected
    finally:
        engine.dispose()


async def _ends(
    settings: KafkaSettings, group: str, names: list[str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()]
        if not tps:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()
            ]
        ends = await consumer.end_offsets(tps)
        committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
        return ends, committed
    finally:
        await consumer.stop()


async def _assert_committed(settings: KafkaSettings, group: str, names: list[str]) -> None:
    ends, committed = await _ends(settings, group, names)
    # At or past the reported end (the embedded broker reports its last batch's base + 1).
    assert all(committed[tp] >= end for tp, end in ends.items())


async def _wait_committed(settings: KafkaSettings, group: str, names: list[str]) -> None:
    async with asyncio.timeout(60):
        while True:
            ends, committed = await _ends(settings, group, names)
            if ends and all(committed[tp] >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_a_rebalance_mid_stream_loses_and_doubles_nothing(
    kafka_settings: KafkaSettings, unique: str, database_url: str
) -> None:
    """Records keep arriving while a second worker joins the group and later leaves it: at each
    rebalance the batch being applied commits before its partitions go, and one fetched before
    it is applied but left to the next owner. The figures are exact and every offset ends
    committed."""
    topics = Topics.unique("scores-rb", unique)
    acked = topics.acked("portal")
    await create_topics(
        kafka_settings, topics.normalized, topics.edocument_normalized, acked, topics.dlq
    )
    other = "000.00.99.H99"
    fillers = 1200
    records = []
    for n in range(fillers):
        for revision in (1, 2):  # revision 2 finishes the dossier, on time
            done = at(11, 3 + n % 20, 9) if revision == 2 else None
            filler = facts(
                agency=other,
                status=DossierStatus.FINISHED if done else DossierStatus.IN_PROCESS,
                received_at=at(11, 2 + n % 20, 9),
                due_at=at(11, 28, 17),
                finished_at=done,
                ended_at=done,
                end_status=DossierStatus.FINISHED if done else None,
            )
            records.append(Sent(record_value(f"F{n}", revision, filler), f"F{n}".encode()))
    records += [Sent(record_value(c.code, 1, c.facts), c.code.encode()) for c in NOVEMBER]
    await produce(
        kafka_settings,
        acked,
        [Sent(ack_value(1, c.portal_holds), c.code.encode()) for c in NOVEMBER],
    )
    group = f"scores-rb-{unique}"
    settings = scores_settings(
        kafka_settings, topics, group, database_url=database_url, batch_max_records=20
    )
    engine = make_engine(database_url)
    migrate(engine)
    store = ScoreStore(engine)
    november = Period.parse("2026-11")
    sent = 0

    async def trickle() -> None:
        nonlocal sent
        for i in range(0, len(records), 40):
            await produce(kafka_settings, topics.normalized, records[i : i + 40])
            sent = i + 40
            await asyncio.sleep(0.25)

    try:
        async with running(settings):
            await until(
                lambda: dossier_rows(engine) > 0, "the first worker applying the acknowledgements"
            )
            producing = asyncio.create_task(trickle())
            await until(lambda: sent >= len(records) // 6, "a sixth of the records sent")
            async with running(settings):
                await until(lambda: sent >= 2 * len(records) // 3, "two thirds sent", 120)
            await producing
            await _wait_committed(kafka_settings, group, [topics.normalized, acked])
        got = {
            f.id: (f.numerator, f.denominator)
            for f in figures(
                store.sums([AGENCY], november, now=NOW_AFTER), catalogue_configured=False
            )
        }
        assert got == {k: (n, d) for k, (n, d, _, _) in NOVEMBER_FIGURES.items()} | {
            "signature": (0, 0)
        }
        # Every filler received in November and finished on time there (by construction).
        filled = figures(store.sums([other], november, now=NOW_AFTER), catalogue_configured=False)
        by_id = {f.id: (f.numerator, f.denominator) for f in filled}
        assert by_id["4.5b"][1] == fillers
        assert by_id["2.1"] == (fillers, fillers)
        with engine.connect() as conn:
            assert store.stored_counts(conn) == store.expected_counts(conn)
    finally:
        engine.dispose()


async def test_the_acknowledgements_topic_is_left_to_the_portal_sync(
    kafka_settings: KafkaSettings, unique: str, database_url: str
) -> None:
    """Scores started before the portal sync does not bring the acknowledgements topic into
    being: a broker that creates topics on demand would give it its own default partition count,
    and the sync refuses one not co-partitioned with the normalised topic. Once the sync has
    created it, scores reads it."""
    topics = Topics.unique("scores-first", unique)
    acked = topics.acked("portal")
    await create_topics(kafka_settings, topics.normalized, topics.edocument_normalized, topics.dlq)
    await produce(
        kafka_settings,
        topics.normalized,
        [Sent(record_value(c.code, 1, c.facts), c.code.encode()) for c in NOVEMBER],
    )
    settings = scores_settings(
        kafka_settings, topics, f"scores-first-{unique}", database_url=database_url
    )
    engine = make_engine(database_url)
    migrate(engine)
    november = Period.parse("2026-11")

    def synced() -> tuple[int, int]:
        found = figures(
            ScoreStore(engine).sums([AGENCY], november, now=NOW_AFTER), catalogue_configured=False
        )
        return next((f.numerator, f.denominator) for f in found if f.id == "1.4")

    try:
        async with running(settings):
            await until(
                lambda: dossier_rows(engine) == len(NOVEMBER), "the dossier records applied"
            )
            await asyncio.sleep(2)  # metadata refreshes of the running consumer
            assert acked not in await topic_names(kafka_settings)
            sync = SyncSettings(
                kafka=kafka_settings,
                topic_dossier_normalized=topics.normalized,
                topic_dlq=topics.dlq,
                acked_topic_template=topics.acked_template,
            )
            await prepare_topics(sync, Target.PORTAL)  # what the sync does as it starts
            await produce(
                kafka_settings,
                acked,
                [Sent(ack_value(1, c.portal_holds), c.code.encode()) for c in NOVEMBER],
            )
            want = NOVEMBER_FIGURES["1.4"][:2]
            await until(lambda: synced() == want, "the acknowledgements applied")
    finally:
        engine.dispose()


async def topic_names(settings: KafkaSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()
