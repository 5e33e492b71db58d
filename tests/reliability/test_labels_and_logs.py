"""Labels and logs (issue 13): what senders write never becomes a metric label or a log value.

Through a real ingest process on the test broker: a sender fills `MaDonVi` with hundreds of
well-formed codes and an edXML `OrganId` with a name and a phone number; `/metrics` (which needs
no credential) shows only the configured agencies, `other` and `unknown`, and the configured
agency still keeps its own label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.settings import KafkaSettings
from tests.support.edxml_corpus import build_document
from tests.support.ingest import ingest_settings, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

SERVED = "000.00.10.H29"
FLOOD = 250
FREE_TEXT = "Nguyen Van A 0912345678"


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
