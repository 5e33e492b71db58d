"""Hostile XML is refused cheaply: through `DocumentPipeline.normalise` and through Kafka.

Each attack must be refused with a clear reason in well under 100 ms, with a bounded Python
allocation peak (tracemalloc) and no growth of the process's resident high-water mark (libxml2
allocates outside tracemalloc's view). Through Kafka, each becomes a dead letter with its reason,
and the service keeps running and accepts a valid package afterwards.
"""

from __future__ import annotations

import base64
import resource
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest

from schemas.cloudevents import EventType
from services.common.settings import KafkaSettings
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.envelope import Envelope
from services.ingest.errors import EdxmlRefusedError, IngestError
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import NOW, OWN_AGENCIES, Attachment, build_document
from tests.support.ingest import ingest_settings, running_ingest
from tests.support.kafka import Sent, create_topics, produce, read_topic

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

LIMITS = EdxmlLimits(max_bytes=2 * 1024 * 1024, max_attachment_bytes=256 * 1024, max_attachments=20)
BUDGET_SECONDS = 0.1
XML = b"<?xml version='1.0' encoding='UTF-8'?>\n"


@dataclass(frozen=True)
class Attack:
    name: str
    raw: bytes
    causes: frozenset[str]
    """Acceptable `EdxmlRefusedError.cause` (the EdxmlError class) names."""


def _laughs() -> bytes:
    entities = "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' if i else '<!ENTITY lol0 "lol">'
        for i in range(10)
    )
    return XML + f"<!DOCTYPE lolz [{entities}]><edXML>&lol9;</edXML>".encode()


def _quadratic() -> bytes:
    big = "A" * 100_000
    return XML + f'<!DOCTYPE q [<!ENTITY a "{big}">]><edXML>{"&a;" * 10_000}</edXML>'.encode()


HOSTILE = frozenset({"HostileXmlError"})
ATTACKS = [
    Attack("billion-laughs", _laughs(), HOSTILE),
    Attack("quadratic-blowup", _quadratic(), HOSTILE),
    Attack(
        "external-entity-file",
        XML + b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><edXML>&e;</edXML>',
        HOSTILE,
    ),
    Attack(
        "external-entity-http",
        XML + b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><edXML>&e;</edXML>',
        HOSTILE,
    ),
    Attack(
        "parameter-entity",
        XML + b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><edXML/>',
        HOSTILE,
    ),
    Attack(
        "external-dtd",
        XML + b'<!DOCTYPE edXML SYSTEM "file:///etc/passwd"><edXML/>',
        HOSTILE,
    ),
    Attack(
        "doctype-after-comments-and-pi",
        XML
        + b"<!-- x --><?pi x?>\n<!-- y -->"
        + b"<!DOCTYPE x [<!ENTITY e 'e'>]><edXML>&e;</edXML>",
        HOSTILE,
    ),
    Attack(
        "doctype-in-utf16",
        (
            "<?xml version='1.0' encoding='UTF-16'?>"
            "<!DOCTYPE x [<!ENTITY e 'e'>]><edXML>&e;</edXML>"
        ).encode("utf-16"),
        HOSTILE,
    ),
    Attack(
        "undeclared-entity",
        XML + b"<edXML>&e;&e;&e;</edXML>",
        frozenset({"MalformedXmlError"}),
    ),
    Attack(
        "oversized-package",
        XML + b"<edXML>" + b"<a>x</a>" * 300_000 + b"</edXML>",
        frozenset({"XmlTooLargeError"}),
    ),
    Attack(
        "oversized-attachment",
        build_document(attachments=(Attachment("big.pdf", b"%PDF-" + b"\0" * 300_000),)),
        frozenset({"AttachmentTooLargeError"}),
    ),
    Attack(
        "too-many-attachments",
        build_document(attachments=tuple(Attachment(f"a{i}.pdf", b"%PDF-1.4") for i in range(25))),
        frozenset({"AttachmentTooLargeError"}),
    ),
    Attack(
        "attachment-not-base64",
        build_document(attachments=(Attachment("a.pdf", b"%PDF"),)).replace(
            base64.encodebytes(b"%PDF").strip(), b"!!!not base64!!!"
        ),
        frozenset({"MalformedXmlError"}),
    ),
    Attack(
        "deep-nesting",
        XML + b"<edXML>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</edXML>",
        frozenset({"XmlTooDeepError", "XmlTooLargeError"}),
    ),
    Attack(
        "huge-attribute-count",
        XML + b"<edXML><a " + b" ".join(b'x%d="1"' % i for i in range(100_000)) + b"/></edXML>",
        frozenset({"XmlTooLargeError", "MalformedXmlError", "NotEdxmlError"}),
    ),
    Attack(
        "duplicate-attributes",
        XML + b'<edXML><a x="1" x="2"/></edXML>',
        frozenset({"MalformedXmlError"}),
    ),
    Attack(
        "xinclude-is-not-processed",
        XML
        + b'<edXML xmlns:xi="http://www.w3.org/2001/XInclude">'
        + b'<xi:include href="file:///etc/passwd" parse="text"/></edXML>',
        frozenset({"NotEdxmlError"}),
    ),
]


