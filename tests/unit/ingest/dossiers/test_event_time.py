"""Event time: when the change happened at the source, never a due date or any future date.

Issue 12, finding 1: a bare DongBoHoSoMC item took the latest of all its dates as its time,
the due date `NgayHenTra` included, so the dossier's watermark sat in the future.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.dossier import DossierHeader, DossierStatus
from services.common.dates import LOCAL_TZ, to_ms
from services.ingest.dossiers.decide import Policy
from services.ingest.dossiers.eventtime import header_time, step_time
from services.ingest.dossiers.pipeline import DossierPipeline, Result, VocabularyBook
from services.ingest.dossiers.state import DossierState
from services.ingest.envelope import decode_record
from services.ingest.errors import ContractError, EventRefusedError, describe
from services.ingest.outcome import Outcome
from services.ingest.settings import DEFAULT_CHANNEL_VOCABULARY, DEFAULT_STATUS_VOCABULARY

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ)
AGENCY = "000.00.00.G22"


def portal(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S")


def pipeline() -> DossierPipeline:
    return DossierPipeline(
        vocabularies=VocabularyBook(
            {"*": DEFAULT_STATUS_VOCABULARY}, {"*": DEFAULT_CHANNEL_VOCABULARY}
        ),
        policy=Policy(),
        max_text_chars=1000,
    )


class Feed:
    """Records through the pure pipeline as the worker feeds them, one dossier's state kept."""

    def __init__(self) -> None:
        self.pipeline = pipeline()
        self.states: dict[str, bytes] = {}
        self.results: list[Result] = []

    def bare(self, item: dict[str, Any], *, now: datetime = NOW) -> Result:
        return self._handle(orjson.dumps(item), now)

    def event(
        self, kind: str, data: dict[str, Any], *, now: datetime = NOW, **attrs: Any
    ) -> Result:
        body = {
            "specversion": "1.0",
            "id": attrs.pop("id", f"e-{len(self.results)}"),
            "source": "urn:src",
            "type": f"vn.gov.dvc.{kind}.v1",
            "agency": AGENCY,
            "data": data,
            **attrs,
        }
        return self._handle(orjson.dumps(body), now)

    def _handle(self, value: bytes, now: datetime) -> Result:
        """As the worker does: a record that does not decode is a dead letter too."""
        try:
            envelope = decode_record(value, [], topic="t", max_bytes=100_000)
        except EventRefusedError as exc:
            result = Result(Outcome.DEAD_LETTERED, "unknown", error=exc)
        else:
            result = self.pipeline.handle(envelope, states=self.states, now=now)
        self.results.append(result)
        return result

    @property
    def status(self) -> int:
        return DossierState.from_bytes(self.states["H-1"]).status


def item(status: int, **dates: datetime) -> dict[str, Any]:
    return {
        "MaHoSo": "H-1",
        "MaDonVi": AGENCY,
        "TrangThaiHoSo": status,
        **{name: portal(value) for name, value in dates.items()},
    }


def test_a_bare_item_with_a_future_due_date_does_not_freeze_the_status() -> None:
    feed = Feed()
    received = NOW - timedelta(days=3)
    due = NOW + timedelta(days=10)
    first = feed.bare(item(2, NgayTiepNhan=received, NgayHenTra=due))
    assert first.outcome is Outcome.ACCEPTED
    step = feed.event(
        "dossier.progress",
        {"MaHoSo": "H-1", "ThoiDiemXuLy": portal(NOW - timedelta(hours=1)), "TrangThai": 9},
    )
    assert step.outcome is Outcome.ACCEPTED
    assert feed.status == DossierStatus.FINISHED


def test_a_bare_snapshot_with_a_corrected_earlier_due_date_is_not_stale() -> None:
    feed = Feed()
    received = NOW - timedelta(days=3)
    feed.bare(item(2, NgayTiepNhan=received, NgayHenTra=NOW + timedelta(days=10)))
    finished = feed.bare(
        item(
            9,
            NgayTiepNhan=received,
            NgayHenTra=NOW + timedelta(days=5),
            NgayKetThucXuLy=NOW - timedelta(hours=2),
        )
    )
    assert finished.outcome is Outcome.ACCEPTED
    assert feed.status == DossierStatus.FINISHED


