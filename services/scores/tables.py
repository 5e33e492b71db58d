"""The scores database's tables (SQLAlchemy Core): one row of facts per dossier and per
e-document, counters per agency and day, a little metadata, and the reconciliation's sweeps,
findings, leases and score checks (written by `services/reconcile/`). The Alembic migrations in
`migrations/versions/` create exactly these (a test compares them).

Storage per dossier: its `scores_dossiers` row (fixed columns, about 140 bytes, plus the facts as
compact JSON, about 250) and its entries in three indexes (about 40 bytes each); the day counters
grow with agencies times days, not with dossiers (docs/scores.md has the measured figures).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from services.scores.formulas import RECEPTION_PARTS, Part

metadata = MetaData()

_FLAG_PARTS = tuple(p for p in RECEPTION_PARTS if p is not Part.PROCESSING_SECONDS)

dossiers = Table(
    "scores_dossiers",
    metadata,
    Column("code", String(100), primary_key=True),
    Column("revision", Integer, nullable=False),  # 0: only an acknowledgement is known
    Column("ack_revision", Integer, nullable=False),
    Column("portal_holds", SmallInteger, nullable=False),
    Column("agency", String(64), nullable=False),  # as sent; '' when none
    Column("procedure_code", String(100)),
    Column("status", SmallInteger),
    Column("handled", SmallInteger, nullable=False),
    Column("received_ms", BigInteger),
    Column("received_day", Integer),
    Column("end_ms", BigInteger),
    Column("end_day", Integer),
    Column("open_until", BigInteger, nullable=False),
    Column("deadline_ms", BigInteger),
    Column("forced_late", SmallInteger, nullable=False),
    Column("supplement_since_ms", BigInteger),
    Column("ended_on_time", SmallInteger),
    # The reception-dated parts; `received` (1: in those denominators) is the first of them.
    *(Column(p.value, SmallInteger, nullable=False) for p in _FLAG_PARTS),
    Column(Part.PROCESSING_SECONDS.value, BigInteger, nullable=False),
    Column("facts", Text),  # DossierFacts as JSON
    Index("ix_scores_dossiers_reception", "agency", "received_day"),
    Index("ix_scores_dossiers_end", "agency", "end_day"),
    # 2.1's open part: those not ended by a period's end, judged at its cutoff, read from the
    # index alone.
    Index(
        "ix_scores_dossiers_open",
        "agency",
        "open_until",
        "received_ms",
        "deadline_ms",
        "supplement_since_ms",
        "forced_late",
        "handled",
    ),
)

day_counts = Table(
    "scores_day_counts",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),  # yyyymmdd, Asia/Ho_Chi_Minh
    *(Column(p.value, BigInteger, nullable=False, default=0) for p in Part),
)

documents = Table(
    "scores_documents",
    metadata,
    Column("document_id", String(300), primary_key=True),
    # The package's event time (ms); 0: only a revocation of the document is known.
    Column("version", BigInteger, nullable=False),
    Column("agency", String(64), nullable=False),
    Column("day", Integer),
    Column("outgoing", SmallInteger, nullable=False),
    Column("verified", SmallInteger, nullable=False),
    Column("withdrawn", SmallInteger, nullable=False),
    Column("counted", SmallInteger, nullable=False),
    Index("ix_scores_documents_day", "agency", "day"),
)

meta = Table(
    "scores_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- the reconciliation's (services/reconcile/): written by its sweeps, read by its page ------

reconcile_sweeps = Table(
    "reconcile_sweeps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency", String(64), nullable=False),
    Column("period", String(16), nullable=False),
    Column("phase", String(16), nullable=False),  # lookup, resend, recheck, done
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger),
    Column("checkpoint", String(100), nullable=False),  # the last code looked up, in code order
    Column("population", Integer, nullable=False),
    Column("looked_up", Integer, nullable=False),
    Column("lookups", Integer, nullable=False),  # every TraCuuHoSo call, re-checks included
    Column("matched", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("different", Integer, nullable=False),
    Column("unchecked", Integer, nullable=False),
    Column("unknown", Integer),  # from the reporting API; None: not asked
    Column("resent", Integer, nullable=False),
    Column("remaining", Integer),
    Column("pauses", Integer, nullable=False),
    Column("paused_seconds", Float, nullable=False),
    Column("note", Text),
    Index("ix_reconcile_sweeps_agency", "agency", "period", "id"),
)

reconcile_findings = Table(
    "reconcile_findings",
    metadata,
    Column("sweep_id", Integer, primary_key=True),
    Column("code", String(100), primary_key=True),
    Column("state", String(16), nullable=False),  # missing, different, unchecked
    Column("differences", String(300), nullable=False),
    Column("govsync_status", SmallInteger),
    Column("portal_status", SmallInteger),
    Column("revision", Integer, nullable=False),
    Column("ack_revision", Integer, nullable=False),
    Column("resend", String(16)),  # sent, in_flight, no_record; None: not yet decided
    Column("after", String(16)),  # the state the re-check found
)

reconcile_leases = Table(
    "reconcile_leases",
    metadata,
    Column("agency", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

reconcile_score_checks = Table(
    "reconcile_score_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency", String(64), nullable=False),
    Column("period", String(16), nullable=False),
    Column("checked_ms", BigInteger, nullable=False),
    Column("department_id", String(64), nullable=False),
    Column("sweep_id", Integer),  # the sweep whose findings explain the differences
    Index("ix_reconcile_score_checks_agency", "agency", "period", "id"),
)

reconcile_score_rows = Table(
    "reconcile_score_rows",
    metadata,
    Column("check_id", Integer, primary_key=True),
    Column("indicator", String(16), primary_key=True),
    Column("govsync_numerator", Float),
    Column("govsync_denominator", Float),
    Column("govsync_rate", Float),
    Column("govsync_points", Float),
    Column("portal_numerator", Float),
    Column("portal_denominator", Float),
    Column("portal_rate", Float),
    Column("portal_points", Float),
    Column("explaining", Text, nullable=False),  # JSON list of dossier codes (at most 50)
)
