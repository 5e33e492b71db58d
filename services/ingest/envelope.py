"""Reads the CloudEvents envelope of a Kafka record: structured mode, binary mode or a bare item.

Pure: bytes and headers in, an `Envelope` out, or an `EventRefusedError` saying why not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.cloudevents import CloudEvent, EventType
from services.ingest.errors import (
    ContractError,
    DecodeError,
    EventTooLargeError,
    UnsupportedTypeError,
)

XML_TYPES = frozenset({EventType.EDXML, EventType.EDOC_STATUS})
_BINARY_PREFIX = "ce_"
_PROGRESS_MARKERS = frozenset({"thoidiemxuly", "noidungxuly", "nguoixuly"})


@dataclass(slots=True)  # not frozen: one per event (see `decide.Decision`)
class Envelope:
    """The attributes govsync needs from a CloudEvent, and its data (JSON value or XML bytes)."""

    id: str
    source: str
    type: EventType
    time: datetime | None
    data: Any
    agency: str | None
    mode: str
    """structured, binary or bare: how it arrived, for the logs and the metrics."""
    record_time: datetime | None = None
    """The broker record's timestamp: the last resort of a bare item's event time."""


DEFAULT_MAX_JSON_VALUES = 200_000


def json_values_at_most(text: bytes | bytearray) -> int:
    """An upper bound on the JSON values (keys included) in `text`, counted before parsing.

    Every value but the first follows a `[`, `,` or `:`, and every key a `{` or `,`; those bytes
    inside strings only raise the bound. A few passes of `bytes.count` (memchr), where parsing
    a body of empty objects costs 35 times its size in memory.
    """
    return 1 + text.count(b",") + text.count(b":") + text.count(b"[") + text.count(b"{")


def check_json_values(text: bytes, max_values: int) -> None:
    if json_values_at_most(text) > max_values:
        raise EventTooLargeError(f"the JSON holds more than {max_values} values")


def _event_type(value: str) -> EventType:
    try:
        return EventType(value)
    except ValueError:
        raise UnsupportedTypeError("CloudEvents type is not one govsync handles") from None


def _agency(attributes: Mapping[str, Any]) -> str | None:
    for name in ("agency", "madonvi"):
        value = attributes.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _content_id(value: bytes) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()


def from_structured(
    obj: Mapping[str, Any],
    *,
    max_json_values: int = DEFAULT_MAX_JSON_VALUES,
    record_time: datetime | None = None,
) -> Envelope:
    """A structured-mode CloudEvent already parsed from JSON (a Kafka value or an HTTP body);
    `record_time` is the broker record's timestamp, when it came from Kafka."""
    try:
        event = CloudEvent.model_validate(obj)
    except ValidationError as exc:
        raise ContractError.from_validation("not a valid CloudEvents 1.0 envelope", exc) from None
    event_type = _event_type(event.type)
    data: Any = event.data
    if event.data_base64 is not None:
        if event.data is not None:
            raise ContractError(
                "an event carries data or data_base64, not both", [("data_base64", "with data")]
            )
        try:
            data = base64.b64decode(event.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("data_base64 is not valid base64") from None
        if event_type not in XML_TYPES:
            check_json_values(data, max_json_values)
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise DecodeError("data_base64 does not hold JSON") from None
    elif event_type in XML_TYPES and isinstance(data, str):
        data = data.encode()
    if data is None:
        raise ContractError("the event has no data", [("data", "missing")])
    return Envelope(
        id=event.id,
        source=event.source,
        type=event_type,
        time=event.time,
        data=data,
        agency=_agency(event.model_extra or {}),
        mode="structured",
        record_time=record_time,
    )


def _from_binary(
    value: bytes, headers: Mapping[str, str], max_json_values: int, record_time: datetime | None
) -> Envelope:
    attributes: dict[str, Any] = {
        key[len(_BINARY_PREFIX) :]: val for key, val in headers.items() if key.startswith("ce_")
    }
    attributes.pop("data_base64", None)
    # The attributes are checked by the same model as structured mode; the data comes after.
    envelope = from_structured({**attributes, "data": value})
    data: Any = value
    if envelope.type not in XML_TYPES:
        check_json_values(value, max_json_values)
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise DecodeError("binary-mode data is not JSON") from None
    return Envelope(
        id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=envelope.time,
        data=data,
        agency=envelope.agency,
        mode="binary",
        record_time=record_time,
    )


def _bare(value: bytes, parsed: Any, topic: str, record_time: datetime | None) -> Envelope:
    if isinstance(parsed, dict):
        if "TrangThaiHoSo" in parsed:  # the portal's own spelling: a header, without a scan
            event_type = EventType.DOSSIER
        else:
            keys = {k.strip().lower() for k in parsed if isinstance(k, str)}
            is_progress = "trangthaihoso" not in keys and bool(keys & _PROGRESS_MARKERS)
            event_type = EventType.PROGRESS if is_progress else EventType.DOSSIER
    else:
        raise DecodeError("a bare event must be a JSON object (a DongBoHoSoMC item)")
    return Envelope(
        id=_content_id(value),
        source=topic,
        type=event_type,
        time=None,
        data=parsed,
        agency=None,
        mode="bare",
        record_time=record_time,
    )


def check_size(value: bytes, max_bytes: int) -> None:
    """The per-event limit of a topic; the HTTP intake applies it to what it will write."""
    if len(value) > max_bytes:
        raise EventTooLargeError(f"the event is larger than {max_bytes} bytes")


def check_cloudevent_time(time: datetime, *, now: datetime, max_skew: timedelta) -> datetime:
    """A CloudEvent's `time`, or a `ContractError` when it lies ahead of the clock."""
    if time.tzinfo is None:  # the contract refuses it first; kept for callers that build times
        raise ContractError("the event time has no UTC offset", [("time", "no UTC offset")])
    if time > now + max_skew:
        raise ContractError(
            f"the event time is more than {int(max_skew.total_seconds())} s ahead of the clock",
            [("time", "ahead of the clock")],
        )
    return time


def decode_record(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    *,
    topic: str,
    max_bytes: int,
    max_json_values: int = DEFAULT_MAX_JSON_VALUES,
    timestamp_ms: int | None = None,
) -> Envelope:
    """Decode one Kafka record into an envelope; its size and JSON values bounded first.
    `timestamp_ms` is the record's timestamp."""
    record_time = (
        datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
        if timestamp_ms is not None and timestamp_ms > 0
        else None
    )
    if value is None:
        raise DecodeError("the record has no value")
    check_size(value, max_bytes)
    try:
        text_headers = {k.lower(): v.decode() for k, v in headers if v is not None}
    except UnicodeDecodeError:
        raise DecodeError("a header is not valid UTF-8") from None
    if "ce_specversion" in text_headers:
        return _from_binary(value, text_headers, max_json_values, record_time)
    stripped = value.lstrip()
    if stripped.startswith(b"<"):
        return Envelope(
            id=_content_id(value),
            source=topic,
            type=EventType.EDXML,
            time=None,
            data=value,
            agency=None,
            mode="bare",
            record_time=record_time,
        )
    check_json_values(value, max_json_values)
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise DecodeError("the record is neither JSON nor XML (or not valid UTF-8)") from None
    if isinstance(parsed, dict) and "specversion" in parsed:
        return from_structured(parsed, max_json_values=max_json_values, record_time=record_time)
    return _bare(value, parsed, topic, record_time)
