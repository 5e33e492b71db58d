"""A first event from kcat (Debian's librdkafka tool, not Python) reaches ingest on the embedded
broker of `govsync run`, through the relay that older librdkafka versions need."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid

import orjson
import pytest

from services.common.settings import KafkaSettings
from services.localrun.broker import EmbeddedBroker
from tests.support.ingest import ingest_settings, running_ingest
from tests.support.kafka import read_topic

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed"),
]

EVENT = {
    "specversion": "1.0",
    "id": "kcat-0001",
    "source": "urn:vn:gov:dvc:vendor",
    "type": "vn.gov.dvc.dossier.v1",
    "time": "2026-11-02T08:30:00+07:00",
    "agency": "000.00.20.H57",
    "data": {"MaHoSo": "H57.20-KCAT-0001", "TrangThaiHoSo": 2, "NgayTiepNhan": "20261102083000"},
}


async def test_kcat_sends_a_first_event_to_the_local_run_broker() -> None:
    broker = EmbeddedBroker(relay=True)
    await asyncio.to_thread(broker.start)
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
        settings = ingest_settings(kafka, uuid.uuid4().hex[:10])
        async with running_ingest(settings):
            sent = await asyncio.to_thread(
                subprocess.run,
                [
                    "kcat",
                    "-P",
                    "-b",
                    broker.bootstrap,
                    "-t",
                    settings.topic_dossier,
                    "-k",
                    "H57.20-KCAT-0001",
                ],
                input=json.dumps(EVENT).encode() + b"\n",
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert sent.returncode == 0, sent.stderr.decode()
            records = await read_topic(kafka, settings.topic_dossier_normalized, at_least=1)
        found = [orjson.loads(r.value or b"") for r in records]
        assert [(r["dossier_code"], r["event_id"], r["status"]) for r in found] == [
            ("H57.20-KCAT-0001", "kcat-0001", 2)
        ]
    finally:
        await asyncio.to_thread(broker.stop)
