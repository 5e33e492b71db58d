"""The exact figures' bookkeeping: how many of the held dossiers (or e-documents) count in each
gauge series, per partition, so a partition that moves to another replica takes its share along.

Pure. The worker adds what each held item counts in when it restores a partition, moves an item
from its old series to its new ones when it changes, and drops a partition's share when the
partition is revoked; the gauges are the totals over the partitions it holds. Summed over the
replicas (every partition is held by one), they are the figures of every item in the state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

Key = tuple[str, ...]
"""The label values of one gauge series."""


class Tally:
    def __init__(self) -> None:
        self._partitions: dict[int, Counter[Key]] = {}

    def add(self, partition: int, keys: Iterable[Key], n: int = 1) -> None:
        counts = self._partitions.setdefault(partition, Counter())
        for key in keys:
            counts[key] += n

    def move(self, partition: int, old: Iterable[Key], new: Iterable[Key]) -> set[Key]:
        """One item no longer counts in `old` but in `new`; the series that changed."""
        delta = Counter(new)
        delta.subtract(old)
        counts = self._partitions.setdefault(partition, Counter())
        for key, n in delta.items():
            if n:
                counts[key] += n
        return {key for key, n in delta.items() if n}

    def drop(self, partition: int) -> set[Key]:
        """Forget a partition's share; the series it counted in."""
        return set(self._partitions.pop(partition, Counter()))

    def total(self, key: Key) -> int:
        return sum(counts[key] for counts in self._partitions.values())

    def keys(self) -> set[Key]:
        return {key for counts in self._partitions.values() for key in counts}
