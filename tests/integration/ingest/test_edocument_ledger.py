"""The e-document ledger is durable (issue 12, finding 4): after a restart a redelivered package
is a duplicate, and the exact gauges reflect revocations and replacements.

On main the ledger was an in-memory LRU: a restarted ingest counted redelivered packages again
and a revoked document was never taken back.
"""

from __future__ import annotations

import httpx
import pytest

from services.common.settings import KafkaSettings
from tests.support.edxml_corpus import ISSUER, OWN_AGENCIES, build_document
from tests.support.ingest import ingest_settings, metric_value, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.kafka

COUNTED = "govsync_edocuments_counted"


def package(number: str, **kwargs: object) -> bytes:
    return build_document(number=number, **kwargs)  # type: ignore[arg-type]


def document_id(number: str) -> str:
    return f"{ISSUER},2026/02/27,{number}/QĐ-UBND"


async def figures(base_url: str) -> tuple[float, float]:
    """(outgoing unsigned documents counted, `govsync_edocuments_total` of them)."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    labels = {"agency": ISSUER, "direction": "outgoing", "signature": "unsigned"}
    return metric_value(text, COUNTED, **labels), metric_value(
        text, "govsync_edocuments_total", **labels
    )


async def test_the_ledger_survives_a_restart(kafka_settings: KafkaSettings, unique: str) -> None:
    settings = ingest_settings(kafka_settings, unique, own_agencies=OWN_AGENCIES)
    await create_topics(kafka_settings, settings.topic_edocument, partitions=3)
    first = [Sent(package(n), document_id(n).encode()) for n in ("1", "2", "3")]
    await produce(kafka_settings, settings.topic_edocument, first)
    async with running_ingest(settings) as base_url:
        await read_topic(kafka_settings, settings.topic_edocument_normalized, at_least=3)
        assert await figures(base_url) == (3, 3)

    # Redelivered after a restart: duplicates. Then document 2 is revoked and document 3
    # replaced by document 4: two documents count, none twice.
    later = [
        *first,
        Sent(package("2", business_type=1, business_document_id=document_id("2")), b"2"),
        Sent(
            package("4", business_type=3, replaces=(document_id("3"),)), document_id("3").encode()
        ),
    ]
    await produce(kafka_settings, settings.topic_edocument, later)
    async with running_ingest(settings) as base_url:
        records = await read_topic(
            kafka_settings, settings.topic_edocument_normalized, at_least=5, idle=2.0
        )
        counted, total = await figures(base_url)
    assert len(records) == 5  # the three redeliveries published nothing
    assert (counted, total) == (2, 0)  # the counter restarted at 0: nothing counted again
    async with running_ingest(settings) as base_url:
        assert (await figures(base_url))[0] == 2  # rebuilt from the ledger topic alone
