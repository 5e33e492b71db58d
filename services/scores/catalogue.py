"""The procedure catalogue: which procedures issue a paper result (4.1, and the electronic-result
conditions of 3.3 and 4.2) and which bear fees (3.6), read from a CSV export.

Pure: text in, a `Catalogue` out. Columns (a header row, any order, extra columns ignored):
`procedure_code` (MaTTHC), `paper_result` (1/0, yes/no, true/false), and optionally
`fee_bearing` and `legal_limit_days` (the procedure's legal time limit, used for 2.1 when a
dossier has no due date and its facts carry no limit).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.scores.errors import ConfigurationError

_TRUE = {"1", "yes", "true", "y", "x", "co", "có"}
_FALSE = {"0", "no", "false", "n", "", "khong", "không"}


@dataclass(frozen=True, slots=True)
class Procedure:
    paper_result: bool = False
    fee_bearing: bool | None = None
    legal_limit_days: int | None = None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the catalogue says of each procedure; an empty catalogue says nothing."""

    procedures: Mapping[str, Procedure] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.procedures)

    def paper_result(self, code: str | None) -> bool:
        found = self.procedures.get(code) if code else None
        return found.paper_result if found else False

    def fee_bearing(self, code: str | None) -> bool | None:
        found = self.procedures.get(code) if code else None
        return found.fee_bearing if found else None

    def legal_limit_days(self, code: str | None) -> int | None:
        found = self.procedures.get(code) if code else None
        return found.legal_limit_days if found else None

    def fingerprint(self) -> str:
        """Changes whenever what the stored per-dossier parts depend on changes."""
        digest = hashlib.sha256()
        for code in sorted(self.procedures):
            p = self.procedures[code]
            digest.update(
                f"{code}|{p.paper_result}|{p.fee_bearing}|{p.legal_limit_days}\n".encode()
            )
        return digest.hexdigest()[:16]


def _flag(value: str, *, where: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"{where}: {value!r} is not a yes/no value")


def parse_catalogue(text: str, *, source: str = "catalogue") -> Catalogue:
    """Read the CSV; a malformed row is a `ConfigurationError` naming its line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {c.strip() for c in reader.fieldnames or ()}
    if "procedure_code" not in columns:
        raise ConfigurationError(f"{source}: the header must name a procedure_code column")
    procedures: dict[str, Procedure] = {}
    for row in reader:
        line = reader.line_num
        where = f"{source} line {line}"
        row = {(k or "").strip(): (v or "") for k, v in row.items()}
        code = row["procedure_code"].strip()
        if not code:
            raise ConfigurationError(f"{where}: empty procedure_code")
        fee = row.get("fee_bearing", "").strip()
        days = row.get("legal_limit_days", "").strip()
        try:
            limit = int(days) if days else None
        except ValueError:
            raise ConfigurationError(
                f"{where}: legal_limit_days {days!r} is not a number"
            ) from None
        if limit is not None and limit < 0:
            raise ConfigurationError(f"{where}: legal_limit_days is negative")
        procedures[code] = Procedure(
            paper_result=_flag(row.get("paper_result", ""), where=where),
            fee_bearing=_flag(fee, where=where) if fee else None,
            legal_limit_days=limit,
        )
    return Catalogue(procedures)
