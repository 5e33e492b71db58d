"""What the reconciliation page shows for one agency and period (blocking reads): the sweeps,
the latest one's findings split into what differs, what was re-sent and what remains, and the
latest per-score check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from services.common.dates import from_ms
from services.reconcile.compare import State
from services.reconcile.store import Finding, ReconcileStore, Resend, ScoreCheck, Sweep

STATE_NAMES = {
    "matched": "Khớp",
    "missing": "Cổng không có",
    "different": "Khác trạng thái hoặc ngày",
    "unchecked": "Cổng không trả lời",
}
RESEND_NAMES = {
    Resend.SENT: "Đã gửi lại",
    Resend.IN_FLIGHT: "Đang đồng bộ (chưa gửi lại)",
    Resend.NO_RECORD: "Không còn bản ghi để gửi lại",
    Resend.OFF: "Không gửi lại (tắt)",
}


@dataclass(frozen=True, slots=True)
class ReconcileView:
    agency: str
    period: str
    sweeps: list[Sweep]
    latest: Sweep | None
    differs: list[Finding]
    resent: list[Finding]
    remains: list[Finding]
    scores: ScoreCheck | None

    @staticmethod
    def when(ms: int | None) -> datetime | None:
        return None if ms is None else from_ms(ms)


def reconcile_view(engine: Engine, agency: str, period: str) -> ReconcileView:
    store = ReconcileStore(engine)
    sweeps = store.history(agency, period)
    latest = sweeps[0] if sweeps else None
    findings = store.findings(latest.id) if latest is not None else []
    return ReconcileView(
        agency=agency,
        period=period,
        sweeps=sweeps,
        latest=latest,
        differs=findings,
        resent=[f for f in findings if f.resend == Resend.SENT],
        remains=[f for f in findings if f.now != State.MATCHED],
        scores=store.latest_scores(agency, period),
    )
