"""The PAR staff's pages, server-rendered (Jinja2), in Vietnamese: every agency's points, an
agency's scorecard with the trend over the months of the year, the dossiers that cost points
with their CSV and Excel downloads, and the agency codes nobody mapped."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common.dates import LOCAL_TZ
from services.reconcile.view import RESEND_NAMES, STATE_NAMES, reconcile_view
from services.scores.formulas import BY_ID, GROUP_NAMES, INDICATORS, Group
from services.scores.periods import Period, PeriodKind
from services.scores.scoreboard import Scoreboard, Scorecard
from services.scores.texts import CHANNELS, REASONS, STATUSES, THRESHOLDS

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}".replace(".", ",") + "%"


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}".replace(".", ",")


def _when(value: datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M") if value else ""


_TEMPLATES.filters.update(percent=_percent, number=_number, when=_when)
_TEMPLATES.globals.update(
    INDICATORS=BY_ID, REASONS=REASONS, STATUSES=STATUSES, CHANNELS=CHANNELS, THRESHOLDS=THRESHOLDS
)


def _render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_TEMPLATES.get_template(name).render(**context))


def _groups(card: Scorecard) -> list[tuple[str, list[Any]]]:
    by_id = {i.id: i for i in card.indicators}
    out = []
    for group in Group:
        rows = [(BY_ID[i.id], by_id[i.id]) for i in INDICATORS if i.group is group]
        out.append((GROUP_NAMES[group], rows))
    return out


def _period_label(period: Period) -> str:
    if period.kind is PeriodKind.MONTH:
        return f"Tháng {period.index}/{period.year}"
    if period.kind is PeriodKind.QUARTER:
        return f"Quý {period.index}/{period.year}"
    return f"Năm {period.year}"


def router(scoreboard: Scoreboard, *, page_size: int = 50) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    def now() -> datetime:
        return scoreboard.clock()

    def period_or_current(text: str | None) -> Period:
        if text:
            return scoreboard.parse_period(text)
        return Period.containing(now(), PeriodKind.MONTH)

    def choices(period: Period) -> list[Period]:
        return [*Period.parse(str(period.year)).month_periods(),
                *(Period(period.year, PeriodKind.QUARTER, q) for q in range(1, 5)),
                Period.parse(str(period.year))]  # fmt: skip

    @pages.get("/", response_class=HTMLResponse)
    async def index(period: Annotated[str | None, Query()] = None) -> HTMLResponse:
        p = period_or_current(period)
        cards = await asyncio.to_thread(scoreboard.scorecards, p)
        return _render(
            "index.html", period=p, label=_period_label(p), cards=cards, choices=choices(p),
            generated=_when(now()),
        )  # fmt: skip

    @pages.get("/scores/{agency}", response_class=HTMLResponse)
    async def scorecard(agency: str, period: Annotated[str | None, Query()] = None) -> HTMLResponse:
        p = period_or_current(period)
        card = await asyncio.to_thread(scoreboard.scorecard, agency, p)
        trend = await asyncio.to_thread(scoreboard.trend, agency, p.year)
        return _render(
            "scorecard.html", agency=agency, period=p, label=_period_label(p), card=card,
            groups=_groups(card), trend=trend, trend_ids=[i.id for i in INDICATORS],
            choices=choices(p), period_label=_period_label, generated=_when(now()),
        )  # fmt: skip

    @pages.get("/scores/{agency}/{period}/{indicator}", response_class=HTMLResponse)
    async def dossiers(
        agency: str,
        period: str,
        indicator: str,
        counted: bool = False,
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> HTMLResponse:
        p = scoreboard.parse_period(period)
        found = await asyncio.to_thread(
            scoreboard.dossiers, agency, p, indicator, counted=counted, limit=page_size,
            offset=(page - 1) * page_size,
        )  # fmt: skip
        card = await asyncio.to_thread(scoreboard.scorecard, agency, p)
        figure = next(i for i in card.indicators if i.id == indicator)
        api = f"/v1/scores/{agency}/{p}/{indicator}/dossiers?counted={str(counted).lower()}"
        return _render(
            "dossiers.html", agency=agency, period=p, label=_period_label(p),
            indicator=BY_ID[indicator], figure=figure, counted=counted, items=found.items,
            total=found.total, page=page, pages=max(1, math.ceil(found.total / page_size)),
            csv_url=f"{api}&format=csv", xlsx_url=f"{api}&format=xlsx", generated=_when(now()),
        )  # fmt: skip

    @pages.get("/reconcile/{agency}", response_class=HTMLResponse)
    async def reconcile(agency: str, period: Annotated[str | None, Query()] = None) -> HTMLResponse:
        """What govsync found on the portal (services/reconcile/): differs, re-sent, remains."""
        p = period_or_current(period)
        view = await asyncio.to_thread(reconcile_view, scoreboard.store.engine, agency, str(p))
        return _render(
            "reconcile.html", view=view, agency=agency, period=p, label=_period_label(p),
            choices=choices(p), states=STATE_NAMES, resends=RESEND_NAMES, generated=_when(now()),
        )  # fmt: skip

    @pages.get("/agencies/unknown", response_class=HTMLResponse)
    async def unknown() -> HTMLResponse:
        codes = await asyncio.to_thread(scoreboard.unknown_codes)
        configured = bool(scoreboard.crosswalk.current or scoreboard.crosswalk.mappings)
        return _render(
            "unknown.html", codes=codes, configured=configured,
            generated=_when(datetime.now(UTC)),
        )  # fmt: skip

    return pages
