"""Dossier events broken on purpose: each must end in the dead letters, never in a count."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from services.localrun.traffic.dialects import DOSSIER_TYPE, event_id, event_time
from services.localrun.traffic.options import TrafficOptions
from services.localrun.traffic.plans import LOCAL_TZ

UNKNOWN_TYPE = "vn.gov.dvc.unknown.v1"


class Malformation(StrEnum):
    BROKEN_JSON = "broken_json"
    IMPOSSIBLE_DATE = "impossible_date"
    BAD_AGENCY = "bad_agency"
    UNKNOWN_TYPE = "unknown_type"


@dataclass(frozen=True, slots=True)
class Malformed:
    """One broken record for the dossier topic: what is wrong with it, its key and bytes."""

    kind: Malformation
    key: bytes
    value: bytes


def draw_malformed(
    rng: random.Random, options: TrafficOptions, *, prefix: str, now: datetime
) -> Malformed:
    """A status-1 item of a dossier no plan has, broken in one of the ways sources break them."""
    kind = rng.choice(tuple(Malformation))
    code = f"{prefix}-X{rng.randrange(10**8):08d}"
    agency = rng.choice(options.agencies)
    item: dict[str, Any] = {
        "MaHoSo": code,
        "MaDonVi": agency,
        "TrangThaiHoSo": 1,
        "NgayNopHoSo": now.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S"),
    }
    event_type = DOSSIER_TYPE
    if kind is Malformation.IMPOSSIBLE_DATE:
        item["NgayNopHoSo"] = rng.choice(("20260231101500", "31/04/2026 08:00:00"))
    elif kind is Malformation.BAD_AGENCY:
        item["MaDonVi"] = rng.choice(("H57", "UBND-HN", "000.00.20"))
    elif kind is Malformation.UNKNOWN_TYPE:
        event_type = UNKNOWN_TYPE
    envelope = {
        "specversion": "1.0",
        "id": event_id(rng),
        "source": options.source,
        "type": event_type,
        "time": event_time(now),
        "data": item,
    }
    value = orjson.dumps(envelope)
    if kind is Malformation.BROKEN_JSON:
        value = value[: len(value) // 2]
    return Malformed(kind, code.encode(), value)
