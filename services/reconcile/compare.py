"""One dossier, govsync's view against the portal's `TraCuuHoSo` answer (pure).

    portal answer                                   state
    ----------------------------------------------  ----------
    no row (`result` empty, or "không tồn tại")     missing
    a row whose `TrangThaiHoSo` is not govsync's    different  (`TrangThaiHoSo`)
    a row with a key date not govsync's             different  (the date's field name)
    a row that contradicts nothing                  matched
    refused (a permanent error, not "not found")    unchecked  (never missing)

Key dates: `NgayTiepNhan`, `NgayHenTra`, `NgayKetThucXuLy`, `NgayTra` against the facts'
`received_at`, `due_at`, `finished_at`, `returned_at`, to the second in Vietnam time. A date the
row leaves out is not compared (govsync may know it from a step, which the portal keeps as a step
and not in the header it answers with); a date the row gives that govsync does not know is a
difference. Keys are read in any case; a status that is not a number is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.common.dates import LOCAL_TZ


class State(StrEnum):
    MATCHED = "matched"
    MISSING = "missing"
    DIFFERENT = "different"
    UNCHECKED = "unchecked"
    """The portal refused the question: nothing is known (kept out of the metric's states)."""


KEY_DATES: tuple[tuple[str, str], ...] = (
    ("NgayTiepNhan", "received_at"),
    ("NgayHenTra", "due_at"),
    ("NgayKetThucXuLy", "finished_at"),
    ("NgayTra", "returned_at"),
)
"""(portal field, `DossierFacts` field)."""


@dataclass(frozen=True, slots=True)
class Known:
    """What the scores database holds of one dossier, as far as a lookup compares it."""

    code: str
    agency: str
    revision: int
    ack_revision: int
    status: int | None
    dates: Mapping[str, datetime | None]
    """By `DossierFacts` field name (`received_at` ...)."""
    received_day: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    differences: tuple[str, ...] = ()
    portal_status: int | None = None


def portal_date(value: object) -> datetime | None:
    """`yyyyMMddHHmmss` in Vietnam time; None for anything else."""
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        return None
    try:
        # By slices: strptime was an eighth of a sweep's CPU time.
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=LOCAL_TZ,
        )
    except ValueError:
        return None


def _status(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _same_second(a: datetime, b: datetime) -> bool:
    return int(a.timestamp()) == int(b.timestamp())


def compare(known: Known, rows: Sequence[Mapping[str, Any]]) -> Verdict:
    """The verdict on one dossier from the rows `TraCuuHoSo` returned for it."""
    if not rows:
        return Verdict(State.MISSING)
    row = {str(k).casefold(): v for k, v in rows[0].items()}
    differences: list[str] = []
    portal_status = _status(row.get("trangthaihoso"))
    if portal_status is not None and portal_status != known.status:
        differences.append("TrangThaiHoSo")
    for field, fact in KEY_DATES:
        raw = row.get(field.casefold())
        if raw in (None, ""):
            continue
        theirs = portal_date(raw)
        ours = known.dates.get(fact)
        if theirs is None or ours is None or not _same_second(theirs, ours):
            differences.append(field)
    if differences:
        return Verdict(State.DIFFERENT, tuple(differences), portal_status)
    return Verdict(State.MATCHED, (), portal_status)
