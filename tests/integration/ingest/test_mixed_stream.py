"""Acceptance: a mixed stream through the real service on the real broker.

Every valid change appears exactly once on the normalised topic in per-dossier revision
order, every invalid event is on the dead-letter topic with a reason, and the metrics match
counts computed here from the stream itself.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from services.common import deadletter
from services.common.settings import KafkaSettings
from tests.support.ingest import ingest_settings, metric_value, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.kafka

A, B = "000.00.00.G22", "000.00.10.H29"
DOSSIER, PROGRESS = "vn.gov.dvc.dossier.v1", "vn.gov.dvc.dossier.progress.v1"


@dataclass(frozen=True)
class Case:
    name: str
    sent: Sent
    outcome: str  # accepted | duplicate | stale | dead_lettered
    type: str = DOSSIER
    dossier: str | None = None
    event_id: str | None = None
    received: tuple[str, str] | None = None  # (agency, channel) counted by this event
    finished: tuple[str, str] | None = None  # (agency, timeliness)


def structured(
    event_id: str, type_: str, data: dict[str, Any], time: str, agency: str | None = A
) -> Sent:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:vn:gov:dvc:test",
        "type": type_,
        "time": time,
        "data": data,
    }
    if agency:
        event["agency"] = agency
    return Sent(
        json.dumps(event, ensure_ascii=False).encode(), str(data.get("MaHoSo", "x")).encode()
    )


def binary(event_id: str, type_: str, data: dict[str, Any], time: str, key: str) -> Sent:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"urn:vn:hcm"),
        ("ce_type", type_.encode()),
        ("ce_time", time.encode()),
        ("ce_agency", B.encode()),
    ]
    return Sent(json.dumps(data, ensure_ascii=False).encode(), key.encode(), headers)


def bare(data: dict[str, Any]) -> tuple[Sent, str]:
    value = json.dumps(data, ensure_ascii=False).encode()
    return Sent(value, str(data["MaHoSo"]).encode()), "sha256:" + hashlib.sha256(value).hexdigest()


def stream() -> list[Case]:
    d1 = "D1-" + "0001"
    e1 = structured(
        "e1",
        DOSSIER,
        {
            "MaHoSo": d1,
            "TrangThaiHoSo": 2,
            "KenhThucHien": 2,
            "NgayTiepNhan": "20261102080000",
            "NgayHenTra": "20261110170000",
            "ChuHoSo": "Lê Văn Tám",
            "SoDienThoai": "0912345678",
        },
        "2026-11-02T08:00:00+07:00",
    )
    d3_item = {
        "MaHoSo": "D3-0003",
        "TrangThaiHoSo": "2",
        "KenhThucHien": "3",
        "NgayTiepNhan": "20261102090000",
        "NgayNopHoSo": "20261102085000",
    }
    d3_sent, d3_id = bare(d3_item)
    nfd = unicodedata.normalize("NFD", "Đăng ký kết hôn")
    d2_header = {
        "mahoso": "D2-0002",
        "TENTTHC": nfd,
        "trangthaihoso": "new",
        "kenhthuchien": "in_person",
        "ngaytiepnhan": "02/11/2026 09:00:00",
        "NgayHenTra": "2026/11/04 17:00:00",
    }
    return [
        Case("d1-received", e1, "accepted", dossier=d1, event_id="e1", received=(A, "online")),
        Case("d1-redelivered", e1, "duplicate", dossier=d1),
        Case(
            "d1-step",
            structured(
                "e2",
                PROGRESS,
                {
                    "MaHoSo": d1,
                    "ThoiDiemXuLy": "20261103090000",
                    "TrangThai": 4,
                    "NoiDungXuLy": "Thẩm định",
                },
                "2026-11-03T09:00:00+07:00",
            ),
            "accepted",
            type=PROGRESS,
            dossier=d1,
            event_id="e2",
        ),
        Case(
            "d1-finished",
            structured(
                "e3",
                DOSSIER,
                {
                    "MaHoSo": d1,
                    "TrangThaiHoSo": 9,
                    "KenhThucHien": 2,
                    "NgayHenTra": "20261110170000",
                    "NgayKetThucXuLy": "20261106100000",
                },
                "2026-11-06T10:00:00+07:00",
            ),
            "accepted",
            dossier=d1,
            event_id="e3",
            finished=(A, "on_time"),
        ),
        Case(
            "d1-stale",
            structured(
                "e-old", DOSSIER, {"MaHoSo": d1, "TrangThaiHoSo": 4}, "2026-11-04T10:00:00+07:00"
            ),
            "stale",
            dossier=d1,
        ),
        Case(
            "d1-returned",
            structured(
                "e4",
                DOSSIER,
                {"MaHoSo": d1, "TrangThaiHoSo": 10, "KenhThucHien": 2, "NgayTra": "20261107100000"},
                "2026-11-07T10:00:00+07:00",
            ),
            "accepted",
            dossier=d1,
            event_id="e4",
        ),
        Case(
            "d2-binary-dialect",
            binary("b1", DOSSIER, d2_header, "2026-11-02T02:00:00Z", "D2-0002"),
            "accepted",
            dossier="D2-0002",
            event_id="b1",
            received=(B, "in_person"),
        ),
        Case(
            "d2-same-snapshot-new-id",
            binary("b2", DOSSIER, d2_header, "2026-11-02T02:00:00Z", "D2-0002"),
            "duplicate",
            dossier="D2-0002",
        ),
        Case(
            "d2-step-supplement",
            binary(
                "b3",
                PROGRESS,
                {"MAHOSO": "D2-0002", "ThoiDiemXuLy": 1793764800000, "TrangThai": "waiting"},
                "2026-11-04T03:00:00Z",
                "D2-0002",
            ),
            "accepted",
            type=PROGRESS,
            dossier="D2-0002",
            event_id="b3",
        ),
        Case(
            "d2-step-back-to-processing",
            binary(
                "b3b",
                PROGRESS,
                {
                    "MaHoSo": "D2-0002",
                    "ThoiDiemXuLy": "05/11/2026 10:00:00",
                    "TrangThai": "processing",
                },
                "2026-11-05T03:00:00Z",
                "D2-0002",
            ),
            "accepted",
            type=PROGRESS,
            dossier="D2-0002",
            event_id="b3b",
        ),
        Case(
            "d2-step-out-of-order",
            binary(
                "b4",
                PROGRESS,
                {"MaHoSo": "D2-0002", "ThoiDiemXuLy": "2026-11-03T08:00:00+07:00", "TrangThai": 4},
                "2026-11-03T01:00:00Z",
                "D2-0002",
            ),
            "stale",
            type=PROGRESS,
            dossier="D2-0002",
        ),
        Case(
            "d2-done-late",
            binary(
                "b5",
                DOSSIER,
                {**d2_header, "trangthaihoso": "done", "NgayTra": "20261120100000"},
                "2026-11-20T03:00:00Z",
                "D2-0002",
            ),
            "accepted",
            dossier="D2-0002",
            event_id="b5",
            finished=(B, "late"),
        ),
        Case(
            "d3-bare",
            d3_sent,
            "accepted",
            dossier="D3-0003",
            event_id=d3_id,
            received=("unknown", "postal"),
        ),
        Case("d3-bare-again", d3_sent, "duplicate", dossier="D3-0003"),
        Case(
            "d4-submitted",
            structured(
                "f1",
                DOSSIER,
                {
                    "MaHoSo": "D4-0004",
                    "TrangThaiHoSo": "receiving",
                    "KenhThucHien": "online",
                    "NgayNopHoSo": "2026/11/02 07:00:00",
                },
                "2026-11-02T07:00:00+07:00",
            ),
            "accepted",
            dossier="D4-0004",
            event_id="f1",
        ),
        Case(
            "d4-received",
            structured(
                "f2",
                DOSSIER,
                {
                    "MaHoSo": "D4-0004",
                    "TrangThaiHoSo": "4",
                    "KenhThucHien": 2,
                    "NgayTiepNhan": "2026-11-02T08:00:00",
                },
                "2026-11-02T08:00:00+07:00",
            ),
            "accepted",
            dossier="D4-0004",
            event_id="f2",
            received=(A, "online"),
        ),
        # Malformed input of every kind: each a dead letter, none blocks its partition.
        Case("broken-json", Sent(b'{"MaHoSo": "X1", '), "dead_lettered", type="unknown"),
        Case("invalid-utf8", Sent(b"\xff\xfe\x00{}"), "dead_lettered", type="unknown"),
        Case(
            "impossible-date",
            structured(
                "m3",
                DOSSIER,
                {
                    "MaHoSo": "X3",
                    "TrangThaiHoSo": 2,
                    "NgayTiepNhan": "20261345100000",
                    "SoDienThoai": "0987654321",
                },
                "2026-11-02T08:00:00Z",
            ),
            "dead_lettered",
        ),
        Case(
            "bad-agency",
            structured(
                "m4",
                DOSSIER,
                {"MaHoSo": "X4", "TrangThaiHoSo": 2},
                "2026-11-02T08:00:00Z",
                agency="G22",
            ),
            "dead_lettered",
        ),
        Case(
            "unknown-type",
            structured("m5", "vn.gov.other.v1", {"MaHoSo": "X5"}, "2026-11-02T08:00:00Z"),
            "dead_lettered",
            type="unknown",
        ),
        Case(
            "missing-code",
            structured("m6", DOSSIER, {"TrangThaiHoSo": 2}, "2026-11-02T08:00:00Z"),
            "dead_lettered",
        ),
        Case(
            "oversized",
            structured(
                "m7",
                DOSSIER,
                {"MaHoSo": "X7", "TrangThaiHoSo": 2, "GhiChu": "x" * 70_000},
                "2026-11-02T08:00:00Z",
            ),
            "dead_lettered",
            type="unknown",
        ),
        Case(
            "wrong-types",
            structured(
                "m8", DOSSIER, {"MaHoSo": {"a": 1}, "TrangThaiHoSo": [2]}, "2026-11-02T08:00:00Z"
            ),
            "dead_lettered",
        ),
        Case(
            "deep-nesting",
            Sent(b'{"a":' * 2000 + b"1" + b"}" * 2000),
            "dead_lettered",
            type="unknown",
        ),
        Case("no-value", Sent(None, b"X10"), "dead_lettered", type="unknown"),
        Case(
            "progress-without-date",
            structured(
                "m11", PROGRESS, {"MaHoSo": "X11", "NoiDungXuLy": "?"}, "2026-11-02T08:00:00Z"
            ),
            "dead_lettered",
            type=PROGRESS,
        ),
        Case(
            "unknown-status-word",
            structured(
                "m12",
                DOSSIER,
                {"MaHoSo": "X12", "TrangThaiHoSo": "pending"},
                "2026-11-02T08:00:00Z",
            ),
            "dead_lettered",
        ),
    ]


async def test_mixed_stream(kafka_settings: KafkaSettings, unique: str) -> None:
    settings = ingest_settings(kafka_settings, unique, label_agencies=frozenset({A, B}))
    cases = stream()
    await create_topics(kafka_settings, settings.topic_dossier, partitions=3)
    await produce(kafka_settings, settings.topic_dossier, (c.sent for c in cases))

    async with running_ingest(settings) as base_url:
        accepted = [c for c in cases if c.outcome == "accepted"]
        dead = [c for c in cases if c.outcome == "dead_lettered"]
        normalised = await read_topic(
            kafka_settings, settings.topic_dossier_normalized, at_least=len(accepted)
        )
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=len(dead))
        async with httpx.AsyncClient(base_url=base_url) as client:
            metrics = (await client.get("/metrics")).text

    # Exactly the accepted changes, in revision order per dossier.
    records = [orjson.loads(r.value or b"") for r in normalised]
    by_dossier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_dossier[record["dossier_code"]].append(record)
    expected: dict[str, list[str]] = defaultdict(list)
    for case in accepted:
        assert case.dossier is not None
        expected[case.dossier].append(str(case.event_id))
    assert {k: [r["event_id"] for r in v] for k, v in by_dossier.items()} == expected
    for dossier_records in by_dossier.values():
        assert [r["revision"] for r in dossier_records] == list(range(1, len(dossier_records) + 1))
    # Normalised content: NFC, aware dates, agency from the envelope, status mapped.
    d2 = by_dossier["D2-0002"]
    assert d2[0]["header"]["procedure_name"] == "Đăng ký kết hôn"
    assert d2[0]["header"]["received_at"] == "2026-11-02T09:00:00+07:00"
    assert d2[0]["agency"] == B
    assert [r["status"] for r in d2] == [2, 5, 4, 10]
    assert by_dossier["D1-0001"][-1]["status"] == 10
    assert by_dossier["D1-0001"][2]["timeliness"] == "on_time"

    # Every invalid event is a dead letter with its original bytes and a reason.
    assert len(letters) == len(dead)
    originals = Counter(c.sent.value for c in dead)
    assert Counter(letter.value for letter in letters) == originals
    for letter in letters:
        for header in (
            deadletter.REASON,
            deadletter.STAGE,
            deadletter.ERROR,
            deadletter.SOURCE_TOPIC,
            deadletter.SOURCE_PARTITION,
            deadletter.SOURCE_OFFSET,
        ):
            assert letter.headers.get(header), f"dead letter without {header}"
        assert letter.headers[deadletter.SOURCE_TOPIC] == settings.topic_dossier.encode()
        assert b"0987654321" not in letter.headers[deadletter.REASON]

    # Metrics agree with what the stream contains.
    outcomes = Counter((c.type, c.outcome) for c in cases)
    for (event_type, outcome), count in outcomes.items():
        assert (
            metric_value(metrics, "govsync_events_total", type=event_type, outcome=outcome) == count
        ), (event_type, outcome)
    received = Counter(c.received for c in cases if c.received)
    for (agency, channel), count in received.items():
        assert (
            metric_value(metrics, "govsync_dossiers_received_total", agency=agency, channel=channel)
            == count
        )
    finished = Counter(c.finished for c in cases if c.finished)
    for (agency, timeliness), count in finished.items():
        assert (
            metric_value(
                metrics, "govsync_dossiers_finished_total", agency=agency, timeliness=timeliness
            )
            == count
        )
    total_received = sum(
        float(line.rpartition(" ")[2])
        for line in metrics.splitlines()
        if line.startswith("govsync_dossiers_received_total{")
    )
    assert total_received == sum(received.values())
