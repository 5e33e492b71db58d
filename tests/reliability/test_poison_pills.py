"""Poison pills: no event, however malformed, stops ingest, and the intake's 202 is a promise.

Two events from issue 13 once ended the worker (and its HTTP intake) and, being uncommitted,
ended it again after every restart: a CloudEvent whose `time` has no offset (202 at the intake,
then a `ValidationError` outside the per-event handling) and an edXML package whose unsigned
signing time is `0001-01-01T00:00:00+14:00` (`OverflowError` in `astimezone`: a 500 over HTTP).
Now each ends as its own dead letter (reason, stage, error class) or a 4xx, and the events
behind it are handled as usual. Property tests drive arbitrary JSON and XML through the
worker's per-event handling (`EventHandler.handle`) and check that it never raises and that the
intake (`EventHandler.admit`) accepts exactly what the worker would not dead-letter.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.cloudevents import EventType
from services.common.auth import hash_key
from services.common.settings import KafkaSettings
from services.ingest.envelope import from_structured
from services.ingest.errors import EventRefusedError, IngestError
from services.ingest.main import build_documents, build_pipeline
from services.ingest.outcome import Outcome
from services.ingest.settings import IngestSettings
from tests.reliability.conftest import Intake, build_intake
from tests.support.edxml_corpus import NOW, build_document, build_status
from tests.support.ingest import (
    API_KEY,
    API_SOURCES,
    ingest_settings,
    metric_value,
    running_ingest,
)
from tests.support.kafka import Sent, create_topics, produce, read_topic
from tests.support.pki import make_pki, sign_edxml

if TYPE_CHECKING:
    from services.ingest.handling import EventHandler

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

SOURCE = API_SOURCES[0]
CE = "application/cloudevents+json"
NAIVE_TIME = "2026-12-01T10:00:00"
YEAR_ONE = "0001-01-01T00:00:00+14:00"


def dossier_event(event_id: str, dossier: str = "H-1", **attributes: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": EventType.DOSSIER.value,
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": dossier, "TrangThaiHoSo": 2, "NgayTiepNhan": "20260301080000"},
        **attributes,
    }


def year_one_package(number: str = "901") -> bytes:
    """A signed package whose (unsigned) SigningTime is year 1 at +14:00."""
    signed = sign_edxml(build_document(number=number), make_pki().signer, signing_time=NOW)
    stamped = NOW.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    assert stamped in signed
    return signed.replace(stamped, YEAR_ONE.encode())


def edxml_event(event_id: str, package: bytes) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": EventType.EDXML.value,
        "data_base64": base64.b64encode(package).decode(),
    }


def handler(**overrides: Any) -> EventHandler:
    # Imported here so that the HTTP and Kafka tests run (and fail) on code without it.
    from services.ingest.main import build_handler

    built = IngestSettings(**overrides)
    return build_handler(built, build_pipeline(built), build_documents(built))


@pytest.fixture
async def intake() -> AsyncIterator[tuple[Intake, httpx.AsyncClient]]:
    built = build_intake(IngestSettings(api_keys={hash_key(API_KEY): [SOURCE]}))
    transport = httpx.ASGITransport(app=built.app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield built, client


def post(client: httpx.AsyncClient, body: Any) -> Any:
    return client.post(
        "/v1/events",
        content=orjson.dumps(body),
        headers={"X-API-Key": API_KEY, "content-type": CE},
    )


# --- the two events of the issue, over HTTP ------------------------------------------------------


async def test_a_time_without_offset_is_refused_at_the_intake(
    intake: tuple[Intake, httpx.AsyncClient],
) -> None:
    built, client = intake
    response = await post(client, dossier_event("naive", time=NAIVE_TIME))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["time"]
    assert "timezone" in problem["errors"][0]["problem"]
    assert built.sink.published == []
    # The same event with its offset is accepted.
    accepted = await post(client, dossier_event("aware", time=NAIVE_TIME + "+07:00"))
    assert accepted.status_code == 202, accepted.text


async def test_a_year_one_signing_time_is_never_a_500(
    intake: tuple[Intake, httpx.AsyncClient],
) -> None:
    """Answered as the worker would decide: a 4xx naming the stage, or a 202 it will accept."""
    built, client = intake
    event = edxml_event("year-one", year_one_package())
    response = await post(client, event)
    assert response.status_code in (202, 422), response.text
    envelope = from_structured(event)
    worker = await handler().handle(
        "govsync.edocument.v1", orjson.dumps(event), [], states={}, now=NOW
    )
    if response.status_code == 422:
        assert worker.outcome is Outcome.DEAD_LETTERED
        assert worker.refusal is not None
        problem = response.json()["errors"][0]["problem"]
        assert worker.refusal.stage in problem
        assert worker.refusal.stage == "signature"
        assert built.sink.published == []
    else:
        assert worker.outcome is Outcome.ACCEPTED
        assert envelope.id == "year-one"


# --- through Kafka: the worker survives them -----------------------------------------------------


@pytest.mark.kafka
async def test_poison_pills_on_kafka_are_dead_letters_and_the_worker_goes_on(
    kafka_settings: KafkaSettings, unique: str, figures: Figures
) -> None:
    settings = ingest_settings(kafka_settings, unique, topic_partitions=1)
    await create_topics(
        kafka_settings, settings.topic_dossier, settings.topic_edocument, partitions=1
    )
    naive = dossier_event("naive", dossier="H-POISON", time=NAIVE_TIME)
    year_one = edxml_event("year-one", year_one_package())
    async with running_ingest(settings) as base_url:
        await produce(
            kafka_settings,
            settings.topic_dossier,
            [
                Sent(orjson.dumps(naive), key=b"H-POISON"),
                Sent(orjson.dumps(dossier_event("after", dossier="H-AFTER")), key=b"H-AFTER"),
            ],
        )
        await produce(
            kafka_settings,
            settings.topic_edocument,
            [Sent(orjson.dumps(year_one), key=b"year-one"), Sent(build_document(number="902"))],
        )
        normalised = await read_topic(kafka_settings, settings.topic_dossier_normalized, at_least=1)
        documents = await read_topic(
            kafka_settings, settings.topic_edocument_normalized, at_least=1
        )
        letters = await read_topic(kafka_settings, settings.topic_dlq, at_least=1)
        async with httpx.AsyncClient(base_url=base_url) as client:
            assert (await client.get("/healthz")).status_code == 200
            metrics = (await client.get("/metrics")).text
    assert [r.key for r in normalised] == [b"H-AFTER"]
    by_key = {r.key: r.headers for r in letters}
    assert by_key[b"H-POISON"]["govsync-dlq-stage"] == b"validate"
    assert by_key[b"H-POISON"]["govsync-dlq-error"] == b"ContractError"
    assert b"time" in by_key[b"H-POISON"]["govsync-dlq-reason"]
    # The year-one package ends in exactly one outcome: a dead letter naming its stage, or a
    # normalised record; the package behind it is normalised either way.
    year_one_records = [r for r in documents if b",901/" in (r.value or b"")]
    if b"year-one" in by_key:
        assert by_key[b"year-one"]["govsync-dlq-stage"] == b"signature"
        assert by_key[b"year-one"]["govsync-dlq-error"]
        assert by_key[b"year-one"]["govsync-dlq-reason"]
        assert year_one_records == []
    else:
        assert len(year_one_records) == 1
    assert any(b",902/" in (r.value or b"") for r in documents)
    dead = "dead_lettered"
    # Refused in its envelope, before its type is known.
    assert metric_value(metrics, "govsync_events_total", type="unknown", outcome=dead) == 1
    assert metric_value(metrics, "govsync_events_total", type=EventType.EDXML, outcome=dead) == len(
        [k for k in by_key if k == b"year-one"]
    )
    figures(
        f"{len(letters)} poison pills dead-lettered, {len(normalised) + len(documents)} events"
        f" behind them handled; reasons: "
        + "; ".join(f"{k!r}: {v['govsync-dlq-reason'].decode()}" for k, v in by_key.items())
    )


# --- properties of the per-event handling --------------------------------------------------------

BOUNDED = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DOSSIER_TOPIC, EDOC_TOPIC = "govsync.dossier.v1", "govsync.edocument.v1"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "2026-12-01T10:00:00", YEAR_ONE, "9999-12-31T23:59:59-14:00", "\x00"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
times = st.sampled_from(
    [NAIVE_TIME, YEAR_ONE, "9999-12-31T23:59:59-14:00", "2026-03-01T08:00:00+07:00", "", "x"]
)


def mostly(valid: st.SearchStrategy[Any], odds: int = 5) -> st.SearchStrategy[Any]:
    """Valid but once in `odds`, so that what lies behind a field is reached too."""
    # Not `one_of(valid, ..., json_scalars)`: one_of flattens the branches and weighs each alike.
    # Nor `integers(...)`, which favours its bounds.
    return st.sampled_from(range(odds)).flatmap(lambda i: json_scalars if i == odds - 1 else valid)


dossier_fields = st.fixed_dictionaries(
    {
        "MaHoSo": mostly(st.sampled_from(["H-1", "H-2", "H-3"])),
        "TrangThaiHoSo": mostly(st.sampled_from([2, "4", "done", 9])),
    },
    optional={
        "NgayTiepNhan": mostly(st.just("20260301080000")) | times,
        "NgayHenTra": mostly(st.just("20260315170000")) | times,
        "ThoiDiemXuLy": times | json_scalars,
        "MaDonVi": mostly(st.sampled_from(["000.00.00.G22", "000.00.10.h29"])),
        "TaiLieuNop": st.lists(
            st.dictionaries(
                st.sampled_from(["DuongDanTaiTepTin", "TepDinhKemId", "DuocSoHoa"]),
                mostly(st.sampled_from(["https://files.example.vn/a.pdf", "1"])),
            ),
            max_size=3,
        )
        | json_values,
        "DanhSachLePhi": st.lists(st.fixed_dictionaries({"Gia": json_scalars}), max_size=2),
    },
)
XML_SAMPLES = [
    build_document(),
    build_document(number="77", namespace=False),
    build_status("06"),
    year_one_package("903"),
]


@st.composite
def packages(draw: st.DrawFn) -> bytes:
    """A real package, cut, spliced or with a few bytes replaced, or arbitrary bytes."""
    raw = draw(st.sampled_from(XML_SAMPLES))
    how = draw(st.sampled_from(["as-is", "as-is", "as-is", "cut", "replace", "splice", "bytes"]))
    if how == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if how == "replace":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at + 8 :]
    if how == "splice":
        at = draw(st.integers(0, len(raw)))
        return (
            raw[:at] + draw(st.sampled_from([b"<a>", b"]]>", b"&x;", b"\xff", b"<!--"])) + raw[at:]
        )
    if how == "bytes":
        return b"<" + draw(st.binary(max_size=200))
    return raw


def events() -> st.SearchStrategy[dict[str, Any]]:
    attributes = {
        "specversion": mostly(st.just("1.0"), 12),
        "id": mostly(st.sampled_from(["e-1", "e-2", "e-3"]) | st.text(max_size=8), 12),
        "source": mostly(st.just(SOURCE), 12),
    }
    dossier = st.fixed_dictionaries(
        {
            **attributes,
            "type": mostly(
                st.sampled_from([EventType.DOSSIER.value, EventType.PROGRESS.value]), 12
            ),
            "data": mostly(dossier_fields),
        },
        optional={
            "time": mostly(st.just("2026-03-01T08:00:00+07:00") | times, 12),
            "agency": mostly(st.just("000.00.00.G22")),
        },
    )
    document = st.fixed_dictionaries(
        {
            **attributes,
            "type": st.sampled_from([EventType.EDXML.value, EventType.EDOC_STATUS.value]),
            "data_base64": packages().map(lambda b: base64.b64encode(b).decode()),
        },
        optional={"time": times},
    )
    return dossier | document


def topic_of(event: Any) -> str:
    if isinstance(event, dict) and event.get("type") in (
        EventType.EDXML.value,
        EventType.EDOC_STATUS.value,
    ):
        return EDOC_TOPIC
    return DOSSIER_TOPIC


def test_the_per_event_handling_never_raises(figures: Figures) -> None:
    """Arbitrary JSON, CloudEvents and XML (structured, binary and bare) through `handle`."""
    worker = handler()
    outcomes: dict[str, int] = {}
    loop = asyncio.new_event_loop()

    records = st.one_of(
        events().map(lambda e: (topic_of(e), orjson.dumps(e), [])),
        json_values.map(lambda v: (DOSSIER_TOPIC, orjson.dumps(v), [])),
        dossier_fields.map(lambda v: (DOSSIER_TOPIC, orjson.dumps(v), [])),
        packages().map(lambda b: (EDOC_TOPIC, b, [])),
        st.tuples(
            st.sampled_from([DOSSIER_TOPIC, EDOC_TOPIC]),
            packages() | dossier_fields.map(orjson.dumps),
            st.fixed_dictionaries(
                {
                    "ce_specversion": st.just(b"1.0"),
                    "ce_id": st.sampled_from([b"b-1", b"", b"\xff"]),
                    "ce_source": st.just(SOURCE.encode()),
                    "ce_type": st.sampled_from(
                        [e.value.encode() for e in EventType] + [b"x", b"\xff"]
                    ),
                },
                optional={"ce_time": times.map(str.encode)},
            ).map(lambda h: list(h.items())),
        ),
        st.tuples(st.just(DOSSIER_TOPIC), st.binary(max_size=300), st.just([])),
    )

    @BOUNDED
    @given(record=records)
    def check(record: tuple[str, bytes, list[tuple[str, bytes]]]) -> None:
        topic, value, headers = record
        handled = loop.run_until_complete(worker.handle(topic, value, headers, states={}, now=NOW))
        outcomes[handled.outcome.value] = outcomes.get(handled.outcome.value, 0) + 1
        if handled.outcome is Outcome.DEAD_LETTERED:
            assert handled.refusal is not None
            assert handled.refusal.reason.strip()
            assert handled.refusal.stage
            assert handled.refusal.error_class
        else:
            assert handled.refusal is None

    try:
        check()
    finally:
        loop.close()
    figures(f"records handled without raising: {sum(outcomes.values())} {outcomes}")
    assert outcomes.get("accepted", 0) > 0, "the strategy never reached an accepted outcome"
    assert outcomes.get("dead_lettered", 0) > 0


def test_the_intake_admits_exactly_what_the_worker_accepts(figures: Figures) -> None:
    """A 202 is a promise: `admit` passes an event iff `handle` (fresh state) would not
    dead-letter the bytes the intake writes."""
    worker = handler()
    agreed: dict[str, int] = {}
    loop = asyncio.new_event_loop()

    @BOUNDED
    @given(event=events())
    def check(event: dict[str, Any]) -> None:
        value = orjson.dumps(event)
        topic = topic_of(event)
        try:
            envelope = from_structured(event)
        except IngestError:
            envelope = None
        admitted: EventRefusedError | None = None
        if envelope is not None:
            try:
                loop.run_until_complete(worker.admit(envelope, value, now=NOW))
            except EventRefusedError as exc:
                admitted = exc
        handled = loop.run_until_complete(worker.handle(topic, value, [], states={}, now=NOW))
        refused_by_worker = handled.outcome is Outcome.DEAD_LETTERED
        refused_by_intake = envelope is None or admitted is not None
        assert refused_by_intake == refused_by_worker, (admitted, handled.refusal)
        if admitted is not None and handled.refusal is not None:
            assert type(admitted) is type(handled.refusal.error)
        key = "refused" if refused_by_worker else "accepted"
        agreed[key] = agreed.get(key, 0) + 1

    try:
        check()
    finally:
        loop.close()
    figures(f"intake and worker agreed on {sum(agreed.values())} events {agreed}")
    assert agreed.get("accepted", 0) > 0
    assert agreed.get("refused", 0) > 0
