"""Applying batches of changes to the scores database exactly once: the service's hot path.

A batch is one transaction:
1. the stored state of every dossier (and e-document) the batch names, read with one SELECT
   (`code = ANY(%s)` with an array on PostgreSQL, `IN (SELECT value FROM json_each(?))` on
   SQLite), without the facts: only what the counters and the revision checks need;
2. per dossier, the newest revision in the batch, applied only if newer than the stored one
   (likewise its acknowledgement), so redeliveries, replays and restarts change nothing;
3. new and changed rows written by one INSERT ... ON CONFLICT DO UPDATE, changes of the
   acknowledgement alone by one UPDATE, each an executemany of tuples;
4. the counter changes netted per (agency, day) and part in Python, then written by one
   INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c in key order (two transactions never
   take the same rows' locks in opposite orders).

The statements go to the driver as text with tuples (`exec_driver_sql`): SQLAlchemy's per-row
compilation and parameter processing cost more than the database's own work
(docs/performance.md has the figures).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from schemas.facts import DossierFacts
from services.scores.catalogue import Catalogue
from services.scores.changes import AckChange, Applied, Batch, DossierChange
from services.scores.formulas import RECEPTION_PARTS, Part, derive
from services.scores.periods import local_day

PARTS = tuple(str(p.value) for p in Part)
"""The day counters' columns, in `Part` order (the vectors below are indexed so)."""
RECEPTION = tuple(str(p.value) for p in RECEPTION_PARTS)
"""The reception-dated parts: the first `len(RECEPTION)` of `PARTS`, in the same order."""

ROW_COLUMNS = (
    "code", "revision", "ack_revision", "portal_holds", "agency", "procedure_code", "status",
    "handled", "received_ms", "received_day", "end_ms", "end_day", "open_until", "deadline_ms",
    "forced_late", "supplement_since_ms", "ended_on_time", *RECEPTION, "facts",
)  # fmt: skip
"""A `scores_dossiers` row's columns, in the order `dossier_values` gives them."""
# Where `Counts` finds a dossier's parts in a row and in a stored state.
_ROW_AT = tuple(
    ROW_COLUMNS.index(c) for c in ("agency", "handled", "received_day", "end_day", "ended_on_time")
)
_R0 = ROW_COLUMNS.index(RECEPTION[0])

# What is read of a stored dossier: the revisions, and what its counters were made of.
_STATE_COLUMNS = (
    "code", "revision", "ack_revision", "portal_holds", "agency", "handled", "received_day",
    "end_day", "ended_on_time", *RECEPTION,
)  # fmt: skip
_STATE_AT = tuple(
    _STATE_COLUMNS.index(c)
    for c in ("agency", "handled", "received_day", "end_day", "ended_on_time")
)
_S0 = _STATE_COLUMNS.index(RECEPTION[0])
_S_REVISION, _S_ACK_REVISION, _S_HOLDS, _S_AGENCY, _S_RECEIVED_DAY = (
    _STATE_COLUMNS.index(c)
    for c in ("revision", "ack_revision", "portal_holds", "agency", "received_day")
)

_DOCUMENT_COLUMNS = (
    "document_id", "version", "agency", "day", "outgoing", "verified", "withdrawn", "counted",
)  # fmt: skip

_SYNCED = RECEPTION.index(Part.SYNCED.value)
_ENDED = PARTS.index(Part.ENDED.value)
_ENDED_ON_TIME = PARTS.index(Part.ENDED_ON_TIME.value)
_DOCUMENTS = PARTS.index(Part.DOCUMENTS.value)
_SIGNED = PARTS.index(Part.SIGNED.value)
_NO_RECEPTION = (0,) * len(RECEPTION)


