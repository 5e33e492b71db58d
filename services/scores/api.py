"""The scores service's HTTP face: the JSON API of the contract, the CSV and Excel downloads,
the operations endpoints, and (from `pages.py`) the PAR staff's pages.

    GET /v1/scores?agency=CODE&period=P                 one scorecard, or all agencies' (a list)
    GET /v1/scores/{agency}/{period}/{indicator}/dossiers?counted=false|true
        paged JSON (`limit`, `offset`); `Accept: text/csv` or `?format=csv` gives CSV and
        `?format=xlsx` an Excel workbook, of every listed dossier (up to the export limit)
    GET /v1/scores/{agency}/trend?year=YYYY              the months of the year so far
    GET /v1/agencies/unknown                             codes neither current nor crosswalked
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from services.common.httpapp import create_base_app
from services.common.problem import install_problem_handlers, problem_response
from services.scores.errors import BadQueryError
from services.scores.exports import XLSX_TYPE, to_csv, to_xlsx
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard, Scorecard
from services.scores.store import ListedDossier, Page
from services.scores.texts import REASONS


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


def _card(card: Scorecard) -> dict[str, Any]:
    return card.model_dump(mode="json", by_alias=True)


def listed_json(item: ListedDossier) -> dict[str, Any]:
    verdict = item.judgement

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "code": item.code,
        "agency": item.agency,
        "procedure_code": item.procedure_code,
        "status": item.status,
        "channel": item.channel,
        "received_at": iso(item.received_at),
        "due_at": iso(item.due_at),
        "ended_at": iso(item.ended_at),
        "portal_holds": item.portal_holds,
        "counted": verdict.counted,
        "reason": verdict.reason.value if verdict.reason else None,
        "reason_text": REASONS[verdict.reason] if verdict.reason else None,
    }


def create_app(
    scoreboard: Scoreboard,
    *,
    registry: CollectorRegistry,
    readiness: Callable[[], Awaitable[dict[str, bool]]],
    page_size: int = 50,
    export_max_rows: int = 100_000,
) -> FastAPI:
    app = create_base_app(
        title="govsync scores", version="0.1.0", registry=registry, readiness=readiness
    )
    install_problem_handlers(app)

    async def bad_query(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(400, "Bad query", str(exc), slug="bad-query")

    app.add_exception_handler(BadQueryError, bad_query)

    def period_of(text: str) -> Period:
        return scoreboard.parse_period(text)

    @app.get("/v1/scores", tags=["scores"], summary="Scorecards of one agency or of every agency")
    async def scores(
        period: Annotated[str, Query(description="2026-11, 2026-Q4 or 2026")],
        agency: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Any:
        p = period_of(period)
        if agency:
            card = await asyncio.to_thread(scoreboard.scorecard, agency, p)
            return _card(card)
        cards = await asyncio.to_thread(scoreboard.scorecards, p)
        return [_card(c) for c in cards]

    @app.get("/v1/scores/{agency}/trend", tags=["scores"], summary="The months of a year")
    async def trend(agency: str, year: Annotated[int, Query(ge=1970, le=9998)]) -> Any:
        cards = await asyncio.to_thread(scoreboard.trend, agency, year)
        return [_card(c) for c in cards]

    @app.get(
        "/v1/scores/{agency}/{period}/{indicator}/dossiers",
        tags=["scores"],
        summary="The dossiers counted against (or for) an indicator, with the reason",
        responses={200: {"content": {"text/csv": {}, XLSX_TYPE: {}}}},
    )
    async def dossiers(
        request: Request,
        agency: str,
        period: str,
        indicator: str,
        counted: bool = False,
        limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        format: Format | None = None,
    ) -> Response:
        p = period_of(period)
        wanted = format
        if wanted is None:
            wanted = Format.CSV if "text/csv" in request.headers.get("accept", "") else Format.JSON
        if wanted is Format.JSON:
            size = limit or page_size
            page: Page = await asyncio.to_thread(
                scoreboard.dossiers, agency, p, indicator, counted=counted, limit=size,
                offset=offset,
            )  # fmt: skip
            body = {
                "agency": agency,
                "period": str(p),
                "indicator": indicator,
                "counted": counted,
                "total": page.total,
                "offset": offset,
                "limit": size,
                "items": [listed_json(i) for i in page.items],
            }
            return JSONResponse(body)
        page = await asyncio.to_thread(
            scoreboard.dossiers, agency, p, indicator, counted=counted, limit=export_max_rows
        )
        name = f"govsync-{agency}-{p}-{indicator}-{'tinh' if counted else 'khong-tinh'}"
        if wanted is Format.CSV:
            return Response(
                to_csv(page.items),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        content = await asyncio.to_thread(to_xlsx, page.items, title=f"{indicator} {p}")
        return Response(
            content,
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )

    @app.get(
        "/v1/agencies/unknown",
        tags=["scores"],
        summary="Agency codes seen that are neither current nor in the crosswalk",
    )
    async def unknown() -> list[dict[str, Any]]:
        codes = await asyncio.to_thread(scoreboard.unknown_codes)
        return [{"code": c.code, "regular": c.regular} for c in codes]

    return app
