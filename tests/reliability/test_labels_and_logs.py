"""Labels and logs (issue 13): what senders write never becomes a metric label or a log value.

Through a real ingest process on the test broker: a sender fills `MaDonVi` with hundreds of
well-formed codes and an edXML `OrganId` with a name and a phone number; `/metrics` (which needs
no credential) shows only the configured agencies, `other` and `unknown`, and the configured
agency still keeps its own label. With the services' real logging configuration at DEBUG, the
libraries that print payloads (aiokafka, httpcore, signxml, pyHanko) print none; dead-letter
reasons name no field a sender made up.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common import deadletter
from services.common.settings import KafkaSettings
from tests.support.edxml_corpus import build_document
from tests.support.ingest import ingest_settings, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

SERVED = "000.00.10.H29"
FLOOD = 250
FREE_TEXT = "Nguyen Van A 0912345678"
REPOSITORY = Path(__file__).resolve().parents[2]
# The formats the issue found unmasked.
PERSONAL = (
    "hoso_001204012345.pdf",
    "CCCD001204012345",
    "001204012345A",
    "0912  345 678",
    "0912/345/678",
    "(091) 234 5678",
    "Số 12345678901234567890",
)


def dossier(n: int, agency: str) -> Sent:
    body = {
        "specversion": "1.0",
        "id": f"label-{n}",
        "source": "urn:vn:gov:dvc:test",
        "type": "vn.gov.dvc.dossier.v1",
        "time": "2026-11-02T08:00:00+07:00",
        "data": {"MaHoSo": f"LBL-{n:04d}", "MaDonVi": agency, "TrangThaiHoSo": 2},
    }
    return Sent(json.dumps(body).encode(), f"LBL-{n:04d}".encode())


def agency_labels(text: str) -> dict[str, float]:
    """Every `agency` label value in the scrape, with the sum of its received dossiers."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            agency = sample.labels.get("agency")
            if agency is None:
                continue
            received = sample.value if sample.name == "govsync_dossiers_received_total" else 0.0
            found[agency] = found.get(agency, 0.0) + received
    return found


@pytest.mark.kafka
async def test_only_configured_agencies_become_labels(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    settings = ingest_settings(
        kafka_settings, unique, label_agencies=frozenset({SERVED}), topic_partitions=1
    )
    await create_topics(kafka_settings, settings.topic_dossier, partitions=1)
    await create_topics(kafka_settings, settings.topic_edocument, partitions=1)
    # A flood of well-formed codes first, then the agency the deployment serves.
    flood = [dossier(n, f"{n:03d}.00.00.H01") for n in range(1, FLOOD + 1)]
    await produce(kafka_settings, settings.topic_dossier, [*flood, dossier(0, SERVED)])
    await produce(
        kafka_settings,
        settings.topic_edocument,
        [Sent(build_document(organ_id=FREE_TEXT, number="801"), b"doc")],
    )
    async with running_ingest(settings) as base_url:
        await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=FLOOD + 1)
        await read_topic(kafka_settings, settings.topic_edocument_normalized, at_least=1)
        async with httpx.AsyncClient(base_url=base_url) as client:
            text = (await client.get("/metrics")).text

    labels = agency_labels(text)
    figures(
        f"{FLOOD} well-formed codes and one free-text OrganId sent: agency labels"
        f" {sorted(labels)}; {labels.get('other', 0):.0f} dossiers counted as other"
    )
    assert FREE_TEXT not in text
    assert not re.search(r"\d{9}", " ".join(labels))
    assert set(labels) <= {SERVED, "other", "unknown"}
    assert labels[SERVED] == 1
    assert labels["other"] == FLOOD


# --- logs ---------------------------------------------------------------------------------------