@pytest.mark.parametrize(
    "time",
    [
        pytest.param("2026-11-20T09:00:00", id="no-offset"),
        pytest.param((NOW + timedelta(hours=1)).isoformat(), id="an-hour-ahead"),
    ],
)
def test_a_cloudevent_time_without_offset_or_ahead_of_the_clock_is_a_dead_letter(
    time: str,
) -> None:
    feed = Feed()
    result = feed.event("dossier", item(2), time=time)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert isinstance(result.error, ContractError)
    assert "time" in describe(result.error)
    assert feed.states == {}


def test_a_cloudevent_time_within_the_skew_is_kept() -> None:
    feed = Feed()
    ahead = NOW + timedelta(seconds=30)
    result = feed.event("dossier", item(2), time=ahead.isoformat())
    assert result.outcome is Outcome.ACCEPTED
    assert result.decision is not None
    assert result.decision.record is not None
    assert result.decision.record.event_time == ahead


# --- the rule, as a table -----------------------------------------------------------------------

H = timedelta(hours=1)
RECORD = NOW - 5 * H
SKEW = timedelta(seconds=300)


@pytest.mark.parametrize(
    ("status", "dates", "envelope", "record", "expected", "basis"),
    [
        pytest.param(2, {"received_at": -48}, -1, None, NOW - H, "cloudevent", id="cloudevent"),
        pytest.param(1, {"submitted_at": -50}, None, None, NOW - 50 * H, "status_date", id="1"),
        pytest.param(
            2, {"submitted_at": -50, "received_at": -48, "due_at": 200}, None, None,
            NOW - 48 * H, "status_date", id="2-reception-not-due",
        ),
        pytest.param(
            3, {"received_at": -48, "rejected_at": -40}, None, None,
            NOW - 40 * H, "status_date", id="3-refusal",
        ),
        pytest.param(
            9, {"received_at": -48, "finished_at": -2, "due_at": 1}, None, None,
            NOW - 2 * H, "status_date", id="9-finish",
        ),
        pytest.param(
            10, {"finished_at": -2, "returned_at": -1}, None, None,
            NOW - H, "status_date", id="10-return",
        ),
        pytest.param(
            4, {"submitted_at": -50, "received_at": -48, "due_at": 200}, None, None,
            NOW - 48 * H, "latest_date", id="4-latest-past-date",
        ),
        pytest.param(
            9, {"received_at": -48, "finished_at": 3}, None, None,
            NOW - 48 * H, "latest_date", id="9-future-finish-skipped",
        ),
        pytest.param(
            5, {"due_at": 10}, None, RECORD, RECORD, "record", id="only-a-due-date: record time",
        ),
        pytest.param(5, {}, None, NOW + H, NOW, "clock", id="future-record-time: clock"),
        pytest.param(5, {}, None, None, NOW, "clock", id="nothing: clock"),
    ],
)  # fmt: skip
def test_header_time(
    status: int,
    dates: dict[str, int],
    envelope: int | None,
    record: datetime | None,
    expected: datetime,
    basis: str,
) -> None:
    header = DossierHeader.model_validate({name: NOW + h * H for name, h in dates.items()})
    found = header_time(
        header,
        DossierStatus(status),
        envelope_time=None if envelope is None else NOW + envelope * H,
        record_time=record,
        now=NOW,
        max_skew=SKEW,
    )
    assert (found.at, found.basis.value) == (expected, basis)


def test_a_step_dated_ahead_of_the_clock_is_refused() -> None:
    with pytest.raises(ContractError, match="ThoiDiemXuLy"):
        step_time(NOW + H, envelope_time=None, now=NOW, max_skew=SKEW)
    assert step_time(NOW + SKEW, envelope_time=None, now=NOW, max_skew=SKEW).at == NOW + SKEW


def test_a_bare_item_falls_back_to_the_broker_timestamp() -> None:
    feed = Feed()
    envelope = decode_record(
        orjson.dumps(item(4)), [], topic="t", max_bytes=1000, timestamp_ms=to_ms(RECORD)
    )
    result = feed.pipeline.handle(envelope, states=feed.states, now=NOW)
    assert result.decision is not None
    assert result.decision.record is not None
    assert result.decision.record.event_time == RECORD
