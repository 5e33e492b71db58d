"""Reads each service's `/metrics` over HTTP, as Prometheus would, into a `Snapshot`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.localrun.readings import (
    Sample,
    Snapshot,
    read_ingest,
    read_scorecards,
    read_scores,
    read_sync,
)


def parse(text: str) -> list[Sample]:
    return [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


class Scraper:
    """One HTTP client for the run; a service that does not answer yet counts as all zeros."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        ingest: str,
        sync: Mapping[str, str],
        scores: str | None = None,
        periods: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self._client = client
        self._ingest = ingest
        self._sync = dict(sync)
        self._scores = scores
        self._periods = periods
        """The periods whose scorecards are read (`GET /v1/scores?period=P`, every agency)."""

    async def _samples(self, base_url: str) -> list[Sample]:
        try:
            response = await self._client.get(f"{base_url}/metrics")
            response.raise_for_status()
        except httpx.HTTPError:
            return []  # starting or stopping: the next scrape will tell
        return parse(response.text)

    async def snapshot(self) -> Snapshot:
        snapshot = Snapshot()
        read_ingest(snapshot, await self._samples(self._ingest))
        for target, base_url in self._sync.items():
            read_sync(snapshot, target, await self._samples(base_url))
        if self._scores is not None:
            read_scores(snapshot, await self._samples(self._scores))
            for period in self._periods():
                try:
                    asked = datetime.now(UTC)
                    response = await self._client.get(
                        f"{self._scores}/v1/scores", params={"period": period}
                    )
                    response.raise_for_status()
                    answered = datetime.now(UTC)
                    read_scorecards(snapshot, period, response.json(), (asked, answered))
                except (httpx.HTTPError, ValueError):
                    continue  # starting or stopping: the next scrape will tell
        return snapshot
