"""How an event ended: every event ends in exactly one of these (a closed set, a metric label)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"