def pipeline() -> DocumentPipeline:
    return DocumentPipeline(own_agencies=OWN_AGENCIES, trust=None, limits=LIMITS)


def envelope(raw: bytes) -> Envelope:
    return Envelope("attack", "urn:vn:gov:edoc:test", EventType.EDXML, NOW, raw, None, "bare")


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_refused_cheaply(attack: Attack, figures: Figures) -> None:
    documents = pipeline()
    documents.normalise(envelope(build_document()), now=NOW)  # warm up lxml and the imports
    rss_before = max_rss_kib()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(IngestError) as refused:
            documents.normalise(envelope(attack.raw), now=NOW)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_mib = (max_rss_kib() - rss_before) / 1024
    error = refused.value
    assert isinstance(error, EdxmlRefusedError), f"{type(error).__name__}: {error}"
    assert error.cause in attack.causes, f"{error.cause}: {error}"
    assert str(error)
    assert b"root:" not in str(error).encode()
    figures(
        f"{len(attack.raw)} bytes refused as {error.cause} in {elapsed * 1000:.1f} ms,"
        f" tracemalloc peak {peak / 1024:.0f} KiB, max RSS growth {rss_growth_mib:.1f} MiB"
    )
    assert elapsed < BUDGET_SECONDS
    assert peak < 3 * len(attack.raw) + 1024 * 1024
    assert rss_growth_mib < 64


@pytest.mark.kafka
async def test_attacks_through_kafka_become_dead_letters_and_ingest_keeps_going(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    settings = ingest_settings(
        kafka_settings, unique, edxml=LIMITS, max_event_bytes=4 * 1024 * 1024, topic_partitions=1
    )
    await create_topics(kafka_settings, settings.topic_edocument, partitions=1)
    # What fits one record of the test producer (1 MiB requests) in base64.
    attacks = [a for a in ATTACKS if len(a.raw) < 700_000]
    valid = build_document(number="777")
    sent = [
        Sent(
            orjson.dumps(
                {
                    "specversion": "1.0",
                    "id": f"attack-{a.name}",
                    "source": "urn:vn:gov:edoc:test",
                    "type": EventType.EDXML.value,
                    "data_base64": base64.b64encode(a.raw).decode(),
                }
            ),
            key=a.name.encode(),
        )
        for a in attacks
    ]
    sent.append(Sent(valid, key=b"valid"))
    async with running_ingest(settings):
        started = time.perf_counter()
        await produce(kafka_settings, settings.topic_edocument, sent)
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=len(attacks))
        normalised = await read_topic(
            kafka_settings, settings.topic_edocument_normalized, at_least=1
        )
        elapsed = time.perf_counter() - started
    reasons = {(r.key or b"").decode(): r.headers["govsync-dlq-reason"].decode() for r in letters}
    assert set(reasons) == {a.name for a in attacks}
    for letter in letters:
        assert letter.headers["govsync-dlq-error"] == b"EdxmlRefusedError"
        assert letter.headers["govsync-dlq-stage"] == b"parse"
        assert letter.headers["govsync-dlq-reason"]
    assert len(normalised) == 1
    assert b"777" in (normalised[0].value or b"")
    figures(
        f"{len(attacks)} attacks dead-lettered and a valid package accepted after them"
        f" in {elapsed:.2f}s; e.g. {reasons['billion-laughs']!r}"
    )
