"""`kill -9` mid-stream: `govsync sync --target portal` as a real process, killed and restarted.

Nothing may be lost and the portal must never see a dossier go backwards. The process's HTTP
endpoints (readiness, metrics, the admin dead-letter list) are checked on the way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from services.common.kafka import TopicSpec, ensure_topics
from services.common.settings import KafkaSettings
from services.localrun.broker import free_port
from services.simulator.faults import Faults
from services.simulator.server import RunningSimulator, running_simulator
from services.simulator.simulator import Simulator
from tests.integration.sync.helpers import wait_until
from tests.integration.sync.test_acceptance import produce
from tests.support.records import dossier_stream, final_records

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ADMIN_TOKEN = "admin-token-for-tests"


def _env(kafka: KafkaSettings, running: RunningSimulator, unique: str, port: int) -> dict[str, str]:
    return os.environ | {
        "GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GOVSYNC_TOPIC_DOSSIER_NORMALIZED": f"kill.normalized.{unique}",
        "GOVSYNC_TOPIC_DLQ": f"kill.dlq.{unique}",
        "GOVSYNC_ACKED_TOPIC_TEMPLATE": f"kill.sync.{{target}}.acked.{unique}",
        "GOVSYNC_GROUP_PREFIX": f"kill-{unique}-",
        "GOVSYNC_ALLOW_HTTP": "true",
        "GOVSYNC_PORTAL_URL": running.portal_url,
        "GOVSYNC_PORTAL_PASSWORD": "secret",
        "GOVSYNC_PORTAL_DSTCODE": "DVCQG",
        "GOVSYNC_PORTAL_BATCH_SIZE": "10",
        "GOVSYNC_DELIVERY_MAX_IN_FLIGHT": "16",
        "GOVSYNC_DELIVERY_BACKOFF_INITIAL_SECONDS": "0.05",
        "GOVSYNC_DELIVERY_BACKOFF_MAX_SECONDS": "0.5",
        "GOVSYNC_DELIVERY_COMMIT_INTERVAL_SECONDS": "0.2",
        "GOVSYNC_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "GOVSYNC_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
        "GOVSYNC_HTTP_HOST": "127.0.0.1",
        "GOVSYNC_HTTP_PORT": str(port),
        "GOVSYNC_ADMIN_TOKEN": ADMIN_TOKEN,
        "GOVSYNC_LOG_LEVEL": "WARNING",
    }


async def _start(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            "sync",
            "--target",
            "portal",
            env=env,
            stdout=out,
            stderr=out,
        )


async def test_kill_9_mid_stream_loses_nothing(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    stream = dossier_stream(f"K{unique}", 200, max_revisions=5, seed=11)
    refused = {stream[5].dossier_code}
    sim = Simulator(Faults(latency_seconds=0.01, error_rate=0.05, reject_dossiers=refused), seed=5)
    port = free_port()
    log = tmp_path / "sync.log"
    async with (
        running_simulator(sim) as running,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http,
    ):
        env = _env(kafka_settings, running, unique, port)
        topic = env["GOVSYNC_TOPIC_DOSSIER_NORMALIZED"]
        await ensure_topics(kafka_settings, [TopicSpec(topic, 3)])
        await produce(kafka_settings, topic, stream)
        expected = {c: r for c, r in final_records(stream).items() if c not in refused}

        first = await _start(env, log)
        try:

            async def partly_delivered() -> bool:
                assert first.returncode is None, log.read_text()
                return len(sim.state.portal) >= len(expected) // 4

            await wait_until(partly_delivered, within=40)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert len(sim.state.portal) < len(expected), "the kill came too late to mean anything"

        second = await _start(env, log)
        try:

            async def ready() -> bool:
                assert second.returncode is None, log.read_text()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, within=40, interval=0.2)

            async def all_delivered() -> bool:
                assert second.returncode is None, log.read_text()
                portal = sim.state.portal
                return all(
                    code in portal and portal[code].revision == r.revision
                    for code, r in expected.items()
                )

            await wait_until(all_delivered, within=60, interval=0.2)
            metrics = (await http.get("/metrics")).text
            assert 'govsync_sync_records_total{outcome="acknowledged",target="portal"}' in metrics
            assert "govsync_sync_circuit_state" in metrics
            assert (await http.get("/admin/dlq")).status_code == 401
            denied = await http.get("/admin/dlq", headers={"Authorization": "Bearer wrong"})
            assert denied.status_code == 401

            async def dead_lettered() -> bool:
                listed = await http.get(
                    "/admin/dlq", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                )
                return listed.status_code == 200 and len(listed.json()) >= 1

            await wait_until(dead_lettered, within=20, interval=0.5)
        finally:
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                code = await second.wait()
        assert code == 0, log.read_text()

    assert sim.state.regressions == []
    for dossier, final in expected.items():
        assert sim.state.portal[dossier].status == final.status
