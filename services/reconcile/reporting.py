"""The portal's reporting API (DOMAIN.md §2): `POST {reporting_url}/{endpoint}` with
`{rootDepartmentId, timeType, year, month|quarter, currentPage, pageSize}`, answered 201
`{code: "OK", data, message}`. Failures are `ReportingError`s (retryable)."""

from __future__ import annotations

from typing import Any

import httpx

from services.reconcile.errors import ReportingError
from services.scores.periods import Period, PeriodKind


def question(department_id: str, period: Period) -> dict[str, Any]:
    """The body asking about one department and period."""
    body: dict[str, Any] = {
        "rootDepartmentId": department_id,
        "timeType": str(period.kind),
        "year": period.year,
        "currentPage": 1,
        "pageSize": 200,
    }
    if period.kind is PeriodKind.MONTH:
        body["month"] = period.index
    elif period.kind is PeriodKind.QUARTER:
        body["quarter"] = period.index
    return body


class ReportingClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        """`client`: its `base_url` is the evaluation endpoints' base."""
        self._client = client

    async def evaluation(self, endpoint: str, department_id: str, period: Period) -> Any:
        """The answer's `data`."""
        try:
            response = await self._client.post(f"/{endpoint}", json=question(department_id, period))
        except httpx.HTTPError as exc:
            raise ReportingError(f"{endpoint}: {type(exc).__name__}") from exc
        if response.status_code not in (200, 201):
            raise ReportingError(f"{endpoint}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ReportingError(f"{endpoint}: answer is not JSON") from None
        if not isinstance(body, dict) or body.get("code") != "OK":
            raise ReportingError(f"{endpoint}: answer is not OK")
        return body.get("data")

    async def answers(
        self, endpoints: tuple[str, ...], department_id: str, period: Period
    ) -> dict[str, Any]:
        return {e: await self.evaluation(e, department_id, period) for e in endpoints}
