"""How source systems write what a plan says: key case, dates, codes, Unicode form, envelopes.

Each dossier's source keeps one dialect for the dossier's whole life: keys as the portal spells
them, in lower or in upper case; dates in any of the formats real systems send; status and
channel as a number, a numeric string or a word; text in NFC or NFD; structured or binary
CloudEvents, with the agency in the data or in the envelope; the first item sometimes bare.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.localrun.traffic.options import TrafficOptions
from services.localrun.traffic.plans import LOCAL_TZ, SUBMITTED, DossierPlan

DOSSIER_TYPE = "vn.gov.dvc.dossier.v1"
PROGRESS_TYPE = "vn.gov.dvc.dossier.progress.v1"

# The default vocabulary of ingest (services/ingest/settings.py) in the words one source uses.
STATUS_WORDS = {
    1: "receiving",
    2: "new",
    3: "denied",
    4: "processing",
    5: "waiting",
    6: "paying",
    7: "cancelled",
    8: "unresolved",
    9: "releasing",
    10: "done",
}
CHANNEL_WORDS = {1: "truc_tiep", 2: "online", 3: "buu_chinh"}


@dataclass(frozen=True, slots=True)
class Dialect:
    key_case: str  # "as_is", "lower" or "upper"
    dates: str  # a key of DATE_WRITERS
    codes: str  # "int", "text" or "word"
    nfd: bool
    envelope: str  # "structured" or "binary"
    agency_in_envelope: bool


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


DATE_WRITERS: dict[str, Callable[[datetime], str | int]] = {
    "portal": lambda d: d.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S"),
    "iso_offset": lambda d: d.astimezone(LOCAL_TZ).isoformat(),
    "iso_utc": lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    "iso_local": lambda d: d.astimezone(LOCAL_TZ).replace(tzinfo=None).isoformat(),
    "dmy": lambda d: d.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M:%S"),
    "ymd": lambda d: d.astimezone(LOCAL_TZ).strftime("%Y/%m/%d %H:%M:%S"),
    "epoch_ms": epoch_ms,
}
PLAIN = Dialect("as_is", "portal", "int", False, "structured", False)


def draw_dialect(rng: random.Random, options: TrafficOptions) -> Dialect:
    dialect = PLAIN
    if rng.random() < options.dialect_share:
        dialect = Dialect(
            key_case=rng.choice(("as_is", "lower", "upper")),
            dates=rng.choice(tuple(DATE_WRITERS)),
            codes=rng.choice(("int", "text", "word")),
            nfd=rng.random() < 0.5,
            envelope="structured",
            agency_in_envelope=rng.random() < 0.3,
        )
    if rng.random() < options.binary_share:
        dialect = Dialect(
            dialect.key_case, dialect.dates, dialect.codes, dialect.nfd, "binary", False
        )
    return dialect


def draw_bare_first(
    rng: random.Random, options: TrafficOptions, dialect: Dialect, plan: DossierPlan
) -> bool:
    """Whether the first item (status 1) comes without an envelope.

    A bare item has no envelope to name the agency: only sources that put it in the data.
    """
    return (
        plan.steps[0].status == SUBMITTED
        and not dialect.agency_in_envelope
        and rng.random() < options.bare_share
    )


def write_code(value: int, words: dict[int, str], dialect: Dialect) -> int | str:
    """A status or channel code as the dialect writes it."""
    if dialect.codes == "text":
        return str(value)
    if dialect.codes == "word":
        return words[value]
    return value


def styled(item: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """Key case and Unicode form of one source system, applied to nested items too."""

    def key(name: str) -> str:
        if dialect.key_case == "lower":
            return name.lower()
        if dialect.key_case == "upper":
            return name.upper()
        return name

    def value(v: Any) -> Any:
        if isinstance(v, str) and dialect.nfd:
            return unicodedata.normalize("NFD", v)
        if isinstance(v, list):
            return [styled(x, dialect) if isinstance(x, dict) else value(x) for x in v]
        return v

    return {key(k): value(v) for k, v in item.items()}


def event_id(rng: random.Random) -> str:
    """A CloudEvents `id`: a UUID drawn from the run's seed, so a seed gives the same bytes."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def event_time(at: datetime) -> str:
    """A CloudEvents `time`: UTC, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def enveloped(
    dialect: Dialect, attributes: dict[str, str], item: dict[str, Any]
) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """The record's value and headers: a structured CloudEvent, or a binary one in headers."""
    if dialect.envelope == "binary":
        headers = tuple((f"ce_{k}", v.encode()) for k, v in attributes.items())
        return orjson.dumps(item), (*headers, ("content-type", b"application/json"))
    value = orjson.dumps({**attributes, "datacontenttype": "application/json", "data": item})
    return value, ()
