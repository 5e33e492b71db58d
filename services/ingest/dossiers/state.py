"""Per-dossier state: what ingest remembers of each dossier, and its (unchanged) byte format.

Pure. `DossierState` is compact (a dossier costs a few hundred bytes) because an ingest replica
holds every open dossier of its partitions. The worker persists it to a compacted topic and
restores it on assignment; finished dossiers are evicted after a retention period. The decision
on each new change is `decide.py`'s.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import orjson

from services.common.indicators import is_end

RECENT = 4
"""Event ids remembered per dossier, for redeliveries."""
_DIGEST = 8  # bytes
_STATE_VERSION = 1


def digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=_DIGEST)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def interned(text: str | None) -> str | None:
    """A few hundred agency and procedure codes are shared by every dossier held: one copy each."""
    return sys.intern(text) if text else None


def _digests(packed: bytes) -> list[bytes]:
    return [packed[i : i + _DIGEST] for i in range(0, len(packed), _DIGEST)]


@dataclass(slots=True)
class DossierState:
    """Everything ingest remembers about one dossier, in integers (epoch milliseconds)."""

    revision: int = 0
    status: int = 0
    status_ms: int = 0
    """Source time of the change that set `status`: the status never moves back in time."""
    header_ms: int = 0
    progress_ms: int = 0
    recent: bytes = b""
    """Digests of the last few (source, event id) pairs accepted, 8 bytes each, end to end: one
    object instead of a list of them saves a quarter of a held dossier's memory."""
    header_digest: bytes = b""
    step_digest: bytes = b""
    counted: int = 0
    supplements: int = 0
    supplement_since_ms: int = 0
    supplement_total_ms: int = 0
    due_ms: int = 0
    received_ms: int = 0
    end_ms: int = 0
    agency: str | None = None
    procedure: str | None = None
    channel: int = 0
    last_change_ms: int = 0

    @property
    def finished(self) -> bool:
        return is_end(self.status)

    def remembers(self, event_key: bytes) -> bool:
        """`event_key` (a `digest`) is among the last `RECENT` accepted."""
        return event_key in _digests(self.recent)

    def remember(self, event_key: bytes) -> None:
        self.recent = self.recent[-(RECENT - 1) * _DIGEST :] + event_key

    def copy(self) -> DossierState:
        # Every field is immutable (`recent` is bytes): a shallow copy is a full one.
        return DossierState(**{name: getattr(self, name) for name in DossierState.__slots__})

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [
                _STATE_VERSION,
                self.revision,
                self.status,
                self.status_ms,
                self.header_ms,
                self.progress_ms,
                [d.hex() for d in _digests(self.recent)],
                self.header_digest.hex(),
                self.step_digest.hex(),
                self.counted,
                self.supplements,
                self.supplement_since_ms,
                self.supplement_total_ms,
                self.due_ms,
                self.received_ms,
                self.end_ms,
                self.agency,
                self.procedure,
                self.channel,
                self.last_change_ms,
            ]
        )

    @classmethod
    def from_bytes(cls, value: bytes) -> DossierState:
        fields = orjson.loads(value)
        if fields[0] != _STATE_VERSION:
            raise ValueError(f"unknown state version {fields[0]}")
        return cls(
            revision=fields[1],
            status=fields[2],
            status_ms=fields[3],
            header_ms=fields[4],
            progress_ms=fields[5],
            recent=b"".join(bytes.fromhex(d) for d in fields[6]),
            header_digest=bytes.fromhex(fields[7]),
            step_digest=bytes.fromhex(fields[8]),
            counted=fields[9],
            supplements=fields[10],
            supplement_since_ms=fields[11],
            supplement_total_ms=fields[12],
            due_ms=fields[13],
            received_ms=fields[14],
            end_ms=fields[15],
            agency=interned(fields[16]),
            procedure=interned(fields[17]),
            channel=fields[18],
            last_change_ms=fields[19],
        )
