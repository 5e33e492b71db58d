"""The reconciliation's tables: sweeps (history and checkpoint), findings per dossier, one
lease per agency, and the per-score checks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Written out rather than imported: a migration must not change when the code does.
_COUNTS = ("population", "looked_up", "lookups", "matched", "missing", "different", "unchecked")
_SIDES = ("govsync", "portal")
_FIGURES = ("numerator", "denominator", "rate", "points")


def upgrade() -> None:
    op.create_table(
        "reconcile_sweeps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger),
        sa.Column("checkpoint", sa.String(100), nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in _COUNTS),
        sa.Column("unknown", sa.Integer),
        sa.Column("resent", sa.Integer, nullable=False),
        sa.Column("remaining", sa.Integer),
        sa.Column("pauses", sa.Integer, nullable=False),
        sa.Column("paused_seconds", sa.Float, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_reconcile_sweeps_agency", "reconcile_sweeps", ["agency", "period", "id"])
    op.create_table(
        "reconcile_findings",
        sa.Column("sweep_id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("differences", sa.String(300), nullable=False),
        sa.Column("govsync_status", sa.SmallInteger),
        sa.Column("portal_status", sa.SmallInteger),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("ack_revision", sa.Integer, nullable=False),
        sa.Column("resend", sa.String(16)),
        sa.Column("after", sa.String(16)),
    )
    op.create_table(
        "reconcile_leases",
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "reconcile_score_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("checked_ms", sa.BigInteger, nullable=False),
        sa.Column("department_id", sa.String(64), nullable=False),
        sa.Column("sweep_id", sa.Integer),
    )
    op.create_index(
        "ix_reconcile_score_checks_agency", "reconcile_score_checks", ["agency", "period", "id"]
    )
    op.create_table(
        "reconcile_score_rows",
        sa.Column("check_id", sa.Integer, primary_key=True),
        sa.Column("indicator", sa.String(16), primary_key=True),
        *(sa.Column(f"{side}_{name}", sa.Float) for side in _SIDES for name in _FIGURES),
        sa.Column("explaining", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "reconcile_score_rows",
        "reconcile_score_checks",
        "reconcile_leases",
        "reconcile_findings",
        "reconcile_sweeps",
    ):
        op.drop_table(table)
