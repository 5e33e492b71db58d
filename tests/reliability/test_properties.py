"""Property-based tests of every parser and normaliser on the ingest path.

The one property everywhere: whatever the input (arbitrary bytes, JSON of the wrong shape, huge
strings and numbers, deep nesting, invalid UTF-8), the result is a value or an `IngestError`
(which becomes a dead letter with a reason) and never any other exception. Where an oracle
exists (dates built from known components, personal values embedded in text) the value is
checked too. Every property is bounded (`max_examples`), so the file stays well under a minute.
"""

from __future__ import annotations

import base64
import string
import time
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.cloudevents import EventType
from schemas.dossier import Channel, DossierEvent, DossierStatus, ProgressEvent
from services.common.dates import LOCAL_TZ
from services.common.masking import mask_personal_data
from services.ingest.dossiers.decide import Policy
from services.ingest.dossiers.decode import canonical_keys
from services.ingest.dossiers.normalise import clean_text, parse_code, parse_datetime
from services.ingest.dossiers.pipeline import DossierPipeline, VocabularyBook
from services.ingest.dossiers.state import DossierState
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.envelope import Envelope, decode_record, from_structured
from services.ingest.errors import (
    ContractError,
    IngestError,
    InvalidCodeError,
    InvalidDateError,
)
from services.ingest.outcome import Outcome
from services.ingest.settings import (
    DEFAULT_CHANNEL_VOCABULARY,
    DEFAULT_STATUS_VOCABULARY,
    EdxmlLimits,
)
from tests.support.edxml_corpus import NOW, OWN_AGENCIES, corpus

pytestmark = pytest.mark.reliability

Figures = Callable[[str], None]
BOUNDED = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = settings(BOUNDED, max_examples=120)
_CONTROL = {chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}

# --- strategies ---------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "0" * 2000, "9" * 400, "\u0000", "é" * 300, "\ud7ff"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)


def deep(levels: int) -> Any:
    value: Any = "x"
    for i in range(levels):
        value = [value] if i % 2 else {"a": value}
    return value


def spellings(name: str) -> st.SearchStrategy[str]:
    """The contract's field name as real systems send it: any case, stray whitespace."""
    return st.tuples(
        st.sampled_from([name, name.lower(), name.upper(), name.swapcase()]),
        st.sampled_from(["", " ", "\t", "  "]),
        st.sampled_from(["", " ", "\n"]),
    ).map(lambda t: t[1] + t[0] + t[2])