def dossier_values(
    code: str,
    revision: int,
    facts: DossierFacts | None,
    *,
    ack_revision: int,
    portal_holds: bool,
    catalogue: Catalogue,
) -> tuple[Any, ...]:
    """One `scores_dossiers` row (`ROW_COLUMNS` order); without facts, a row that only holds
    an acknowledgement (revision 0, in no counter)."""
    if facts is None:
        return (
            code, revision, ack_revision, int(portal_holds), "", None, None, 0, None, None, None,
            None, 0, None, 0, None, None, *_NO_RECEPTION, None,
        )  # fmt: skip
    d = derive(facts, portal_holds=portal_holds, catalogue=catalogue)
    return (
        code, revision, ack_revision, int(portal_holds), d.agency or "", facts.procedure_code,
        int(facts.status), int(d.handled), d.received_ms, d.received_day, d.end_ms, d.end_day,
        d.open_until, d.deadline_ms, int(d.forced_late), d.supplement_since_ms,
        None if d.ended_on_time is None else int(d.ended_on_time),
        *(d.reception or _NO_RECEPTION), facts.model_dump_json(exclude_defaults=True),
    )  # fmt: skip


def dossier_row(
    code: str,
    revision: int,
    facts: DossierFacts | None,
    *,
    ack_revision: int,
    portal_holds: bool,
    catalogue: Catalogue,
) -> dict[str, Any]:
    """`dossier_values` by column name (for SQLAlchemy Core statements)."""
    values = dossier_values(
        code,
        revision,
        facts,
        ack_revision=ack_revision,
        portal_holds=portal_holds,
        catalogue=catalogue,
    )
    return dict(zip(ROW_COLUMNS, values, strict=True))


class Counts:
    """Counter changes of one batch, netted per (agency, day): a list per key in `PARTS` order."""

    __slots__ = ("by_key",)

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, int], list[int]] = {}

    def _at(self, agency: str, day: int) -> list[int]:
        found = self.by_key.get((agency, day))
        if found is None:
            found = self.by_key[(agency, day)] = [0] * len(PARTS)
        return found

    def dossier(
        self,
        agency: str,
        handled: int,
        received_day: int | None,
        end_day: int | None,
        ended_on_time: int | None,
        reception: Sequence[int],
        sign: int,
    ) -> None:
        """A dossier row's parts: the reception-dated ones on its reception day (if received),
        2.1's ended part on its end day."""
        if reception[0] and received_day is not None:
            target = self._at(agency, received_day)
            n = len(reception)
            if sign > 0:
                target[:n] = [a + b for a, b in zip(target, reception, strict=False)]
            else:
                target[:n] = [a - b for a, b in zip(target, reception, strict=False)]
        if handled and end_day is not None:
            target = self._at(agency, end_day)
            target[_ENDED] += sign
            if ended_on_time:
                target[_ENDED_ON_TIME] += sign

    def row(self, values: Sequence[Any], sign: int) -> None:
        """The parts of a row in `ROW_COLUMNS` order."""
        agency, handled, received_day, end_day, on_time = (values[i] for i in _ROW_AT)
        reception = values[_R0 : _R0 + len(RECEPTION)]
        self.dossier(agency, handled, received_day, end_day, on_time, reception, sign)

    def state(self, values: Sequence[Any], sign: int) -> None:
        """The parts of a stored state (`_STATE_COLUMNS` order)."""
        agency, handled, received_day, end_day, on_time = (values[i] for i in _STATE_AT)
        reception = values[_S0 : _S0 + len(RECEPTION)]
        self.dossier(agency, handled, received_day, end_day, on_time, reception, sign)

    def synced(self, agency: str, received_day: int, change: int) -> None:
        self._at(agency, received_day)[_SYNCED] += change

    def document(self, values: Sequence[Any], sign: int) -> None:
        """An e-document row's part (`_DOCUMENT_COLUMNS` order): outgoing, counted, not
        withdrawn, on its promulgation day."""
        _, _, agency, day, outgoing, verified, withdrawn, counted = values
        if counted and outgoing and not withdrawn and day is not None:
            target = self._at(agency, day)
            target[_DOCUMENTS] += sign
            if verified:
                target[_SIGNED] += sign

    def rows(self) -> list[tuple[Any, ...]]:
        """(agency, day, *parts) of the keys that changed, sorted by key."""
        return [
            (agency, day, *values)
            for (agency, day), values in sorted(self.by_key.items())
            if any(values)
        ]


