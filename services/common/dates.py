"""Time for every service: the Asia/Ho_Chi_Minh zone, epoch milliseconds, and the one strict
date parser, with the date forms each kind of sender writes.

The parser never guesses: a text in none of a sender's forms is not a date, and a text in one of
them that names a day or time that does not exist (31 April, hour 25) is an error. Local wall
times are Asia/Ho_Chi_Minh (UTC+7, no daylight saving). Each caller passes its own `DateForms`:

- `DOSSIER_DATES` (dossier events, `services/ingest/dossiers/normalise.py`): epoch milliseconds,
  the portal's `yyyyMMdd[HHmmss]`, `d/M/yyyy[ H:mm[:ss]]`, `yyyy/M/d[ H:mm:ss]`, then ISO 8601.
- `EDXML_DATES` and `EDXML_TIMESTAMPS` (edXML packages, `services/ingest/edocuments/edxml.py`):
  the forms `datetime.strptime` read for edXML before they were written down here
  (`%Y/%m/%d`, `%d/%m/%Y`, `%Y-%m-%d`, with ` %H:%M:%S` or ` %H:%M` for timestamps; fields of
  one or two digits, any run of whitespace between date and time), then for timestamps ISO 8601
  with every `Z` read as `+00:00`.

The forms differ because the senders differ, and each caller's accepted and refused inputs are
exactly what they were; the code that reads a form is the same for all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime, truncated towards zero (as state stores them)."""
    return int(value.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """The UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class DateForms:
    """The date forms one kind of sender writes, tried in this order."""

    patterns: tuple[re.Pattern[str], ...]
    """Local wall times; named groups `Y`, `m`, `d` and optional `H`, `M`, `S`; whole text only."""
    epoch_ms: bool = False
    """Up to 13 digits, optionally negative, but not 8 or 14 (dates): epoch milliseconds, first."""
    iso: bool = False
    """ISO 8601 as `datetime.fromisoformat` reads it when no pattern matches (no offset: local)."""
    z_is_utc: bool = False
    """Before the ISO attempt, every `Z` becomes `+00:00` (edXML's rule; not the same inputs as
    `fromisoformat`'s own `Z`: it reads `2026-02-28Z`, for one)."""


_EPOCH_MS = re.compile(r"-?\d{1,13}")


def parse(text: str, forms: DateForms) -> datetime | None:
    """`text` (already stripped) in one of `forms`, as an aware datetime; None when in none.

    Raises `ValueError` (or `OverflowError`, `OSError` for out-of-range epochs) when the text is in
    a form but names no real moment; with `forms.iso` an unreadable text raises too.
    """
    if forms.epoch_ms and _EPOCH_MS.fullmatch(text) and len(text.lstrip("-")) not in (8, 14):
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    for pattern in forms.patterns:
        match = pattern.fullmatch(text)
        if match:
            parts = match.groupdict()
            return datetime(
                int(parts["Y"]),
                int(parts["m"]),
                int(parts["d"]),
                int(parts.get("H") or 0),
                int(parts.get("M") or 0),
                int(parts.get("S") or 0),
                tzinfo=LOCAL_TZ,
            )
    if not forms.iso:
        return None
    iso = datetime.fromisoformat(text.replace("Z", "+00:00") if forms.z_is_utc else text)
    return iso if iso.tzinfo is not None else iso.replace(tzinfo=LOCAL_TZ)


# Read by regular expression rather than strptime (ten times slower, and dossier dates are read
# for every date of every event).
DOSSIER_DATES = DateForms(
    patterns=(
        re.compile(
            r"(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?"
        ),
        re.compile(
            r"(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<Y>\d{4})"
            r"(?: (?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
        ),
        re.compile(
            r"(?P<Y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})"
            r"(?: (?P<H>\d{1,2}):(?P<M>\d{2}):(?P<S>\d{2}))?"
        ),
    ),
    epoch_ms=True,
    iso=True,
)

# strptime's own field expressions, so edXML reads exactly what it read through strptime.
_Y = r"(?P<Y>\d\d\d\d)"
_m = r"(?P<m>1[0-2]|0[1-9]|[1-9])"
_d = r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])"
_TIME = r"\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d)"
_SECONDS = r":(?P<S>6[0-1]|[0-5]\d|\d)"
_EDXML_DAYS = (f"{_Y}/{_m}/{_d}", f"{_d}/{_m}/{_Y}", f"{_Y}-{_m}-{_d}")

EDXML_DATES = DateForms(patterns=tuple(re.compile(day, re.IGNORECASE) for day in _EDXML_DAYS))
EDXML_TIMESTAMPS = DateForms(
    patterns=tuple(
        re.compile(day + _TIME + seconds, re.IGNORECASE)
        for day, seconds in (
            (_EDXML_DAYS[0], _SECONDS),
            (_EDXML_DAYS[1], _SECONDS),
            (_EDXML_DAYS[2], _SECONDS),
            (_EDXML_DAYS[0], ""),
            (_EDXML_DAYS[1], ""),
        )
    ),
    iso=True,
    z_is_utc=True,
)
