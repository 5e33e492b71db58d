"""Scores queries over a large database: one agency's scorecard for a year (all indicators) and
the first page of a drill-down, on SQLite and on PostgreSQL (targets: < 1 s and < 0.5 s).

    uv run python -m bench.scores_queries [--dossiers 1000000] [--repeat 5]

The rows are generated straight into the database (templates derived once by the store's own
code, cloned under new codes), then the day counters are rebuilt from them, as `prepare` would.
Ten agencies; the one asked about holds 40% of the dossiers, spread over 2025 and 2026, 5% of
them still open. "Now" is 15 Dec 2026, so 2026 is the current, provisional year (2.1's open part
is judged now). Reports the storage per dossier. Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.common import arguments, table, write_report
from schemas.dossier import Channel, DossierStatus
from schemas.facts import DossierFacts
from services.scores.catalogue import Catalogue
from services.scores.crosswalk import Crosswalk
from services.scores.database import make_engine, migrate
from services.scores.periods import Period
from services.scores.scoreboard import Scoreboard
from services.scores.store import ScoreStore
from services.scores.tables import dossiers
from services.scores.writer import dossier_row
from tests.support.database import fresh_database, postgres_server

NOW = datetime(2026, 12, 15, 5, tzinfo=UTC)
START = datetime(2025, 1, 1, 2, tzinfo=UTC)
DAYS = 705
VARIANTS = 40
AGENCIES = [f"000.00.{i:02d}.H44" for i in range(10)]
TARGET = AGENCIES[0]


def _template(variant: int, day: int) -> dict[str, Any]:
    received = START + timedelta(days=day, hours=variant % 9)
    open_ = variant % 20 == 0
    ended = None if open_ else received + timedelta(days=2 + variant % 12)
    facts = DossierFacts(
        agency=TARGET,
        procedure_code=f"1.00{variant % 7}",
        status=DossierStatus.IN_PROCESS if open_ else DossierStatus.RETURNED,
        channel=Channel.ONLINE if variant % 3 else Channel.IN_PERSON,
        received_at=received,
        due_at=received + timedelta(days=10),
        finished_at=ended,
        ended_at=ended,
        end_status=None if open_ else DossierStatus.FINISHED,
        supplement_requests=1 if variant % 11 == 0 else 0,
        supplement_seconds=86_400 if variant % 11 == 0 else 0,
        fee_bearing=variant % 4 == 0,
        paid_online=1 if variant % 8 == 0 else None,
        digitised=variant % 5 != 0,
        attachments=variant % 6 != 0,
        vneid_verified=variant % 2 == 0,
    )
    return dossier_row(
        "", 1, facts, ack_revision=1, portal_holds=variant % 10 != 0, catalogue=Catalogue()
    )


def generate(engine: Engine, count: int) -> float:
    started = time.perf_counter()
    templates = [[_template(v, d) for d in range(DAYS)] for v in range(VARIANTS)]
    chunk: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for n in range(count):
            agency = TARGET if n % 10 < 4 else AGENCIES[1 + n % 9]
            row = dict(templates[n % VARIANTS][(n // VARIANTS) % DAYS])
            row["code"] = f"H44.Q-{n:08d}"
            row["agency"] = agency
            chunk.append(row)
            if len(chunk) == 20_000:
                conn.execute(dossiers.insert(), chunk)
                chunk = []
        if chunk:
            conn.execute(dossiers.insert(), chunk)
        store = ScoreStore(engine)
        store._rebuild_counts(conn)  # what `prepare` does, without a fingerprint
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def storage_bytes(engine: Engine, sqlite_file: Path | None) -> int:
    if sqlite_file is not None:
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return sqlite_file.stat().st_size
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def timed(call: Callable[[], object], repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return {"median": statistics.median(seconds), "max": max(seconds)}


def measure(url: str, sqlite_file: Path | None, count: int, repeat: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        migrate(engine)
        empty = storage_bytes(engine, sqlite_file)
        generated = generate(engine, count)
        used = storage_bytes(engine, sqlite_file) - empty
        board = Scoreboard(ScoreStore(engine), Crosswalk(), clock=lambda: NOW)
        year, month = Period.parse("2026"), Period.parse("2026-11")
        card = board.scorecard(TARGET, year)
        results = {
            "generate_seconds": generated,
            "bytes_per_dossier": used / count,
            "year_received": card.indicators[0].denominator,
            "scorecard_year": timed(lambda: board.scorecard(TARGET, year), repeat),
            "scorecard_closed_year": timed(
                lambda: board.scorecard(TARGET, Period.parse("2025")), repeat
            ),
            "scorecard_month": timed(lambda: board.scorecard(TARGET, month), repeat),
        }
        for indicator in ("2.1", "1.4", "4.3"):
            results[f"first_page_{indicator}"] = timed(
                lambda i=indicator: board.dossiers(TARGET, year, i, counted=False, limit=50),  # type: ignore[misc]
                repeat,
            )
        return results
    finally:
        engine.dispose()


def main() -> int:
    args = arguments(__doc__, dossiers=1_000_000, repeat=5)
    report: dict[str, Any] = {"args": vars(args), "databases": {}}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        sqlite_file = Path(tmp) / "scores.sqlite3"
        report["databases"]["sqlite"] = measure(
            f"sqlite:///{sqlite_file}", sqlite_file, args.dossiers, args.repeat
        )
        server = stack.enter_context(postgres_server())
        url = stack.enter_context(fresh_database(server))
        report["databases"]["postgresql"] = measure(url, None, args.dossiers, args.repeat)
    rows = []
    for name, found in report["databases"].items():
        rows.append(
            [
                name,
                found["scorecard_year"]["median"],
                found["scorecard_year"]["max"],
                found["scorecard_closed_year"]["median"],
                found["first_page_2.1"]["median"],
                found["first_page_4.3"]["median"],
                found["bytes_per_dossier"],
            ]
        )
    print(
        table(
            ["database", "year s (median)", "year s (max)", "2025 s", "2.1 page s",
             "4.3 page s", "bytes/dossier"],
            rows,
        )
    )  # fmt: skip
    write_report("scores_queries", report)
    ok = all(
        d["scorecard_year"]["max"] < 1.0
        and all(d[f"first_page_{i}"]["max"] < 0.5 for i in ("2.1", "1.4", "4.3"))
        for d in report["databases"].values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
