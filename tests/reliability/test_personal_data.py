"""No personal data in any log line or dead-letter reason, across the whole pipeline.

Dossiers full of citizen ID numbers, phone numbers, e-mail addresses and names go through
ingest and the portal sync (as real processes, logging at DEBUG), some refused at ingest and
some refused by the portal with an answer that quotes the applicant's data back. Then every
log line and every header govsync added to a dead letter is searched for those values.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common import deadletter
from services.common.settings import KafkaSettings
from services.simulator.faults import Faults
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator
from tests.support.faults import ServiceProcess, ingest_env, service_processes, sync_env
from tests.support.kafka import Sent, Topics, create_topics, produce, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

DOSSIERS = 40
BAD_AT_INGEST = 8
REFUSED_BY_PORTAL = 6
NAMES = ("Nguyễn Thị Hằng", "Trần Văn Quyết", "Lê Minh Khôi", "Phạm Thu Trang")


def person(rng: random.Random, n: int) -> dict[str, object]:
    citizen_id = f"0{rng.randrange(10**10, 10**11)}"
    return {
        "ChuHoSo": f"{NAMES[n % len(NAMES)]} {n}",
        "SoDienThoai": f"09{rng.randrange(10**7, 10**8)}",
        "Email": f"cong.dan.{n}@example.vn",
        "SoGiayToChuHoSo": citizen_id,
        "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": citizen_id}],
    }


def event(code: str, data: dict[str, object], event_id: str) -> Sent:
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:vn:gov:dvc:test",
        "type": "vn.gov.dvc.dossier.v1",
        "time": "2026-11-02T08:00:00+07:00",
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": code, **data},
    }
    return Sent(json.dumps(body, ensure_ascii=False).encode(), code.encode())


def secrets_in(values: list[dict[str, object]]) -> set[str]:
    found: set[str] = set()
    for value in values:
        for key in ("ChuHoSo", "SoDienThoai", "Email", "SoGiayToChuHoSo"):
            found.add(str(value[key]))
    return found


async def test_no_personal_data_in_logs_or_dead_letter_reasons(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path, figures: Callable[[str], None]
) -> None:
    rng = random.Random(7)
    topics = Topics.unique("pii", unique)
    people = [person(rng, n) for n in range(DOSSIERS)]
    refused = {f"PII-{n:03d}" for n in range(REFUSED_BY_PORTAL)}
    stream: list[Sent] = []
    for n, data in enumerate(people):
        code = f"PII-{n:03d}"
        fields: dict[str, object] = {**data, "TrangThaiHoSo": 2, "KenhThucHien": 2}
        if n >= DOSSIERS - BAD_AT_INGEST:
            # Refused at ingest: an impossible date, with the personal data still inside.
            fields["NgayTiepNhan"] = "20261345100000"
        stream.append(event(code, fields, f"pii-{n}"))
    await create_topics(kafka_settings, topics.dossier, partitions=3)
    await produce(kafka_settings, topics.dossier, stream)

    simulator = Simulator(faults=Faults(reject_dossiers=refused, echo_personal_data=True))
    async with running_simulator(simulator) as sim:
        ingest = ServiceProcess.ingest(
            ingest_env(kafka_settings.bootstrap_servers, topics, GOVSYNC_LOG_LEVEL="DEBUG"),
            tmp_path,
        )
        portal = ServiceProcess.sync(
            "portal",
            sync_env(kafka_settings.bootstrap_servers, topics, sim, GOVSYNC_LOG_LEVEL="DEBUG"),
            tmp_path,
        )
        async with service_processes(ingest, portal):
            await ingest.start()
            await portal.start()
            letters = await read_topic(
                kafka_settings, topics.dlq, at_least=BAD_AT_INGEST + REFUSED_BY_PORTAL, within=90
            )
            assert await ingest.stop() == 0
            assert await portal.stop() == 0
        accepted = DOSSIERS - BAD_AT_INGEST - REFUSED_BY_PORTAL
        assert len(simulator.state.portal) == accepted

    personal = secrets_in(people)
    log_lines = [
        line
        for path in (ingest.log, portal.log)
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    ]
    assert len(log_lines) > 50, "DEBUG logging wrote too little to prove anything"
    leaks = [(value, line) for line in log_lines for value in personal if value in line]
    assert not leaks, f"personal data in logs: {leaks[:3]}"

    ours = [
        (name, value.decode(errors="replace"))
        for letter in letters
        for name, value in letter.headers.items()
        if name.startswith(deadletter.HEADER_PREFIX)
    ]
    stages = {v for n, v in ours if n == deadletter.STAGE}
    assert len(stages) >= 2, f"dead letters from one stage only: {stages}"
    reasons = [v for n, v in ours if n == deadletter.REASON]
    assert any("<number>" in r for r in reasons), "the portal's answer was not quoted, masked"
    header_leaks = [(v, h) for _, h in ours for v in personal if v in h]
    assert not header_leaks, f"personal data in dead-letter headers: {header_leaks[:3]}"
    figures(
        f"{len(log_lines)} log lines and {len(ours)} dead-letter headers searched for "
        f"{len(personal)} personal values: 0 found"
    )
