"""Bounded metric label values: agency codes, which are open-ended, kept to a fixed number."""

from __future__ import annotations

from collections.abc import Iterable

OTHER = "other"
"""Every agency seen after the first `limit`."""
UNKNOWN = "unknown"
"""The default label of a value that is missing (ingest's agency and channel labels)."""


class AgencyLabels:
    """The agency label: the first `limit` agencies keep their code, the rest are `other`.

    An agency that is missing (None or empty) is labelled `missing` and takes no slot: ingest
    says `unknown`, sync says `other` (each as its metrics always have). `preset` agencies take
    their slots first, so they keep their own label however many others come.
    """

    def __init__(self, limit: int, preset: Iterable[str] = (), *, missing: str = UNKNOWN) -> None:
        self._limit = limit
        self._missing = missing
        self._seen: set[str] = set()
        for agency in preset:
            self(agency)

    def __call__(self, agency: str | None) -> str:
        if not agency:
            return self._missing
        if agency in self._seen:
            return agency
        if len(self._seen) < self._limit:
            self._seen.add(agency)
            return agency
        return OTHER