def _upsert_sql(
    table: str, columns: Sequence[str], keys: Sequence[str], *, add: bool, mark: str
) -> str:
    """INSERT ... ON CONFLICT DO UPDATE (the same text on SQLite and PostgreSQL): the other
    columns replaced, or (`add`) incremented by the new values."""
    sets = ", ".join(
        f"{c} = {table}.{c} + excluded.{c}" if add else f"{c} = excluded.{c}"
        for c in columns
        if c not in keys
    )
    marks = ", ".join([mark] * len(columns))
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - fixed names
    return f"{insert} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"


def _select_sql(table: str, columns: Sequence[str], key: str, *, postgres: bool) -> str:
    """The rows whose `key` is in one parameter: an array, or a JSON list on SQLite."""
    within = "= ANY(%s)" if postgres else "IN (SELECT value FROM json_each(?))"
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {key} {within}"  # noqa: S608 - fixed names


class Writer:
    """The statements of one dialect (SQLite or PostgreSQL) and the batch logic around them.

    Rows are written by executemany. On PostgreSQL, psycopg 3 pipelines it (no round trip per
    row); one `unnest` of column arrays was measured slower (psycopg dumps a Python list at
    about 1 µs per element) and COPY into a temporary table then one INSERT ... SELECT no
    faster: the server's index upkeep is most of the cost."""

    def __init__(self, dialect: str, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._postgres = pg = dialect == "postgresql"
        mark = "%s" if pg else "?"
        self._select_dossiers = _select_sql("scores_dossiers", _STATE_COLUMNS, "code", postgres=pg)
        self._select_documents = _select_sql(
            "scores_documents", _DOCUMENT_COLUMNS, "document_id", postgres=pg
        )
        self._upsert_dossiers = _upsert_sql(
            "scores_dossiers", ROW_COLUMNS, ["code"], add=False, mark=mark
        )
        self._upsert_documents = _upsert_sql(
            "scores_documents", _DOCUMENT_COLUMNS, ["document_id"], add=False, mark=mark
        )
        self._add_counts = _upsert_sql(
            "scores_day_counts", ("agency", "day", *PARTS), ["agency", "day"], add=True, mark=mark
        )
        self._update_acks = (
            f"UPDATE scores_dossiers SET ack_revision = {mark}, portal_holds = {mark},"  # noqa: S608 - fixed names
            f" synced = {mark} WHERE code = {mark}"
        )

    # --- the statements -------------------------------------------------------------------

    def _select(self, conn: Connection, sql: str, keys: Iterable[str]) -> list[Any]:
        wanted = list(keys)
        if not wanted:
            return []
        param = wanted if self._postgres else json.dumps(wanted)
        return list(conn.exec_driver_sql(sql, (param,)))

    @staticmethod
    def _many(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            conn.exec_driver_sql(sql, rows)

    def write_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert or replace whole `scores_dossiers` rows (`ROW_COLUMNS` order)."""
        self._many(conn, self._upsert_dossiers, rows)

    def add_counts(self, conn: Connection, counts: Counts) -> None:
        self._many(conn, self._add_counts, counts.rows())

    # --- one batch ------------------------------------------------------------------------

    def apply(self, conn: Connection, batch: Batch) -> Applied:
        """Apply a batch inside the caller's transaction: each record only if newer."""
        applied = Applied()
        counts = Counts()
        if batch.dossiers or batch.acks:
            self._dossiers(conn, batch, applied, counts)
        if batch.documents or batch.withdrawn:
            self._documents(conn, batch, applied, counts)
        self.add_counts(conn, counts)
        return applied

    def _dossiers(self, conn: Connection, batch: Batch, applied: Applied, counts: Counts) -> None:
        codes = {c.code for c in batch.dossiers} | {a.code for a in batch.acks}
        stored = {s[0]: s for s in self._select(conn, self._select_dossiers, codes)}
        # The newest of each dossier within the batch (records of one dossier arrive in order,
        # but a replay may interleave with what is stored).
        latest: dict[str, DossierChange] = {}
        for record in batch.dossiers:
            have = latest.get(record.code)
            if have is not None:
                current = have.revision
            else:
                old = stored.get(record.code)
                current = old[_S_REVISION] if old is not None else 0
            if record.revision > current:
                latest[record.code] = record
            else:
                applied.stale_dossiers += 1
        acks: dict[str, AckChange] = {}
        for acked in batch.acks:
            have_ack = acks.get(acked.code)
            if have_ack is not None:
                current = have_ack.revision
            else:
                old = stored.get(acked.code)
                current = old[_S_ACK_REVISION] if old is not None else 0
            if acked.revision > current:
                acks[acked.code] = acked
            else:
                applied.stale_acks += 1
        rows: list[tuple[Any, ...]] = []
        ack_rows: list[tuple[Any, ...]] = []
        for code in latest.keys() | acks.keys():
            old = stored.get(code)
            change = latest.get(code)
            ack = acks.get(code)
            if ack is not None:
                ack_revision, holds = ack.revision, ack.header
            elif old is not None:
                ack_revision, holds = old[_S_ACK_REVISION], bool(old[_S_HOLDS])
            else:
                ack_revision, holds = 0, False
            if change is None and old is not None:
                # Only the acknowledgement changed: of the parts, only 1.4's numerator moves
                # (`derive`: synced = the portal holds it, for a received dossier).
                received = old[_S0]
                synced = int(bool(received) and holds)
                was = old[_S0 + _SYNCED]
                day = old[_S_RECEIVED_DAY]
                if received and day is not None and synced != was:
                    counts.synced(old[_S_AGENCY], day, synced - was)
                ack_rows.append((ack_revision, int(holds), synced, code))
                continue
            row = dossier_values(
                code,
                change.revision if change else 0,
                change.facts if change else None,
                ack_revision=ack_revision,
                portal_holds=holds,
                catalogue=self.catalogue,
            )
            if old is not None:
                counts.state(old, -1)
            counts.row(row, +1)
            rows.append(row)
        applied.dossiers += len(latest)
        applied.acks += len(acks)
        self.write_rows(conn, rows)
        self._many(conn, self._update_acks, ack_rows)

    def _documents(self, conn: Connection, batch: Batch, applied: Applied, counts: Counts) -> None:
        ids = {d.document_id for d in batch.documents} | set(batch.withdrawn)
        ids |= {w for d in batch.documents for w in d.withdraws}
        stored = {s[0]: tuple(s) for s in self._select(conn, self._select_documents, ids)}
        state: dict[str, list[Any]] = {k: list(v) for k, v in stored.items()}

        def at(document_id: str) -> list[Any]:
            found = state.get(document_id)
            if found is None:
                # Only a revocation of it is known so far (version 0).
                found = state[document_id] = [document_id, 0, "", None, 0, 0, 0, 0]
            return found

        for change in batch.documents:
            row = at(change.document_id)
            if change.version <= row[1]:
                applied.stale_documents += 1
            else:
                row[1:6] = [
                    change.version,
                    change.agency or "",
                    local_day(change.promulgated) if change.promulgated else None,
                    int(change.outgoing),
                    int(change.verified),
                ]
                row[7] = int(change.counts)
                applied.documents += 1
            for target in change.withdraws:
                at(target)[6] = 1
        for target in batch.withdrawn:
            at(target)[6] = 1
        changed = []
        for key, values in state.items():
            now = tuple(values)
            old = stored.get(key)
            if old == now:
                continue
            if old is not None:
                counts.document(old, -1)
            counts.document(now, +1)
            changed.append(now)
        self._many(conn, self._upsert_documents, changed)
