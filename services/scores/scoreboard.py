"""The answers the API and the pages give: scorecards per agency and period in the contract's
shape, trends, and the dossiers behind an indicator, with the crosswalk applied.

Blocking (the store's queries): the HTTP layer calls it from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.common.labels import OTHER
from services.scores.crosswalk import Crosswalk, UnknownCode
from services.scores.errors import BadQueryError
from services.scores.formulas import BY_ID, INDICATORS, Figure, Part, Sums, figures, total
from services.scores.periods import Period, PeriodKind
from services.scores.store import Page, ScoreStore

_OUTBOUND = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class IndicatorScore(BaseModel):
    model_config = _OUTBOUND

    id: str = Field(description="As in DOMAIN.md §2 (1.4, 2.1 ... 4.5b), or `signature`.")
    numerator: int
    denominator: int
    rate: float | None = Field(
        description="A fraction (0.57, not 57); 2.2: mean processing days; 3.3: the online "
        "share times the 1.4 rate. None: an empty denominator."
    )
    points: float | None
    max_points: float | None


class Scorecard(BaseModel):
    """`GET /v1/scores`: one agency's indicators in one period."""

    model_config = _OUTBOUND

    agency: str
    period: str
    from_: date = Field(alias="from", description="The period's first day (local calendar).")
    to: date = Field(description="The period's last day.")
    final: bool = Field(description="The period has ended; else provisional (judged now).")
    indicators: list[IndicatorScore]
    points: float = Field(description="The points of the indicators that were scored.")
    max_points: float = Field(description="Their maximum.")
    codes: list[str] = Field(
        default_factory=list, description="The agency codes counted (the crosswalk's roll-up)."
    )


def scorecard_of(agency: str, period: Period, sums: Sums, *, now: datetime, catalogue: bool,
                 codes: Sequence[str] = ()) -> Scorecard:  # fmt: skip
    found = figures(sums, catalogue_configured=catalogue)
    points, maximum = total(found)
    return Scorecard.model_validate(
        {
            "agency": agency,
            "period": str(period),
            "from": period.first_date,
            "to": period.last_date,
            "final": period.is_final(now),
            "indicators": [_score(f) for f in found],
            "points": points,
            "max_points": maximum,
            "codes": list(codes),
        }
    )


def _score(figure: Figure) -> IndicatorScore:
    return IndicatorScore(
        id=figure.id,
        numerator=figure.numerator,
        denominator=figure.denominator,
        rate=figure.rate,
        points=figure.points,
        max_points=figure.max_points,
    )


@dataclass(frozen=True, slots=True)
class Scoreboard:
    store: ScoreStore
    crosswalk: Crosswalk
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def parse_period(self, text: str) -> Period:
        try:
            return Period.parse(text)
        except ValueError as exc:
            raise BadQueryError(str(exc)) from None

    def scorecard(self, agency: str, period: Period, now: datetime | None = None) -> Scorecard:
        now = now or self.clock()
        codes = self.crosswalk.codes_for(agency, period)
        sums = self.store.sums(codes, period, now=now) if codes else Sums({})
        return scorecard_of(
            agency, period, sums, now=now, catalogue=self.store.catalogue.configured, codes=codes
        )

    def scorecards(
        self, period: Period, now: datetime | None = None, *, labelled: frozenset[str] | None = None
    ) -> list[Scorecard]:
        """Every agency with dossiers or documents in the period (its codes rolled up). With
        `labelled` (the gauges' agencies), the agencies not in it are one card, `other`."""
        now = now or self.clock()
        by_code = self.store.sums_by_agency(period, now=now)
        grouped = self.crosswalk.group((c for c in by_code if c), period)
        if labelled is not None:
            rest = [c for agency, codes in grouped.items() if agency not in labelled for c in codes]
            grouped = {a: codes for a, codes in grouped.items() if a in labelled}
            if rest:
                grouped[OTHER] = rest
        out = []
        for agency, codes in grouped.items():
            parts = dict.fromkeys(Part, 0)
            open_total = open_ok = 0
            for code in codes:
                sums = by_code[code]
                for part, value in sums.parts.items():
                    parts[part] += value
                open_total += sums.open_total
                open_ok += sums.open_on_time
            out.append(
                scorecard_of(
                    agency,
                    period,
                    Sums(parts, open_total, open_ok),
                    now=now,
                    catalogue=self.store.catalogue.configured,
                    codes=codes,
                )
            )
        return out

    def trend(self, agency: str, year: int, now: datetime | None = None) -> list[Scorecard]:
        """The months of a year up to the current one."""
        now = now or self.clock()
        months = Period.parse(str(year)).month_periods()
        return [self.scorecard(agency, m, now) for m in months if m.has_started(now)]

    def dossiers(
        self,
        agency: str,
        period: Period,
        indicator: str,
        *,
        counted: bool,
        limit: int,
        offset: int = 0,
        now: datetime | None = None,
    ) -> Page:
        if indicator not in BY_ID:
            raise BadQueryError(
                f"unknown indicator {indicator!r}: one of {', '.join(i.id for i in INDICATORS)}"
            )
        codes = self.crosswalk.codes_for(agency, period)
        if not codes:
            return Page(0)
        return self.store.listed(
            codes,
            period,
            indicator,
            counted=counted,
            now=now or self.clock(),
            limit=limit,
            offset=offset,
        )

    def agencies(self) -> list[str]:
        """Every agency a page can be asked for: the codes seen and the crosswalk's new ones."""
        seen = set(self.store.agencies_seen())
        now = self.clock()
        month = Period.containing(now, PeriodKind.MONTH)
        current = {self.crosswalk.scored_as(c, month) for c in seen}
        return sorted(current | set(self.crosswalk.current))

    def unknown_codes(self) -> list[UnknownCode]:
        return self.crosswalk.unknown(self.store.agencies_seen())
