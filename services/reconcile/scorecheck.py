"""Per score: the portal's figures for an agency and period beside govsync's, indicator by
indicator, with the dossiers that explain a difference where the latest sweep knows them.

A dossier explains an indicator when the latest sweep of the agency and period did not find it
on the portal as govsync knows it (and a re-check did not either), and govsync counts it in
that indicator's denominator: the portal counts it differently, or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from services.reconcile.compare import State
from services.reconcile.errors import ConfigurationError
from services.reconcile.figures import ENDPOINTS, Figure, portal_figures, side_by_side
from services.reconcile.reporting import ReportingClient
from services.reconcile.store import ReconcileStore, ScoreCheck, ScoreRow
from services.scores.formulas import derive, judge
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard

EXPLAINING_MAX = 50


def govsync_figures(
    board: Scoreboard, agency: str, period: Period, now: datetime
) -> dict[str, Figure]:
    card = board.scorecard(agency, period, now)
    return {i.id: Figure(i.numerator, i.denominator, i.rate, i.points) for i in card.indicators}


async def portal_received(
    reporting: ReportingClient, departments: dict[str, str], agency: str, period: Period
) -> int | None:
    """The received dossiers of the agency in the period the portal holds (1.4's numerator);
    None without a department id for the agency."""
    department = departments.get(agency)
    if department is None:
        return None
    answer = await reporting.evaluation("transparency", department, period)
    figure = portal_figures({"transparency": answer}).get("1.4")
    return None if figure is None or figure.numerator is None else int(figure.numerator)


async def check(
    *,
    board: Scoreboard,
    store: ReconcileStore,
    reporting: ReportingClient,
    departments: dict[str, str],
    agency: str,
    period: Period,
    now: Callable[[], datetime],
    now_ms: int,
) -> ScoreCheck:
    department = departments.get(agency)
    if department is None:
        raise ConfigurationError(f"no departmentId for {agency}: set GOVSYNC_RECONCILE_DEPARTMENTS")
    answers = await reporting.answers(ENDPOINTS, department, period)
    moment = now()
    ours = await asyncio.to_thread(govsync_figures, board, agency, period, moment)
    sides = side_by_side(ours, portal_figures(answers))
    history = await asyncio.to_thread(store.history, agency, str(period), limit=1)
    sweep_id = history[0].id if history else None
    explaining: dict[str, list[str]] = {}
    if sweep_id is not None:
        findings = await asyncio.to_thread(store.findings, sweep_id)
        open_ = [f.code for f in findings if f.now != State.MATCHED]
        facts = await asyncio.to_thread(store.facts, open_)
        catalogue = board.store.catalogue
        for code in open_:
            if code not in facts:
                continue
            known, holds = facts[code]
            derived = derive(known, portal_holds=holds, catalogue=catalogue)
            for side in sides:
                verdict = judge(
                    side.indicator, known, derived, period, now=moment, catalogue=catalogue
                )
                if verdict.counted is not None:
                    explaining.setdefault(side.indicator, []).append(code)
    rows = [
        ScoreRow(
            s.indicator,
            (s.govsync.numerator, s.govsync.denominator, s.govsync.rate, s.govsync.points),
            (s.portal.numerator, s.portal.denominator, s.portal.rate, s.portal.points),
            tuple(explaining.get(s.indicator, [])[:EXPLAINING_MAX]),
        )
        for s in sides
    ]
    return await asyncio.to_thread(
        lambda: store.record_scores(
            agency=agency,
            period=str(period),
            department_id=department,
            sweep_id=sweep_id,
            rows=rows,
            now_ms=now_ms,
        )
    )
