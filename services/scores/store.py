"""The scores database at work: applying batches of changes exactly once (`writer.py` holds
the statements), and the queries the API and the pages ask (a period's sums per agency, the
dossiers behind an indicator).

How the aggregates are kept: incremental per-agency, per-day counters (`scores_day_counts`),
updated in the same transaction as the dossier rows they come from. A changed dossier takes its
old parts out of the days they were in and adds its new ones (so a dossier whose facts change
moves between periods and indicators), and a period's sums are a range over at most 366 rows
per agency code. Counters cannot hold 2.1's open part, which moves with the clock (a dossier
open at a period's end is judged at the cutoff); that part is an indexed query over the
dossiers not ended by the period's end (`ix_scores_dossiers_open`, read from the index alone).
A record is applied only if its revision is newer than the stored one, so redeliveries,
replays of whole topics and restarts change nothing.

Synchronous SQLAlchemy Core: the service calls it from a worker thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from schemas.facts import DossierFacts
from services.common.dates import to_ms
from services.common.logging import get_logger
from services.scores.catalogue import Catalogue
from services.scores.changes import Applied, Batch
from services.scores.formulas import (
    BY_ID,
    RECEPTION_PARTS,
    Judgement,
    Part,
    Reason,
    Sums,
    derive,
    judge,
)
from services.scores.periods import Period
from services.scores.tables import day_counts, documents, dossiers, meta
from services.scores.writer import PARTS, Writer, dossier_values

log = get_logger(__name__)

_CHUNK = 500
_CATALOGUE_KEY = "catalogue"


# --- the store --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListedDossier:
    """One dossier of a drill-down list, with why it counts (no personal data)."""

    code: str
    agency: str
    procedure_code: str | None
    status: int | None
    channel: int | None
    received_at: datetime | None
    due_at: datetime | None
    ended_at: datetime | None
    portal_holds: bool
    judgement: Judgement


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    items: list[ListedDossier] = field(default_factory=list)


class ScoreStore:
    """One database: apply batches, answer sums and lists. Thread-safe as its engine is."""

    def __init__(self, engine: Engine, catalogue: Catalogue | None = None) -> None:
        self.engine = engine
        self.catalogue = catalogue or Catalogue()
        self._writer = Writer(engine.dialect.name, self.catalogue)

    # --- writing ------------------------------------------------------------------------

    def apply(self, batch: Batch) -> Applied:
        """Apply a batch in one transaction: each record only if newer than what is stored."""
        with self.engine.begin() as conn:
            return self._writer.apply(conn, batch)

    # --- configuration changes ---------------------------------------------------------------

    def prepare(self) -> bool:
        """Recompute every dossier's parts if the procedure catalogue changed since they were
        stored (its fingerprint is kept in `scores_meta`); True if it did."""
        fingerprint = self.catalogue.fingerprint()
        with self.engine.begin() as conn:
            stored = conn.execute(
                select(meta.c.value).where(meta.c.key == _CATALOGUE_KEY)
            ).scalar_one_or_none()
            if stored == fingerprint:
                return False
            recomputed = self._recompute(conn)
            self._rebuild_counts(conn)
            conn.execute(delete(meta).where(meta.c.key == _CATALOGUE_KEY))
            conn.execute(meta.insert().values(key=_CATALOGUE_KEY, value=fingerprint))
        if stored is not None:
            log.info("scores recomputed for a new catalogue", dossiers=recomputed)
        return stored is not None

    def _recompute(self, conn: Connection) -> int:
        count = 0
        last = ""
        while True:
            chunk = (
                conn.execute(
                    select(dossiers)
                    .where(dossiers.c.code > last)
                    .order_by(dossiers.c.code)
                    .limit(2000)
                )
                .mappings()
                .all()
            )
            if not chunk:
                return count
            rows = []
            for old in chunk:
                facts = DossierFacts.model_validate_json(old["facts"]) if old["facts"] else None
                rows.append(
                    dossier_values(
                        old["code"],
                        old["revision"],
                        facts,
                        ack_revision=old["ack_revision"],
                        portal_holds=bool(old["portal_holds"]),
                        catalogue=self.catalogue,
                    )
                )
            self._writer.write_rows(conn, rows)
            count += len(rows)
            last = chunk[-1]["code"]

    def expected_counts(self, conn: Connection) -> dict[tuple[str, int], dict[str, int]]:
        """The day counters recomputed from the rows (what the increments must equal)."""
        total: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(PARTS, 0))
        reception = [func.sum(dossiers.c[p.value]) for p in RECEPTION_PARTS]
        query = (
            select(dossiers.c.agency, dossiers.c.received_day, *reception)
            .where(dossiers.c.received == 1, dossiers.c.received_day.is_not(None))
            .group_by(dossiers.c.agency, dossiers.c.received_day)
        )
        for agency, day, *sums in conn.execute(query):
            for p, value in zip(RECEPTION_PARTS, sums, strict=True):
                total[(agency, day)][p.value] += int(value)
        query = (
            select(
                dossiers.c.agency,
                dossiers.c.end_day,
                func.count(),
                func.sum(func.coalesce(dossiers.c.ended_on_time, 0)),
            )
            .where(dossiers.c.handled == 1, dossiers.c.end_day.is_not(None))
            .group_by(dossiers.c.agency, dossiers.c.end_day)
        )
        for agency, day, ended, on_time in conn.execute(query):
            total[(agency, day)][Part.ENDED.value] += int(ended)
            total[(agency, day)][Part.ENDED_ON_TIME.value] += int(on_time)
        query = (
            select(
                documents.c.agency, documents.c.day, func.count(), func.sum(documents.c.verified)
            )
            .where(
                documents.c.counted == 1,
                documents.c.outgoing == 1,
                documents.c.withdrawn == 0,
                documents.c.day.is_not(None),
            )
            .group_by(documents.c.agency, documents.c.day)
        )
        for agency, day, count, signed in conn.execute(query):
            total[(agency, day)][Part.DOCUMENTS.value] += int(count)
            total[(agency, day)][Part.SIGNED.value] += int(signed)
        return {key: values for key, values in total.items() if any(values.values())}

    def stored_counts(self, conn: Connection) -> dict[tuple[str, int], dict[str, int]]:
        out = {}
        for row in conn.execute(select(day_counts)).mappings():
            values = {c: int(row[c]) for c in PARTS}
            if any(values.values()):
                out[(row["agency"], row["day"])] = values
        return out

    def _rebuild_counts(self, conn: Connection) -> None:
        expected = self.expected_counts(conn)
        conn.execute(delete(day_counts))
        rows = [{"agency": a, "day": d} | v for (a, d), v in expected.items()]
        for i in range(0, len(rows), _CHUNK):
            conn.execute(day_counts.insert(), rows[i : i + _CHUNK])

    # --- reading ------------------------------------------------------------------------------

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def sums(self, codes: Sequence[str], period: Period, *, now: datetime) -> Sums:
        """One agency's (its codes') sums for a period; 2.1's open part judged at the cutoff."""
        by_agency = self.sums_by_agency(period, now=now, codes=codes)
        parts: dict[Part, int] = dict.fromkeys(Part, 0)
        open_total = open_ok = 0
        for sums in by_agency.values():
            for part, value in sums.parts.items():
                parts[part] += value
            open_total += sums.open_total
            open_ok += sums.open_on_time
        return Sums(parts, open_total, open_ok)

    def sums_by_agency(
        self, period: Period, *, now: datetime, codes: Sequence[str] | None = None
    ) -> dict[str, Sums]:
        """Every agency code's sums for a period (or only `codes`')."""
        columns = [func.sum(day_counts.c[p.value]) for p in Part]
        query = (
            select(day_counts.c.agency, *columns)
            .where(day_counts.c.day >= period.first_day, day_counts.c.day < period.end_day)
            .group_by(day_counts.c.agency)
        )
        if codes is not None:
            query = query.where(day_counts.c.agency.in_(list(codes)))
        end, cutoff = to_ms(period.end), to_ms(period.cutoff(now))
        on_time = _open_on_time(cutoff)
        open_query = (
            select(dossiers.c.agency, func.count(), func.sum(on_time))
            .where(*_open_at(end))
            .group_by(dossiers.c.agency)
        )
        if codes is not None:
            open_query = open_query.where(dossiers.c.agency.in_(list(codes)))
        found: dict[str, tuple[dict[Part, int], int, int]] = {}
        with self.engine.connect() as conn:
            for agency, *sums in conn.execute(query):
                parts = {p: int(v or 0) for p, v in zip(Part, sums, strict=True)}
                found[agency] = (parts, 0, 0)
            for agency, total, ok in conn.execute(open_query):
                parts = found.get(agency, (dict.fromkeys(Part, 0), 0, 0))[0]
                found[agency] = (parts, int(total), int(ok or 0))
        return {a: Sums(p, t, o) for a, (p, t, o) in found.items()}

    def agencies_seen(self) -> list[str]:
        """Every agency code any dossier or e-document carries (as sent)."""
        with self.engine.connect() as conn:
            codes = set(conn.execute(select(dossiers.c.agency).distinct()).scalars())
            codes |= set(conn.execute(select(documents.c.agency).distinct()).scalars())
        return sorted(c for c in codes if c)

    def listed(
        self,
        codes: Sequence[str],
        period: Period,
        indicator: str,
        *,
        counted: bool,
        now: datetime,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """The dossiers counted for (`counted`) or against an indicator, oldest reception first."""
        if indicator == "signature":
            return self._listed_documents(
                codes, period, counted=counted, limit=limit, offset=offset
            )
        sums = self.sums(codes, period, now=now)
        parts = _listing(indicator, counted, period, now, sums)
        if parts is None:
            return Page(0)
        rows: list[dict[str, Any]] = []
        skip, want = offset, limit
        with self.engine.connect() as conn:
            # The parts in order (2.1: those that ended in the period, by their end, then those
            # still open at its end), each read in its own index's order; the totals are the
            # counters' (the same rules), so no count runs over every listed row.
            for where, order, count in parts:
                if skip >= count:
                    skip -= count
                    continue
                query = (
                    select(dossiers)
                    .where(dossiers.c.agency.in_(list(codes)), where)
                    .order_by(*order)
                    .limit(want)
                    .offset(skip)
                )
                found = [dict(row) for row in conn.execute(query).mappings()]
                rows.extend(found)
                skip, want = 0, want - len(found)
                if want <= 0:
                    break
        total = sum(count for _, _, count in parts)
        return Page(total, [self._listed(row, indicator, period, now) for row in rows])

    def _listed(
        self, row: Mapping[str, Any], indicator: str, period: Period, now: datetime
    ) -> ListedDossier:
        facts = DossierFacts.model_validate_json(row["facts"])
        d = derive(facts, portal_holds=bool(row["portal_holds"]), catalogue=self.catalogue)
        verdict = judge(indicator, facts, d, period, now=now, catalogue=self.catalogue)
        return ListedDossier(
            code=row["code"],
            agency=row["agency"],
            procedure_code=row["procedure_code"],
            status=row["status"],
            channel=int(facts.channel) if facts.channel is not None else None,
            received_at=facts.received_at,
            due_at=facts.due_at,
            ended_at=facts.ended_at,
            portal_holds=bool(row["portal_holds"]),
            judgement=verdict,
        )

    def _listed_documents(
        self, codes: Sequence[str], period: Period, *, counted: bool, limit: int, offset: int
    ) -> Page:
        t = documents
        where = and_(
            t.c.agency.in_(list(codes)),
            t.c.day >= period.first_day,
            t.c.day < period.end_day,
            t.c.counted == 1,
            t.c.outgoing == 1,
            t.c.withdrawn == 0,
            t.c.verified == int(counted),
        )
        with self.engine.connect() as conn:
            count = int(conn.execute(select(func.count()).select_from(t).where(where)).scalar_one())
            rows = (
                conn.execute(
                    select(t)
                    .where(where)
                    .order_by(t.c.day, t.c.document_id)
                    .limit(limit)
                    .offset(offset)
                )
                .mappings()
                .all()
            )
        reason = Reason.SIGNED if counted else Reason.NOT_SIGNED
        items = [
            ListedDossier(
                code=row["document_id"],
                agency=row["agency"],
                procedure_code=None,
                status=None,
                channel=None,
                received_at=None,
                due_at=None,
                ended_at=None,
                portal_holds=False,
                judgement=Judgement(counted, reason),
            )
            for row in rows
        ]
        return Page(count, items)


def _open_at(end_ms: int) -> list[ColumnElement[bool]]:
    """2.1's open part: in the population and not ended before the period's end."""
    t = dossiers.c
    return [t.handled == 1, t.open_until >= end_ms, t.received_ms < end_ms]


def _open_on_time(cutoff_ms: int) -> ColumnElement[int]:
    """`formulas.open_on_time` in SQL: judged at the cutoff, or at a pending supplement's
    request if that came first."""
    t = dossiers.c
    point = case(
        (
            and_(t.supplement_since_ms.is_not(None), t.supplement_since_ms < cutoff_ms),
            t.supplement_since_ms,
        ),
        else_=literal(cutoff_ms),
    )
    return case(
        (and_(t.forced_late == 0, t.deadline_ms.is_not(None), point <= t.deadline_ms), 1),
        else_=0,
    )


def _listing(
    indicator: str, counted: bool, period: Period, now: datetime, sums: Sums
) -> list[tuple[ColumnElement[bool], tuple[Any, ...], int]] | None:
    """The parts of a list of `scores_dossiers` counted for or against an indicator in a
    period: each a condition, its order (an index's), and how many rows it holds."""
    t = dossiers.c
    got = sums.parts
    if indicator == "2.1":
        end = to_ms(period.end)
        ended = and_(
            t.handled == 1,
            t.end_day >= period.first_day,
            t.end_day < period.end_day,
            func.coalesce(t.ended_on_time, 0) == int(counted),
        )
        still_open = and_(*_open_at(end), _open_on_time(to_ms(period.cutoff(now))) == int(counted))
        on_time = got.get(Part.ENDED_ON_TIME, 0)
        ended_count = on_time if counted else got.get(Part.ENDED, 0) - on_time
        open_count = sums.open_on_time if counted else sums.open_total - sums.open_on_time
        return [
            (ended, (t.end_day, t.end_ms, t.code), ended_count),
            (still_open, (t.received_ms, t.code), open_count),
        ]
    ind = BY_ID[indicator]
    in_period = and_(
        t.received == 1, t.received_day >= period.first_day, t.received_day < period.end_day
    )
    order = (t.received_day, t.received_ms, t.code)
    num, den = got.get(ind.numerator, 0), got.get(ind.denominator, 0)
    if indicator == "2.2":
        return [(and_(in_period, t.finished == 1), order, den)] if counted else None
    where = and_(in_period, t[ind.denominator.value] == 1, t[ind.numerator.value] == int(counted))
    return [(where, order, num if counted else den - num)]
