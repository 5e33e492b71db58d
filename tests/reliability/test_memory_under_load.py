"""Peak memory of a real `govsync ingest` process under the largest requests its defaults allow.

The process runs with the service's default limits (only the broker, topics, port and one API
key are set) and receives, one after another, the issue's 24 MB batch of empty objects, a batch
of empty objects at the request limit and an edXML of millions of empty elements (all refused
before they cost much); then, all at once, more of the largest edXML packages the defaults
accept than the intake checks at a time (signed, with the largest signed PDFs, verified by the
intake and then by the worker) and the largest batch of dossier events they accept. Its peak
resident memory (VmHWM in /proc/<pid>/status, the kernel's high-water mark) must stay under the
chart's memory limit for the ingest pod with a margin. The process has the image's malloc
settings (`MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_`, read from the Dockerfile).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from schemas.cloudevents import EventType
from services.common.auth import hash_key
from services.common.settings import KafkaSettings
from services.ingest.settings import IngestSettings
from services.localrun.broker import free_port, stop_process
from tests.support.edxml_corpus import Attachment, build_document
from tests.support.kafka import Topics
from tests.support.pki import make_pki, sign_edxml, signed_pdf, unsigned_pdf

pytestmark = [pytest.mark.reliability, pytest.mark.kafka, pytest.mark.slow]
Figures = Callable[[str], None]

ROOT = Path(__file__).resolve().parents[2]
KEY = "memory-key-0123456789abcdef"
SOURCE = "urn:vn:gov:dvc:memory"
ONE, BATCH = "application/cloudevents+json", "application/cloudevents-batch+json"
MARGIN = 0.8
"""The peak may use at most this share of the limit."""


def chart_memory_limit() -> int:
    values = yaml.safe_load((ROOT / "deploy/helm/govsync/values.yaml").read_text())
    text = values["ingest"]["resources"]["limits"]["memory"]
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", text).groups()  # type: ignore[union-attr]
    return int(number) * (1024**2 if unit == "Mi" else 1024**3)


def image_env(*names: str) -> dict[str, str]:
    """The variables the image sets (the Dockerfile's runtime ENV), as the pod has them."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    found = {n: re.search(rf"^\s*{n}=(\S+)", dockerfile, re.MULTILINE) for n in names}
    return {n: match.group(1) for n, match in found.items() if match}


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@contextmanager
def ingest_process(kafka: KafkaSettings, topics: Topics) -> Iterator[tuple[int, str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVSYNC_", "MALLOC_"))}
    env |= topics.ingest_env() | {
        "GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GOVSYNC_HTTP_HOST": "127.0.0.1",
        "GOVSYNC_HTTP_PORT": str(port),
        "GOVSYNC_TOPIC_PARTITIONS": "1",
        "GOVSYNC_LOG_LEVEL": "WARNING",
        "GOVSYNC_API_KEYS": orjson.dumps({hash_key(KEY): [SOURCE]}).decode(),
    }
    env |= image_env("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "ingest"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process.pid, f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, grace_seconds=30)


async def wait_ready(client: httpx.AsyncClient, base: str) -> None:
    async with asyncio.timeout(60):
        while True:
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


def event(event_id: str, event_type: EventType, **fields: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": SOURCE, "type": event_type.value} | (
        fields
    )


def edxml_request(package: bytes, event_id: str) -> bytes:
    return orjson.dumps(event(event_id, EventType.EDXML, data=package.decode()))


def largest_package(cap: int, limits: IngestSettings) -> bytes:
    """A signed package of signed PDFs of the largest size the defaults allow, as many as fit,
    and an unsigned PDF that fills the event up to `cap` bytes once it is a CloudEvent's `data`
    (base64 with a newline every 76 characters, each escaped in JSON: 78 bytes per 57)."""
    pki = make_pki()
    size = limits.edxml.max_attachment_bytes - 32 * 1024  # room for the signature itself
    decoded = (cap - 100_000) * 57 // 78
    pdf = signed_pdf(pki.signer, padding=size)
    pdfs = [Attachment(f"{i}.pdf", pdf) for i in range(decoded // len(pdf))]

    def build(filler: int) -> bytes:
        attachments = (*pdfs, Attachment("filler.pdf", unsigned_pdf(padding=filler)))
        return sign_edxml(build_document(number="4242", attachments=attachments), pki.signer)

    first = build(1024)
    filler = 1024 + (cap - len(edxml_request(first, "big")) - 4096) * 57 // 78
    package = build(max(filler, 1024))
    assert len(edxml_request(package, "big")) <= cap
    return package


def many_elements(cap: int) -> bytes:
    """An edXML event of empty elements that fills a request of `cap` bytes exactly."""
    frame = len(edxml_request(b"<edXML></edXML>", "elements"))
    return edxml_request(b"<edXML>" + b"<a/>" * ((cap - frame) // 4) + b"</edXML>", "elements")


async def test_peak_memory_stays_under_the_chart_limit(
    kafka_settings: KafkaSettings, figures: Figures
) -> None:
    defaults = IngestSettings()
    limit = chart_memory_limit()
    cap = defaults.max_request_bytes
    topics = Topics.unique("memory", uuid.uuid4().hex[:10])
    # An e-document event is bounded by `edxml.max_bytes` too, whole (its base64 included).
    edxml_cap = min(cap, defaults.edxml.max_bytes)
    empty_objects = b"[" + b"{}," * ((cap - 4) // 3) + b"{}]"
    issue_batch = b"[" + b"{}," * (24 * 10**6 // 3) + b"{}]"
    elements = many_elements(edxml_cap)
    package = await asyncio.to_thread(largest_package, edxml_cap, defaults)  # pyHanko: a loop
    big_edxml = edxml_request(package, "big")
    note = "x" * (defaults.max_event_bytes - 1024)
    dossiers = [
        event(
            f"d-{i}",
            EventType.DOSSIER,
            agency="000.00.00.G22",
            data={"MaHoSo": f"MEM-{i}", "TrangThaiHoSo": 2, "GhiChu": note},
        )
        for i in range(cap // defaults.max_event_bytes)
    ]
    big_batch = orjson.dumps(dossiers)
    assert max(len(empty_objects), len(elements), len(big_edxml), len(big_batch)) <= cap
    refused = [
        ("the issue's 24 MB batch of empty objects", BATCH, issue_batch),
        ("a batch of empty objects at the request limit", BATCH, empty_objects),
        ("edXML of millions of empty elements", ONE, elements),
    ]
    # More of the largest packages at once than the intake checks at once: the worst case.
    packages = [edxml_request(package, f"big-{i}") for i in range(defaults.intake_concurrency + 1)]
    lines: list[str] = []
    with ingest_process(kafka_settings, topics) as (pid, base):
        async with httpx.AsyncClient(timeout=300) as client:

            async def post(name: str, content_type: str, body: bytes) -> None:
                started = time.perf_counter()
                response = await client.post(
                    f"{base}/v1/events",
                    content=body,
                    headers={"X-API-Key": KEY, "content-type": content_type},
                )
                lines.append(
                    f"{name} ({len(body) / 2**20:.1f} MiB): {response.status_code} in"
                    f" {time.perf_counter() - started:.2f} s, peak {peak_rss(pid) / 2**20:.0f} MiB"
                )
                statuses[name] = response.status_code

            statuses: dict[str, int] = {}
            await wait_ready(client, base)
            lines.append(f"ready: peak {peak_rss(pid) / 2**20:.0f} MiB")
            for name, content_type, body in refused:
                await post(name, content_type, body)
            await asyncio.gather(
                *(
                    post(f"largest signed edXML package #{i}", ONE, b)
                    for i, b in enumerate(packages)
                ),
                post("largest dossier batch", BATCH, big_batch),
            )
            # The worker handles what the intake accepted, in the same process.
            await wait_handled(client, base, len(packages) + len(dossiers))
            peak = peak_rss(pid)
    lines.append(
        f"after the worker: peak {peak / 2**20:.0f} MiB of a {limit / 2**20:.0f} MiB limit"
    )
    figures("; ".join(lines))
    assert statuses["the issue's 24 MB batch of empty objects"] == 413
    assert statuses["a batch of empty objects at the request limit"] == 413
    assert statuses["edXML of millions of empty elements"] in (413, 422)
    assert {v for k, v in statuses.items() if k.startswith("largest")} == {202}
    assert peak < MARGIN * limit, lines


async def wait_handled(client: httpx.AsyncClient, base: str, count: int) -> None:
    """Until the worker has decided `count` events (any outcome)."""
    async with asyncio.timeout(300):
        while True:
            text = (await client.get(f"{base}/metrics")).text
            handled = sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "govsync_events_total"
            )
            if handled >= count:
                return
            await asyncio.sleep(0.5)
