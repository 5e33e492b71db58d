"""Acceptance: a stream of dossier records reaches the simulated portal and NDXP through faults.

Both workers run in-process against the session's broker and a simulator served by uvicorn with
10% errors, random 429s, expired sessions and tokens, a short outage and a few dossiers the
destinations refuse. Every dossier must end in its final normalised state at both destinations,
no regression may ever be seen, and the dead-letter topic must hold exactly the refused records.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest
from aiokafka import TopicPartition
from pydantic import SecretStr

from schemas.dossier import DossierRecord
from services.common import deadletter
from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.settings import KafkaSettings
from services.simulator.faults import Faults
from services.simulator.server import RunningSimulator, running_simulator
from services.simulator.simulator import Simulator
from services.sync.main import run
from services.sync.mapping import dossier_item
from services.sync.settings import (
    DeliverySettings,
    NdxpSettings,
    PortalSettings,
    SyncSettings,
    Target,
)
from tests.integration.sync.helpers import wait_until
from tests.support.records import dossier_stream, final_records, last_headers

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OUTAGE_SECONDS = float(os.environ.get("GOVSYNC_TEST_OUTAGE_SECONDS", "2"))
DOSSIERS = int(os.environ.get("GOVSYNC_TEST_DOSSIERS", "150"))


def sync_settings(
    kafka: KafkaSettings, running: RunningSimulator, unique: str, **delivery: object
) -> SyncSettings:
    return SyncSettings(
        kafka=kafka,
        allow_http=True,
        portal=PortalSettings(
            url=running.portal_url,
            password=SecretStr("secret"),
            dstcode="DVCQG",
            madonvi="000.00.10.H29",
            linger_ms=10,
            batch_size=20,
            timeout_seconds=5,
        ),
        ndxp=NdxpSettings(
            url=running.ndxp_url, client_secret=SecretStr("secret"), timeout_seconds=5
        ),
        delivery=DeliverySettings.model_validate(
            {
                "max_in_flight": 32,
                "backoff_initial_seconds": 0.05,
                "backoff_max_seconds": 0.5,
                "breaker_failure_threshold": 5,
                "breaker_reset_seconds": 0.3,
                "commit_interval_seconds": 0.2,
                "revoke_drain_seconds": 1,
            }
            | delivery
        ),
        topic_dossier_normalized=f"test.normalized.{unique}",
        topic_dlq=f"test.dlq.{unique}",
        acked_topic_template=f"test.sync.{{target}}.acked.{unique}",
        group_prefix=f"test-sync-{unique}-",
        http_port=0,
        shutdown_budget_seconds=10,
    )


async def produce(kafka: KafkaSettings, topic: str, records: list[DossierRecord]) -> None:
    async with make_producer(kafka) as producer:
        futures = [
            await producer.send(
                topic, key=r.dossier_code.encode(), value=r.model_dump_json().encode()
            )
            for r in records
        ]
        await asyncio.gather(*futures)


async def dead_letters(kafka: KafkaSettings, topic: str, expected: int) -> list[tuple[str, str]]:
    """(stage, key) of the dead letters, read until `expected` arrived and a moment passed."""
    found: list[tuple[str, str]] = []
    consumer = make_consumer(kafka, group_id=None)
    async with consumer:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(30):
            quiet = 0
            while len(found) < expected or quiet < 3:
                batches = await consumer.getmany(*tps, timeout_ms=200)
                quiet = 0 if batches else quiet + 1
                for messages in batches.values():
                    for m in messages:
                        stage = dict(m.headers)[deadletter.STAGE].decode()
                        found.append((stage, m.key.decode()))
    return found


async def test_every_dossier_reaches_both_destinations_through_faults(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    stream = dossier_stream(f"HS{unique}", DOSSIERS, max_revisions=6)
    refused = {stream[3].dossier_code, stream[10].dossier_code, stream[50].dossier_code}
    sim = Simulator(
        Faults(
            error_rate=0.1,
            rate_limit_rate=0.05,
            retry_after_seconds=0.2,
            reject_dossiers=refused,
            session_max_uses=40,
            token_ttl_seconds=3,
        ),
        seed=3,
    )
    async with running_simulator(sim) as running:
        settings = sync_settings(kafka_settings, running, unique)
        await ensure_topics(
            kafka_settings,
            [TopicSpec(settings.topic_dossier_normalized, 3), TopicSpec(settings.topic_dlq, 3)],
        )
        half = len(stream) // 2
        await produce(kafka_settings, settings.topic_dossier_normalized, stream[:half])
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(run(settings, target, stop, serve_http=False))
            for target in (Target.PORTAL, Target.NDXP)
        ]
        try:
            finals = final_records(stream)

            async def some_delivered() -> bool:
                return len(sim.state.portal) > 10 and len(sim.state.ndxp) > 10

            await wait_until(some_delivered, within=30)
            sim.start_outage(OUTAGE_SECONDS)
            await produce(kafka_settings, settings.topic_dossier_normalized, stream[half:])
            sim.expire_sessions()
            sim.expire_tokens()
            expected = {c: r for c, r in finals.items() if c not in refused}

            async def all_delivered() -> bool:
                for workers_task in workers:
                    if workers_task.done():
                        workers_task.result()
                portal = sim.state.portal
                ndxp = sim.state.ndxp
                return all(
                    code in portal
                    and portal[code].revision == r.revision
                    and code in ndxp
                    and ndxp[code]["revision"] == r.revision
                    for code, r in expected.items()
                )

            await wait_until(all_delivered, within=60, interval=0.2)
        finally:
            stop.set()
            async with asyncio.timeout(20):
                results = await asyncio.gather(*workers, return_exceptions=True)
        assert [r for r in results if r is not None] == []

    assert sim.state.regressions == []
    headers = last_headers(stream)
    for code, final in expected.items():
        at_portal = sim.state.portal[code]
        assert at_portal.status == final.status, code
        assert at_portal.header == dossier_item(headers[code]) | {
            "TrangThaiHoSo": at_portal.header["TrangThaiHoSo"]
        }
        assert sim.state.ndxp[code]["status"] == final.status
        assert sim.state.ndxp[code]["kind"] == final.kind.value
    assert not set(sim.state.portal) & refused
    assert not set(sim.state.ndxp) & refused

    refused_records = Counter(r.dossier_code for r in stream if r.dossier_code in refused)
    letters = await dead_letters(kafka_settings, settings.topic_dlq, 2 * refused_records.total())
    assert Counter(key for stage, key in letters if stage == "sync-portal") == refused_records
    assert Counter(key for stage, key in letters if stage == "sync-ndxp") == refused_records
    faults = Counter(c.fault for c in sim.state.calls if c.fault)
    assert faults["error"] > 0
    assert faults["rate_limited"] > 0
    assert faults["outage"] > 0