# Runs in a process of its own with the services' real logging configuration at DEBUG, and
# makes the libraries do what the services make them do: aiokafka sends a record, httpx reads a
# response with a session cookie, signxml signs and verifies a package, pyHanko fails to build a
# path for a stranger's certificate.
LOGGING_SCRIPT = """
import asyncio, http.server, sys, threading
import httpx
from services.common.kafka import make_producer
from services.common.logging import configure_logging, get_logger
from services.common import deadletter
from services.common.settings import KafkaSettings
from services.ingest.edocuments.edxml import find_signature, parse_xml
from services.ingest.edocuments.signature import check_xml_signature, verify_pdf
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import NOW, build_document
from tests.support.pki import make_pki, sign_edxml, signed_pdf

bootstrap, topic, name, cookie, *personal = sys.argv[1:]
configure_logging("DEBUG", service="log-test")
log = get_logger("govsync.test")
log.debug("our own debug lines still show", marker="debug-on")
# Personal data in a message, in a field, nested: the formatter masks each.
log.warning("refused " + " ".join(personal), values=personal, nested={"file": personal[0]})

async def send() -> None:
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap))
    await producer.start()
    try:
        await producer.send_and_wait(topic, ('{"ChuHoSo": "%s"}' % name).encode(), key=b"k")
    finally:
        await producer.stop()

asyncio.run(send())

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Set-Cookie", "session=" + cookie)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
httpx.get(f"http://127.0.0.1:{server.server_port}/")
server.shutdown()

pki = make_pki()
bundle = TrustBundle.from_pem(pki.bundle_pem)
raw = sign_edxml(build_document(subject=name), pki.signer)
check_xml_signature(raw, find_signature(parse_xml(raw, EdxmlLimits())), trust=bundle, now=NOW)
verify_pdf(signed_pdf(pki.stranger_signer), trust=bundle, now=NOW)
"""


@pytest.mark.kafka
async def test_third_party_loggers_print_no_payload_at_debug(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    name, cookie = "Nguyen Van Payload", "SESSION-5f2a9c"
    topic = f"logs-{unique}"
    await create_topics(kafka_settings, topic, partitions=1)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOGGING_SCRIPT,
        kafka_settings.bootstrap_servers,
        topic,
        name,
        cookie,
        *PERSONAL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )
    async with asyncio.timeout(120):
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    loggers = Counter(str(line.get("logger")) for line in lines)
    figures(f"{len(lines)} JSON log lines at DEBUG, by logger: {dict(loggers)}")
    assert any(line.get("marker") == "debug-on" for line in lines)
    assert (await read_topic(kafka_settings, topic, at_least=1))[0].value is not None
    for secret in (name, cookie, "Người lạ"):
        assert secret not in text, secret
    for value in PERSONAL:
        # The digits themselves, in any grouping, never reach a line.
        assert re.sub(r"\D", "", value) not in re.sub(r"\D", "", text), value


@pytest.mark.kafka
async def test_dead_letter_reasons_name_no_field_a_sender_made_up(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    """The same unknown field twice with different values: the reason says so without quoting
    the name, which carried a citizen ID glued to its letters."""
    settings = ingest_settings(kafka_settings, unique, topic_partitions=1)
    await create_topics(kafka_settings, settings.topic_dossier, partitions=1)
    body = (
        '{"specversion": "1.0", "id": "pd-1", "source": "urn:vn:gov:dvc:test",'
        ' "type": "vn.gov.dvc.dossier.v1", "time": "2026-11-02T08:00:00+07:00",'
        ' "agency": "000.00.10.H29", "data": {"MaHoSo": "PD-0001", "TrangThaiHoSo": 2,'
        ' "CCCD001204012345": "a", " CCCD001204012345": "b", "hoso_001299012345.pdf": 1}}'
    )
    await produce(kafka_settings, settings.topic_dossier, [Sent(body.encode(), b"PD-0001")])
    async with running_ingest(settings):
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=1)
    reason = letters[0].headers[deadletter.REASON].decode()
    figures(f"dead-letter reason: {reason!r}")
    assert "sent twice" in reason
    assert "001204012345" not in reason
    assert "CCCD" not in reason
