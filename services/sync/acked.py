"""What a destination holds of each dossier, as the sync worker knows it (pure: no Kafka, no I/O).

`AckState` is the in-memory form of the acked topics' value (`schemas.facts.SyncAck` without its
time); `AckLedger` keeps one per dossier and partition; `advance` says what one more accepted
record makes of it. A dossier counts as synced (indicator 1.4's numerator) only when the portal
accepted a header for it and holds it in a received status: a step alone proves nothing, since
the portal holds nothing for a dossier whose header it refused.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from schemas.dossier import DossierRecord, DossierStatus
from schemas.facts import SyncAck
from services.common.indicators import is_received


@dataclass(frozen=True, slots=True)
class AckState:
    """One dossier at one destination (56 bytes; the agency string is shared)."""

    revision: int
    """The latest revision the destination acknowledged."""
    header: bool = False
    """The portal accepted a header for the dossier, or said it holds it (`TraCuuHoSo`)."""
    received: bool = False
    """The destination holds the dossier in a received status (once, for good)."""
    status: DossierStatus | None = None
    agency: str | None = None
    """Of the latest revision acknowledged: a re-coded dossier moves."""

    @property
    def synced(self) -> bool:
        """Counted by indicator 1.4: the portal holds it (a header was accepted) and received."""
        return self.header and self.received

    @classmethod
    def of(cls, ack: SyncAck) -> AckState:
        agency = sys.intern(ack.agency) if ack.agency is not None else None
        return cls(ack.revision, ack.header, ack.received, ack.status, agency)

    def to_ack(self, at: datetime) -> SyncAck:
        return SyncAck(
            revision=self.revision,
            received=self.received,
            at=at,
            header=self.header,
            status=self.status,
            agency=self.agency,
        )


def advance(before: AckState | None, record: DossierRecord, *, header: bool) -> AckState:
    """The state once the destination accepted `record`.

    `header`: the record is a header the portal accepted, or the portal said it holds the
    dossier. A record older than the state (a step that waited for its header) adds what it
    shows but leaves the revision, status and agency of the newer one.
    """
    agency = sys.intern(record.agency) if record.agency is not None else None
    received = is_received(record.status)
    if before is None:
        return AckState(record.revision, header, received, record.status, agency)
    if record.revision < before.revision:
        return AckState(
            before.revision,
            before.header or header,
            before.received or received,
            before.status,
            before.agency,
        )
    return AckState(
        record.revision,
        before.header or header,
        before.received or received,
        record.status,
        agency,
    )


class AckLedger:
    """The state of every dossier of the assigned partitions at one destination."""

    def __init__(self) -> None:
        self._acked: dict[int, dict[str, AckState]] = {}

    def load(self, partition: int, states: dict[str, AckState]) -> None:
        self._acked[partition] = states

    def drop(self, partition: int) -> dict[str, AckState]:
        """Forget a partition (revoked); returns what it held."""
        return self._acked.pop(partition, {})

    def get(self, partition: int, code: str) -> AckState | None:
        return self._acked.get(partition, {}).get(code)

    def put(self, partition: int, code: str, state: AckState) -> None:
        self._acked.setdefault(partition, {})[code] = state

    def states(self, partition: int) -> Mapping[str, AckState]:
        return self._acked.get(partition, {})

    def __iter__(self) -> Iterator[AckState]:
        for states in self._acked.values():
            yield from states.values()
