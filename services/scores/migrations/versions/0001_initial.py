"""The first schema: dossiers, day counters, e-documents, metadata.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written out rather than imported: a migration must not change when the code does.
_FLAGS = (
    "received",
    "synced",
    "online",
    "fee_due",
    "paid",
    "paper_finished",
    "result",
    "attached",
    "digitised",
    "national_repository",
    "vneid",
    "finished",
)
_PARTS = (*_FLAGS, "processing_seconds", "ended", "ended_on_time", "documents", "signed")


def upgrade() -> None:
    op.create_table(
        "scores_dossiers",
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("ack_revision", sa.Integer, nullable=False),
        sa.Column("portal_holds", sa.SmallInteger, nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("procedure_code", sa.String(100)),
        sa.Column("status", sa.SmallInteger),
        sa.Column("handled", sa.SmallInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger),
        sa.Column("received_day", sa.Integer),
        sa.Column("end_ms", sa.BigInteger),
        sa.Column("end_day", sa.Integer),
        sa.Column("open_until", sa.BigInteger, nullable=False),
        sa.Column("deadline_ms", sa.BigInteger),
        sa.Column("forced_late", sa.SmallInteger, nullable=False),
        sa.Column("supplement_since_ms", sa.BigInteger),
        sa.Column("ended_on_time", sa.SmallInteger),
        *(sa.Column(name, sa.SmallInteger, nullable=False) for name in _FLAGS),
        sa.Column("processing_seconds", sa.BigInteger, nullable=False),
        sa.Column("facts", sa.Text),
    )
    op.create_index("ix_scores_dossiers_reception", "scores_dossiers", ["agency", "received_day"])
    op.create_index("ix_scores_dossiers_end", "scores_dossiers", ["agency", "end_day"])
    op.create_index(
        "ix_scores_dossiers_open",
        "scores_dossiers",
        [
            "agency",
            "open_until",
            "received_ms",
            "deadline_ms",
            "supplement_since_ms",
            "forced_late",
            "handled",
        ],
    )
    op.create_table(
        "scores_day_counts",
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in _PARTS),
    )
    op.create_table(
        "scores_documents",
        sa.Column("document_id", sa.String(300), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("day", sa.Integer),
        sa.Column("outgoing", sa.SmallInteger, nullable=False),
        sa.Column("verified", sa.SmallInteger, nullable=False),
        sa.Column("withdrawn", sa.SmallInteger, nullable=False),
        sa.Column("counted", sa.SmallInteger, nullable=False),
    )
    op.create_index("ix_scores_documents_day", "scores_documents", ["agency", "day"])
    op.create_table(
        "scores_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scores_meta")
    op.drop_index("ix_scores_documents_day", "scores_documents")
    op.drop_table("scores_documents")
    op.drop_table("scores_day_counts")
    op.drop_index("ix_scores_dossiers_open", "scores_dossiers")
    op.drop_index("ix_scores_dossiers_end", "scores_dossiers")
    op.drop_index("ix_scores_dossiers_reception", "scores_dossiers")
    op.drop_table("scores_dossiers")
