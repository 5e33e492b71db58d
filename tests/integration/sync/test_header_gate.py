"""What the portal acknowledged is what it holds (issue 12, finding 6), end to end.

The portal worker runs in-process against the session's broker and a simulator served by uvicorn.
A dossier whose header the portal refuses must never have a step sent for it, must not be
acknowledged or counted as synced, and every one of its records must be a dead letter; the
synced gauge must equal a count made from the input, and again after a restart.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from schemas.dossier import DossierRecord, DossierStatus, RecordKind
from services.common import deadletter
from services.common.kafka import TopicSpec, ensure_topics
from services.common.settings import KafkaSettings
from services.simulator.faults import Faults
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator
from services.sync.main import run
from services.sync.settings import SyncSettings, Target
from tests.integration.sync.helpers import wait_until
from tests.integration.sync.test_acceptance import dead_letters, produce, sync_settings
from tests.support.kafka import read_topic
from tests.support.records import AGENCIES, dossier_stream, final_records, record

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# DOMAIN.md §2: received = status in {2, 4, 5, 6, 7, 8, 9, 10}.
RECEIVED = frozenset({2, 4, 5, 6, 7, 8, 9, 10})
MARKER_PREFIX = b"\x00"
AGENCY = AGENCIES[0]


async def acked_values(
    kafka: KafkaSettings, topic: str, at_least: int
) -> dict[str, dict[str, object]]:
    """The latest value of every dossier in the acked topic (restore markers left out)."""
    latest: dict[str, dict[str, object]] = {}
    for message in await read_topic(kafka, topic, at_least=at_least):
        if message.key is None or message.key.startswith(MARKER_PREFIX) or not message.value:
            continue
        latest[message.key.decode()] = json.loads(message.value)
    return latest


def synced_gauge(registry: CollectorRegistry, agencies: set[str]) -> dict[str, float]:
    values = {
        agency: registry.get_sample_value("govsync_portal_synced_dossiers", {"agency": agency})
        for agency in agencies
    }
    return {agency: value for agency, value in values.items() if value}


async def run_until(
    settings: SyncSettings, registry: CollectorRegistry, done: object, within: float
) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run(settings, Target.PORTAL, stop, registry=registry, serve_http=False)
    )

    async def finished() -> bool:
        if worker.done():
            worker.result()
        return await done()  # type: ignore[operator,no-any-return]

    try:
        await wait_until(finished, within=within, interval=0.1)
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await worker


async def test_steps_of_a_refused_dossier_are_never_sent_acknowledged_or_counted(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    stream = dossier_stream(f"R{unique}", 60, max_revisions=6, seed=13)
    revisions = Counter(r.dossier_code for r in stream)
    refused = {code for code, n in sorted(revisions.items()) if n >= 3}
    refused = set(sorted(refused)[:8])
    assert len(refused) == 8
    sim = Simulator(Faults(reject_dossiers=refused), seed=1)
    finals = final_records(stream)
    expected = {c: r for c, r in finals.items() if c not in refused}
    # Indicator 1.4's numerator, counted from the input: held and in a received status.
    ever_received = {r.dossier_code for r in stream if int(r.status) in RECEIVED}
    synced: Counter[str] = Counter(str(r.agency) for c, r in expected.items() if c in ever_received)
    refused_records = Counter(r.dossier_code for r in stream if r.dossier_code in refused)

    async with running_simulator(sim) as running:
        # The gauge labels only preset agencies (others become `other`): name the stream's ones.
        settings = sync_settings(kafka_settings, running, unique).model_copy(
            update={"label_agencies": frozenset(AGENCIES)}
        )
        await ensure_topics(
            kafka_settings,
            [TopicSpec(settings.topic_dossier_normalized, 3), TopicSpec(settings.topic_dlq, 3)],
        )
        await produce(kafka_settings, settings.topic_dossier_normalized, stream)
        registry = CollectorRegistry()

        async def delivered() -> bool:
            portal = sim.state.portal
            dead = registry.get_sample_value(
                "govsync_sync_records_total", {"target": "portal", "outcome": "dead_lettered"}
            )
            return dead == refused_records.total() and all(
                code in portal and portal[code].revision == r.revision
                for code, r in expected.items()
            )

        await run_until(settings, registry, delivered, within=60)
        letters = await dead_letters(kafka_settings, settings.topic_dlq, refused_records.total())

        # No step of a refused dossier was sent: the portal never saw one.
        stepped = {
            code
            for call in sim.state.calls
            if call.service == "CapNhatTienDoHoSoMC"
            for code in call.dossiers
        }
        assert not stepped & refused
        assert sim.state.orphans == []
        assert not set(sim.state.portal) & refused
        # Each of their records is a dead letter, once.
        assert Counter(key for stage, key in letters if stage == "sync-portal") == refused_records
        # The acked topic holds what the portal holds, and says it accepted the header.
        acked = await acked_values(kafka_settings, settings.acked_topic(Target.PORTAL), 1)
        assert not set(acked) & refused
        assert {c: (v["revision"], v["header"]) for c, v in acked.items()} == {
            c: (r.revision, True) for c, r in expected.items()
        }
        assert {c for c, v in acked.items() if v["received"]} == set(expected) & ever_received
        agencies = {str(r.agency) for r in stream}
        assert synced_gauge(registry, agencies) == synced

        # After a restart the gauge is the same figure, restored from the acked topic.
        restarted = CollectorRegistry()

        async def restored() -> bool:
            return sum(synced_gauge(restarted, agencies).values()) >= synced.total()

        await run_until(settings, restarted, restored, within=30)
        assert synced_gauge(restarted, agencies) == synced
        assert restarted.get_sample_value(
            "govsync_portal_new_syncs_total", {"agency": next(iter(synced))}
        ) in (None, 0.0)


def step_record(code: str, revision: int, status: int, n: int) -> DossierRecord:
    return record(code, revision, RecordKind.PROGRESS, DossierStatus(status), n=n, agency=AGENCY)


def header_record(code: str, revision: int, status: int, n: int) -> DossierRecord:
    return record(code, revision, RecordKind.DOSSIER, DossierStatus(status), n=n, agency=AGENCY)


async def test_steps_before_their_header_wait_across_a_restart_and_follow_it(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    early, lone, plain = f"P{unique}-00001", f"Q{unique}-00002", f"X{unique}-00003"
    sim = Simulator(seed=2)
    async with running_simulator(sim) as running:
        settings = sync_settings(kafka_settings, running, unique, step_wait_seconds=4)
        topic = settings.topic_dossier_normalized
        await ensure_topics(kafka_settings, [TopicSpec(topic, 3), TopicSpec(settings.topic_dlq, 3)])
        # The source reported two steps before the dossier's header.
        await produce(
            kafka_settings,
            topic,
            [
                step_record(early, 1, 2, 1),
                step_record(early, 2, 4, 1),
                header_record(plain, 1, 2, 3),
            ],
        )
        first = CollectorRegistry()

        async def parked() -> bool:
            waiting = first.get_sample_value("govsync_sync_parked_steps", {"target": "portal"})
            return waiting == 2 and plain in sim.state.portal

        await run_until(settings, first, parked, within=30)
        assert early not in sim.state.portal
        # Nothing written for it: the one lookup (does the portal hold it already?) is the gate's.
        writes = [c.service for c in sim.state.calls if early in c.dossiers]
        assert [service for service in writes if service != "TraCuuHoSo"] == []
        assert sim.state.orphans == []

        # The header comes while another process owns the partitions; a dossier never gets one.
        await produce(
            kafka_settings,
            topic,
            [
                header_record(early, 3, 4, 1),
                step_record(early, 4, 9, 1),
                step_record(lone, 1, 2, 2),
            ],
        )
        second = CollectorRegistry()

        async def settled() -> bool:
            held = sim.state.portal.get(early)
            dead = second.get_sample_value(
                "govsync_sync_records_total", {"target": "portal", "outcome": "dead_lettered"}
            )
            return held is not None and held.revision == 4 and dead == 1

        await run_until(settings, second, settled, within=40)

    held = sim.state.portal[early]
    assert held.status == DossierStatus.FINISHED
    # Header first, then the two steps that waited for it (as history), then the last step.
    assert [s["TrangThai"] for s in held.steps] == [2, 4, 9]
    services = [
        c.service
        for c in sim.state.calls
        if early in c.dossiers and c.error_code == 0 and c.service != "TraCuuHoSo"
    ]
    assert services[0] == "DongBoHoSoMC"
    assert (sim.state.late_steps, sim.state.regressions, sim.state.orphans) == (2, [], [])
    acked = await acked_values(kafka_settings, settings.acked_topic(Target.PORTAL), 1)
    assert acked[early] | {"at": None} == {
        "revision": 4,
        "received": True,
        "header": True,
        "status": 9,
        "agency": AGENCY,
        "at": None,
    }
    assert lone not in acked
    [letter] = [
        m
        for m in await read_topic(kafka_settings, settings.topic_dlq, at_least=1)
        if m.key == lone.encode()
    ]
    assert letter.headers[deadletter.ERROR] == b"HeaderMissingError"
    assert b"within 4 s" in letter.headers[deadletter.REASON]
    assert second.get_sample_value("govsync_portal_synced_dossiers", {"agency": AGENCY}) == 2