dates_text = st.one_of(
    st.text(alphabet=string.digits, min_size=1, max_size=20),
    st.integers(min_value=-(10**16), max_value=10**16).map(str),
    st.datetimes().map(lambda d: d.strftime("%Y%m%d%H%M%S")),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
loose_values = json_values | dates_text | st.integers(min_value=-20, max_value=20)


def dossier_data(model: type[DossierEvent] | type[ProgressEvent]) -> st.SearchStrategy[Any]:
    """Mostly valid-looking items (so normalisation runs) with any field replaced by anything."""
    aliases = [f.alias or n for n, f in model.model_fields.items()]
    required: dict[str, Any] = (
        {"MaHoSo": "H-1", "TrangThaiHoSo": 2}
        if model is DossierEvent
        else {"MaHoSo": "H-1", "ThoiDiemXuLy": "20260301080000"}
    )
    fields = st.dictionaries(
        st.sampled_from(aliases).flatmap(spellings), loose_values, min_size=0, max_size=8
    )
    nested = st.fixed_dictionaries(
        {},
        optional={
            "DinhDanhCHS": st.lists(
                st.fixed_dictionaries({"LoaiDinhDanh": loose_values, "SoDinhDanh": loose_values}),
                max_size=3,
            ),
            "TaiLieuNop": st.lists(st.dictionaries(st.text(max_size=20), loose_values), max_size=3),
            "DanhSachLePhi": st.lists(
                st.fixed_dictionaries({"Gia": loose_values, "TenPhiLePhi": loose_values}),
                max_size=3,
            ),
        },
    )
    return st.one_of(
        st.tuples(fields, nested).map(lambda t: {**required, **t[1], **t[0]}),
        json_values,
        st.just(deep(120)),
    )


def cloudevents(data: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    attributes = st.fixed_dictionaries(
        {
            # Mostly valid attributes, so that the data behind them is reached too.
            "specversion": st.sampled_from(["1.0", "1.0", "1.0", "0.3", 1.0]),
            "id": st.sampled_from(["e-1", "e-2", "", 7]) | st.text(min_size=1, max_size=20),
            "source": st.sampled_from(["urn:vn:gov:dvc:a", "urn:b", "", " "]),
            "type": st.sampled_from(
                [EventType.DOSSIER.value] * 3 + [EventType.PROGRESS.value] * 3 + ["x", "vn.gov"]
            ),
        },
        optional={
            "time": st.sampled_from(
                [
                    "2026-03-01T08:00:00+07:00",
                    "2026-03-01T08:00:00Z",
                    "0001-01-01T00:00:00+14:00",
                    "9999-12-31T23:59:59-14:00",
                    "2026-02-30T00:00:00Z",
                    "",
                ]
            ),
            "agency": st.sampled_from(["000.00.00.G22", "bad"]) | json_scalars,
            "data": data,
            "data_base64": st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
            | st.sampled_from(["not base64!", "", "e30="]),
        },
    )
    valid = st.fixed_dictionaries(
        {
            "specversion": st.just("1.0"),
            "id": st.sampled_from(["e-1", "e-2", "e-3"]),
            "source": st.just("urn:vn:gov:dvc:a"),
            "type": st.sampled_from([EventType.DOSSIER.value, EventType.PROGRESS.value]),
            "time": st.sampled_from(["2026-03-01T08:00:00+07:00", "2026-03-01T08:00:00Z"]),
            "data": data,
        },
        optional={"agency": st.sampled_from(["000.00.00.G22", "000.00.10.h29", "bad"])},
    )
    return valid | attributes


# --- helpers -----------------------------------------------------------------------------------


def pipeline() -> DossierPipeline:
    return DossierPipeline(
        vocabularies=VocabularyBook(
            {"*": DEFAULT_STATUS_VOCABULARY}, {"*": DEFAULT_CHANNEL_VOCABULARY}
        ),
        policy=Policy(legal_time_limits_days={"P1": 5}),
        max_text_chars=4000,
    )


def documents() -> DocumentPipeline:
    return DocumentPipeline(own_agencies=OWN_AGENCIES, trust=None, limits=EdxmlLimits())


def assert_reason(error: IngestError) -> None:
    """A refusal names its reason (it becomes the dead letter's `govsync-dlq-reason`)."""
    assert str(error).strip()
    if isinstance(error, ContractError):
        assert all(path and problem for path, problem in error.errors)


def through_ingest(envelope: Envelope, states: dict[str, bytes]) -> str:
    """Run an envelope as the worker does; only IngestError may come out, as a dead letter."""
    if envelope.type in (EventType.EDXML, EventType.EDOC_STATUS):
        try:
            record = documents().normalise(envelope, now=NOW)
        except IngestError:
            return "dead_lettered"
        return documents().decide(record).outcome.value
    result = pipeline().handle(envelope, states=states, now=NOW)
    if result.outcome is Outcome.DEAD_LETTERED:
        assert isinstance(result.error, IngestError)
        assert str(result.error), "a dead letter always says why"
    else:
        assert result.key is not None
        assert result.decision is not None
    return result.outcome.value


# --- envelopes ---------------------------------------------------------------------------------

headers = st.lists(
    st.tuples(
        st.sampled_from(["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "x"])
        | st.text(max_size=8),
        st.binary(max_size=30) | st.sampled_from([b"1.0", b"vn.gov.dvc.dossier.v1", b"\xff"]),
    ),
    max_size=5,
)
record_values = st.one_of(
    st.binary(max_size=2048),
    json_values.map(orjson.dumps),
    dossier_data(DossierEvent).map(lambda d: orjson.dumps(d)),
    cloudevents(dossier_data(DossierEvent)).map(orjson.dumps),
    st.sampled_from(
        [b"", b"   ", b"<", b"<?xml version='1.0'?>", b"\xef\xbb\xbf{}", b"{" * 10_000, b"\xc3\x28"]
    ),
)


def test_decode_record_then_ingest_never_raises_anything_but_ingest_error(
    figures: Figures,
) -> None:
    tried: dict[str, int] = {}

    @BOUNDED
    @given(value=record_values | st.none(), headers=headers)
    def check(value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        try:
            envelope = decode_record(value, headers, topic="t", max_bytes=64 * 1024)
        except IngestError as exc:
            assert_reason(exc)
            tried["refused at decode"] = tried.get("refused at decode", 0) + 1
            return
        outcome = through_ingest(envelope, {})
        tried[outcome] = tried.get(outcome, 0) + 1

    check()
    figures(f"inputs tried: {sum(tried.values())} {dict(sorted(tried.items()))}")
    assert sum(tried.values()) >= 100


def test_from_structured_and_handle(figures: Figures) -> None:
    tried: dict[str, int] = {}

    @BOUNDED
    @given(
        event=cloudevents(dossier_data(DossierEvent) | dossier_data(ProgressEvent)) | json_values
    )
    def check(event: Any) -> None:
        if not isinstance(event, Mapping):
            event = {"data": event}
        try:
            envelope = from_structured(event)
        except IngestError:
            tried["refused"] = tried.get("refused", 0) + 1
            return
        outcome = through_ingest(envelope, {})
        tried[outcome] = tried.get(outcome, 0) + 1

    check()
    figures(f"inputs tried: {sum(tried.values())} {dict(sorted(tried.items()))}")
    assert tried.get("accepted", 0) > 0, "the strategy never reached the state machine"


@pytest.mark.parametrize("model", [DossierEvent, ProgressEvent], ids=["dossier", "progress"])
def test_validate_and_normalise_any_item(
    model: type[DossierEvent] | type[ProgressEvent], figures: Figures
) -> None:
    """`validate_data` + `normalize_*` through `DossierPipeline.change`, then `decide` twice."""
    tried: dict[str, int] = {}
    event_type = EventType.DOSSIER if model is DossierEvent else EventType.PROGRESS

    @BOUNDED
    @given(data=dossier_data(model), event_id=st.text(min_size=1, max_size=10))
    def check(data: Any, event_id: str) -> None:
        envelope = Envelope(event_id, "urn:s", event_type, None, data, None, "bare")
        states: dict[str, bytes] = {}
        first = through_ingest(envelope, states)
        tried[first] = tried.get(first, 0) + 1
        if first == "accepted":
            # The same event again is a duplicate, never a second revision.
            assert through_ingest(envelope, states) == Outcome.DUPLICATE.value
            (packed,) = states.values()
            state = DossierState.from_bytes(packed)
            assert state.revision == 1
            assert state.to_bytes() == packed

    check()
    figures(f"inputs tried: {sum(tried.values())} {dict(sorted(tried.items()))}")
    assert tried.get("accepted", 0) > 0
    assert tried.get("dead_lettered", 0) > 0


def test_handle_keeps_revisions_gapless_under_any_event_sequence(figures: Figures) -> None:
    """`DossierPipeline.handle` + `state.decide`: revisions grow by one per accepted change."""
    tried = 0
    item = st.fixed_dictionaries(
        {
            "MaHoSo": st.sampled_from(["H-1", "H-2"]),
            "TrangThaiHoSo": st.sampled_from([1, 2, 4, 5, 6, 9, 10, "done", "x", 0]),
            "NgayTiepNhan": st.sampled_from(["20260301080000", "20260230080000", "", None]),
            "NgayHenTra": st.sampled_from(["20260310080000", None]),
        }
    )
    events = st.lists(
        st.tuples(
            item,
            st.sampled_from(["e1", "e2", "e3", "e4", "e5"]),
            st.datetimes(
                datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
                datetime(2026, 12, 31),  # noqa: DTZ001
                timezones=st.just(UTC),
            )
            | st.none(),
        ),
        min_size=1,
        max_size=12,
    )

    @SMALL
    @given(sequence=events)
    def check(sequence: list[tuple[dict[str, Any], str, datetime | None]]) -> None:
        nonlocal tried
        states: dict[str, bytes] = {}
        accepted: dict[str, int] = {}
        for data, event_id, at in sequence:
            tried += 1
            envelope = Envelope(event_id, "urn:s", EventType.DOSSIER, at, data, None, "bare")
            result = pipeline().handle(envelope, states=states, now=NOW)
            if result.outcome is Outcome.ACCEPTED:
                assert result.key is not None
                assert result.decision is not None
                assert result.decision.record is not None
                accepted[result.key] = accepted.get(result.key, 0) + 1
                assert result.decision.record.revision == accepted[result.key]
        for code, count in accepted.items():
            assert DossierState.from_bytes(states[code]).revision == count

    check()
    figures(f"inputs tried: {tried} events")


# --- dates ---------------------------------------------------------------------------------------


def expect_date(value: str | int, expected: datetime | None) -> None:
    """`expected` None means the value must be refused with InvalidDateError."""
    if expected is None or not 1990 <= expected.astimezone(LOCAL_TZ).year <= 2100:
        with pytest.raises(InvalidDateError):
            parse_datetime(value, field="NgayTiepNhan")
        return
    parsed = parse_datetime(value, field="NgayTiepNhan")
    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(hours=7)


def component(y: int, mo: int, d: int, h: int, mi: int, s: int) -> datetime | None:
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=LOCAL_TZ)
    except ValueError:
        return None


years = st.sampled_from(
    [1, 999, 1000, 1989, 1990, 2024, 2023, 2099, 2100, 2101, 9999]
) | st.integers(1, 9999)
months = st.integers(0, 13)
days = st.sampled_from([0, 1, 28, 29, 30, 31, 32]) | st.integers(0, 32)
hours = st.sampled_from([0, 23, 24]) | st.integers(0, 25)
minutes = st.sampled_from([0, 59, 60]) | st.integers(0, 61)


def test_parse_datetime_digit_formats_at_their_limits(figures: Figures) -> None:
    """14 and 8 digits: exactly the wall time in Asia/Ho_Chi_Minh, or refused; never a guess."""
    tried = 0

    @BOUNDED
    @given(y=years, mo=months, d=days, h=hours, mi=minutes, s=minutes, short=st.booleans())
    def check(y: int, mo: int, d: int, h: int, mi: int, s: int, short: bool) -> None:
        nonlocal tried
        tried += 1
        if y > 9999 or y < 1:
            return
        if short:
            expect_date(f"{y:04d}{mo:02d}{d:02d}", component(y, mo, d, 0, 0, 0))
        else:
            expect_date(
                f"{y:04d}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}", component(y, mo, d, h, mi, s)
            )

    check()
    figures(f"inputs tried: {tried}")


def test_parse_datetime_slash_and_iso_formats_with_offsets(figures: Figures) -> None:
    tried = 0

    @BOUNDED
    @given(
        y=years,
        mo=months,
        d=days,
        h=hours,
        mi=minutes,
        offset=st.sampled_from([-14 * 60, 14 * 60, 0, 7 * 60]) | st.integers(-14 * 60, 14 * 60),
        form=st.sampled_from(["dmy", "ymd", "iso", "iso-offset", "iso-z"]),
    )
    def check(y: int, mo: int, d: int, h: int, mi: int, offset: int, form: str) -> None:
        nonlocal tried
        tried += 1
        local = component(y, mo, d, h, mi, 0)
        if form == "dmy":
            expect_date(f"{d:02d}/{mo:02d}/{y:04d} {h:02d}:{mi:02d}:00", local)
        elif form == "ymd":
            expect_date(f"{y:04d}/{mo:02d}/{d:02d} {h:02d}:{mi:02d}:00", local)
        elif form == "iso":
            expect_date(f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00", local)
        else:
            zone = UTC if form == "iso-z" else timezone(timedelta(minutes=offset))
            suffix = "Z" if form == "iso-z" else zone.tzname(None).replace("UTC", "") or "+00:00"
            text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00{suffix}"
            try:
                aware: datetime | None = datetime(y, mo, d, h, mi, 0, tzinfo=zone)
                assert aware is not None
                if not 1990 <= aware.astimezone(LOCAL_TZ).year <= 2100:
                    aware = None
            except (ValueError, OverflowError):
                aware = None
            expect_date(text, aware)

    check()
    figures(f"inputs tried: {tried}")


EPOCH_EDGES = [
    int(datetime(1990, 1, 1, tzinfo=LOCAL_TZ).timestamp() * 1000),
    int(datetime(2101, 1, 1, tzinfo=LOCAL_TZ).timestamp() * 1000),
    0,
    -1,
    10**12,
    10**13 - 1,
    10**13,
    -(10**13),
]


def test_parse_datetime_epoch_milliseconds(figures: Figures) -> None:
    tried = 0

    @BOUNDED
    @given(
        ms=st.sampled_from(EPOCH_EDGES).flatmap(lambda e: st.integers(e - 2, e + 2))
        | st.integers(-(10**14), 10**14)
        | st.integers(),
        as_text=st.booleans(),
    )
    def check(ms: int, as_text: bool) -> None:
        nonlocal tried
        tried += 1
        value: str | int = str(ms) if as_text else ms
        digits = len(str(abs(ms)))
        if digits > 13 or digits in (8, 14):
            # Not epoch milliseconds: a digit date or nothing; refused or a valid date.
            try:
                parsed = parse_datetime(value, field="f")
            except InvalidDateError:
                return
            assert 1990 <= parsed.year <= 2100
            return
        expected = datetime.fromtimestamp(ms / 1000, tz=UTC)
        expect_date(value, expected)

    check()
    figures(f"inputs tried: {tried}")


def test_parse_datetime_any_text_or_number(figures: Figures) -> None:
    tried = 0

    @BOUNDED
    @given(value=dates_text | st.integers() | st.just(10**5000) | st.text(max_size=200))
    def check(value: str | int) -> None:
        nonlocal tried
        tried += 1
        try:
            parsed = parse_datetime(value, field="f")
        except InvalidDateError as exc:
            assert_reason(exc)
            return
        assert parsed.tzinfo is not None
        assert 1990 <= parsed.year <= 2100

    check()
    figures(f"inputs tried: {tried}")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        pytest.param("20240229120000", True, id="leap-day"),
        pytest.param("20230229120000", False, id="not-a-leap-year"),
        pytest.param("21000229000000", False, id="2100-is-not-leap"),
        pytest.param("19900101000000", True, id="first-accepted-second"),
        pytest.param("19891231235959", False, id="last-refused-second"),
        pytest.param("21001231235959", True, id="last-accepted-second"),
        pytest.param("1989-12-31T17:00:00+00:00", True, id="utc-already-1990-locally"),
        pytest.param("2100-12-31T23:00:00-14:00", False, id="offset-pushes-past-2100"),
        pytest.param("0001-01-01T00:00:00+14:00", False, id="offset-below-year-one"),
        pytest.param("9999-12-31T23:59:59-14:00", False, id="offset-above-year-9999"),
    ],
)
def test_parse_datetime_known_edges(text: str, valid: bool) -> None:
    if valid:
        assert 1990 <= parse_datetime(text, field="f").year <= 2100
    else:
        with pytest.raises(InvalidDateError):
            parse_datetime(text, field="f")


# --- codes, text, keys ---------------------------------------------------------------------------


def test_parse_code(figures: Figures) -> None:
    tried = 0
    vocabulary = {k.lower(): v for k, v in DEFAULT_STATUS_VOCABULARY.items()} | {"weird": 99}

    @BOUNDED
    @given(
        value=st.integers()
        | st.text(max_size=12)
        | st.sampled_from(["²", "١٢", "-0", "  7 ", "DONE", "Đ", "10000", "weird", "\uff11\uff10"])
        | st.booleans(),
        allowed=st.sampled_from([DossierStatus, Channel]),
    )
    def check(value: str | int, allowed: type[DossierStatus] | type[Channel]) -> None:
        nonlocal tried
        tried += 1
        try:
            code = parse_code(value, field="TrangThaiHoSo", allowed=allowed, vocabulary=vocabulary)
        except InvalidCodeError:
            return
        assert code in {int(member) for member in allowed}

    check()
    figures(f"inputs tried: {tried}")


def test_clean_text(figures: Figures) -> None:
    tried = 0

    @BOUNDED
    @given(
        value=st.text(max_size=300)
        | st.text(alphabet=st.sampled_from([*sorted(_CONTROL), "\u200b", "a", "e", "\u0301", " "]))
        | st.none(),
        limit=st.integers(1, 5000),
    )
    def check(value: str | None, limit: int) -> None:
        nonlocal tried
        tried += 1
        cleaned = clean_text(value, max_chars=limit)
        if cleaned is None:
            return
        assert 0 < len(cleaned) <= limit
        assert not (set(cleaned) & _CONTROL)
        assert "\u200b" not in cleaned
        assert "\ufeff" not in cleaned
        # Decomposed Vietnamese comes out composed (NFC).
        if value is not None and len(value) < limit:
            assert unicodedata.is_normalized("NFC", cleaned)

    check()
    figures(f"inputs tried: {tried}")


def test_canonical_keys(figures: Figures) -> None:
    tried = 0
    aliases = {(f.alias or n).lower(): f.alias or n for n, f in DossierEvent.model_fields.items()}

    @BOUNDED
    @given(
        data=st.dictionaries(
            st.sampled_from(list(aliases.values())).flatmap(spellings) | st.text(max_size=10),
            json_values,
            max_size=10,
        )
    )
    def check(data: dict[str, Any]) -> None:
        nonlocal tried
        tried += 1
        try:
            result = canonical_keys(data, DossierEvent)
        except ContractError as exc:
            assert_reason(exc)
            return
        for key in data:
            canonical = aliases.get(key.strip().lower(), key.strip())
            assert canonical in result

    check()
    figures(f"inputs tried: {tried}")


# --- edXML ---------------------------------------------------------------------------------------


def mutate(raw: bytes, data: st.DataObject) -> bytes:
    operation = data.draw(st.sampled_from(["flip", "cut", "insert", "splice", "same"]))
    if not raw or operation == "same":
        return raw
    at = data.draw(st.integers(0, len(raw) - 1))
    if operation == "flip":
        return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    if operation == "cut":
        return raw[:at]
    if operation == "insert":
        junk = data.draw(
            st.binary(max_size=20)
            | st.sampled_from([b"<!DOCTYPE x>", b"&x;", b"<a>", b"]]>", b"\x00", b"<?pi?>"])
        )
        return raw[:at] + junk + raw[at:]
    end = data.draw(st.integers(at, len(raw)))
    return raw[:at] + raw[end:]


def test_document_pipeline_normalise_any_bytes(figures: Figures) -> None:
    """Arbitrary bytes and mutated corpus packages: a record or an IngestError, nothing else."""
    packages = [case.raw for case in corpus()]
    tried: dict[str, int] = {}

    @SMALL
    @given(data=st.data(), kind=st.sampled_from([EventType.EDXML, EventType.EDOC_STATUS]))
    def check(data: st.DataObject, kind: EventType) -> None:
        source = data.draw(st.sampled_from(["mutated", "bytes"]))
        raw = (
            mutate(data.draw(st.sampled_from(packages)), data)
            if source == "mutated"
            else data.draw(st.binary(max_size=512))
        )
        envelope = Envelope("id", "urn:s", kind, None, raw, None, "bare")
        try:
            documents().normalise(envelope, now=NOW)
        except IngestError as exc:
            assert_reason(exc)
            tried["refused"] = tried.get("refused", 0) + 1
            return
        tried["normalised"] = tried.get("normalised", 0) + 1

    check()
    figures(f"inputs tried: {sum(tried.values())} {dict(sorted(tried.items()))}")
    assert tried.get("normalised", 0) > 0
    assert tried.get("refused", 0) > 0


# --- masking -------------------------------------------------------------------------------------

citizen_ids = st.text(alphabet=string.digits, min_size=12, max_size=12).map(lambda s: "0" + s[1:])
phones = st.tuples(
    st.sampled_from(["03", "05", "07", "08", "09"]), st.text(string.digits, min_size=8, max_size=8)
).flatmap(
    lambda t: st.sampled_from(
        [
            t[0] + t[1],
            f"{t[0]}{t[1][:2]} {t[1][2:5]} {t[1][5:]}",
            f"{t[0]}{t[1][:2]}.{t[1][2:5]}.{t[1][5:]}",
            f"+84 {t[0][1]}{t[1][:2]} {t[1][2:5]} {t[1][5:]}",
            f"+84{t[0][1]}{t[1]}",
            f"84{t[0][1]}{t[1]}",
        ]
    )
)
emails = st.tuples(
    st.text(string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=12).filter(
        lambda s: s[0].isalnum()
    ),
    st.text(string.ascii_lowercase, min_size=1, max_size=10),
    st.sampled_from(["gov.vn", "gmail.com", "hanoi.gov.vn"]),
).map(lambda t: f"{t[0]}@{t[1]}.{t[2]}")
surroundings = st.text(max_size=30).map(lambda s: s + " ")


def test_mask_personal_data(figures: Figures) -> None:
    tried = 0

    @BOUNDED
    @given(
        before=surroundings,
        personal=citizen_ids | phones | emails,
        after=surroundings.map(lambda s: " " + s),
        noise=st.text(max_size=200),
    )
    def check(before: str, personal: str, after: str, noise: str) -> None:
        nonlocal tried
        tried += 1
        masked = mask_personal_data(before + personal + after)
        assert personal not in masked
        assert isinstance(mask_personal_data(noise), str)

    check()
    figures(f"inputs tried: {tried}")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("9" * 100_000, id="long-digit-run"),
        pytest.param("x" * 200_000, id="long-text"),
        pytest.param("0912 " * 20_000, id="many-short-numbers"),
        pytest.param("a@" * 50_000, id="many-at-signs"),
    ],
)
def test_huge_strings_are_masked_and_cleaned_quickly(value: str) -> None:
    started = time.perf_counter()
    masked = mask_personal_data(value)
    cleaned = clean_text(value, max_chars=4000)
    elapsed = time.perf_counter() - started
    assert isinstance(masked, str)
    assert cleaned is not None
    assert len(cleaned) <= 4000
    assert elapsed < 1.0, f"{elapsed:.2f}s: a regular expression backtracks"


def test_regressions_found_by_these_properties() -> None:
    """Each raised something other than an IngestError before it was fixed."""
    with pytest.raises(InvalidDateError):
        parse_datetime(10**5000, field="f")  # str() of the int raised ValueError
    with pytest.raises(InvalidDateError):
        parse_datetime("0001-01-01T00:00:00+14:00", field="f")  # OverflowError
    with pytest.raises(InvalidCodeError):
        parse_code("²", field="f", allowed=DossierStatus, vocabulary={})  # int("²") ValueError
    assert clean_text("A\x80\u0300", max_chars=10) == "\u00c0"  # stayed decomposed (not NFC)
    with pytest.raises(ContractError) as blank:  # the reason named an empty field
        canonical_keys({"": 1, " ": 2}, DossierEvent)
    # Unknown names are never quoted (issue 13): the blank one included.
    assert blank.value.errors == (
        ("data", "a field not in the contract sent twice with different values"),
    )
