"""The agency crosswalk of the 2025 reorganisation (DOMAIN.md §3): old `madonvi` codes rolled up
into the agency that replaced them, for the periods after the change.

Pure: CSV text in (`old_code,new_code,valid_from[,valid_to]`, dates `yyyy-mm-dd`, `valid_to`
the last day the mapping holds), answers per period out. Records keep the code as sent; only the
scoring reads it through here. A mapping applies to a period that overlaps its validity (the new
agency is the one scored for any period it exists in); where several mappings of one old code
overlap a period, the one that started last wins; chains (A to B, later B to C) are followed.
Codes were reused, so a code alone does not say which unit it means: an operator who needs a
reused code to stand for itself again ends the old mapping with `valid_to`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from schemas.edocument import is_regular_organ_id
from services.scores.errors import ConfigurationError
from services.scores.periods import Period


@dataclass(frozen=True, slots=True)
class Mapping:
    old_code: str
    new_code: str
    valid_from: date
    valid_to: date | None = None

    def applies_to(self, period: Period) -> bool:
        if period.end_date <= self.valid_from:
            return False
        return self.valid_to is None or period.first_date <= self.valid_to


@dataclass(frozen=True, slots=True)
class Crosswalk:
    mappings: tuple[Mapping, ...] = ()
    current: frozenset[str] = field(default_factory=frozenset)
    """The agencies that exist now (configuration); empty: not configured."""

    def scored_as(self, code: str, period: Period) -> str:
        """The agency a code's dossiers count under in `period`."""
        seen = {code}
        while True:
            found = [m for m in self.mappings if m.old_code == code and m.applies_to(period)]
            if not found:
                return code
            code = max(found, key=lambda m: m.valid_from).new_code
            if code in seen:  # a cycle in the file: stop where it closes
                return code
            seen.add(code)

    def codes_for(self, agency: str, period: Period) -> list[str]:
        """Every code whose dossiers count under `agency` in `period` (itself included unless
        it was itself rolled into another)."""
        candidates = {agency} | {m.old_code for m in self.mappings}
        return sorted(c for c in candidates if self.scored_as(c, period) == agency)

    def group(self, codes: Iterable[str], period: Period) -> dict[str, list[str]]:
        """Codes seen in a period, grouped under the agencies they count for."""
        out: dict[str, list[str]] = {}
        for code in codes:
            out.setdefault(self.scored_as(code, period), []).append(code)
        return {agency: sorted(members) for agency, members in sorted(out.items())}

    def known(self) -> set[str]:
        return (
            set(self.current)
            | {m.old_code for m in self.mappings}
            | {m.new_code for m in self.mappings}
        )

    def unknown(self, seen: Iterable[str]) -> list[UnknownCode]:
        """Codes seen that are neither current nor in the crosswalk (with the form check)."""
        known = self.known()
        return [
            UnknownCode(code, regular=is_regular_organ_id(code))
            for code in sorted(set(seen))
            if code and code not in known
        ]


@dataclass(frozen=True, slots=True)
class UnknownCode:
    code: str
    regular: bool
    """The four-group form (`000.00.00.G22`); an irregular one is likely a typo at the source."""


def _date(value: str, *, where: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigurationError(f"{where}: {value!r} is not a date (yyyy-mm-dd)") from None


def parse_crosswalk(
    text: str, *, current: Iterable[str] = (), source: str = "crosswalk"
) -> Crosswalk:
    """Read the CSV (a header row is optional); a malformed row names its line."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if rows and rows[0] and rows[0][0].strip().lower() == "old_code":
        header, rows = rows[0], rows[1:]
        first_line = 2
    else:
        header, first_line = [], 1
    del header
    mappings = []
    for number, row in enumerate(rows, start=first_line):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        where = f"{source} line {number}"
        if len(cells) not in (3, 4):
            raise ConfigurationError(f"{where}: expected old_code,new_code,valid_from[,valid_to]")
        old, new = cells[0], cells[1]
        if not old or not new:
            raise ConfigurationError(f"{where}: empty code")
        if old == new:
            raise ConfigurationError(f"{where}: {old} maps to itself")
        valid_from = _date(cells[2], where=where)
        valid_to = _date(cells[3], where=where) if len(cells) == 4 and cells[3] else None
        if valid_to is not None and valid_to < valid_from:
            raise ConfigurationError(f"{where}: valid_to is before valid_from")
        mappings.append(Mapping(old, new, valid_from, valid_to))
    return Crosswalk(tuple(mappings), frozenset(c for c in current if c))
