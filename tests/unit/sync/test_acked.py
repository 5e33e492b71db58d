"""What one more accepted record makes of a dossier's acknowledged state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.dossier import DossierRecord, DossierStatus, RecordKind, Timeliness
from schemas.facts import DossierFacts, SyncAck
from services.sync.acked import AckLedger, AckState, advance

St = DossierStatus

AT = datetime(2025, 7, 1, tzinfo=UTC)
A1, A2 = "000.00.10.H29", "000.00.22.H26"


def rec(revision: int, status: int, agency: str = A1) -> DossierRecord:
    return DossierRecord(
        dossier_code="HS-1",
        agency=agency,
        revision=revision,
        kind=RecordKind.DOSSIER,
        status=DossierStatus(status),
        timeliness=Timeliness.IN_PROGRESS,
        source="s",
        event_id=f"e{revision}",
        event_time=AT,
        ingested_at=AT,
        facts=DossierFacts(agency=agency, status=DossierStatus(status)),
    )


@pytest.mark.parametrize(
    ("before", "record", "header", "expected"),
    [
        pytest.param(None, rec(1, 1), True, AckState(1, True, False, St(1), A1), id="submitted"),
        pytest.param(None, rec(1, 2), True, AckState(1, True, True, St(2), A1), id="received"),
        pytest.param(None, rec(1, 3), True, AckState(1, True, False, St(3), A1), id="refused"),
        pytest.param(None, rec(1, 2), False, AckState(1, False, True, St(2), A1), id="ndxp"),
        pytest.param(
            AckState(1, True, False, St(1), A1), rec(2, 4), False,
            AckState(2, True, True, St(4), A1), id="step-after-header",
        ),
        pytest.param(
            AckState(3, True, True, St(9), A1), rec(4, 10, A2), True,
            AckState(4, True, True, St(10), A2), id="recoded-agency-moves",
        ),
        pytest.param(
            AckState(3, True, False, St(1), A1), rec(2, 2, A2), True,
            AckState(3, True, True, St(1), A1), id="older-step-adds-received-only",
        ),
    ],
)  # fmt: skip
def test_advance(
    before: AckState | None, record: DossierRecord, header: bool, expected: AckState
) -> None:
    assert advance(before, record, header=header) == expected


@pytest.mark.parametrize(
    ("state", "synced"),
    [
        pytest.param(AckState(1, True, True), True, id="held-received"),
        pytest.param(AckState(1, False, True), False, id="received-without-header"),
        pytest.param(AckState(1, True, False), False, id="held-not-received"),
    ],
)
def test_only_a_held_received_dossier_is_synced(state: AckState, synced: bool) -> None:
    assert state.synced is synced


def test_the_acked_value_round_trips_and_old_values_read_without_a_header() -> None:
    state = AckState(5, True, True, DossierStatus.FINISHED, A1)
    assert AckState.of(SyncAck.model_validate_json(state.to_ack(AT).model_dump_json())) == state
    old = SyncAck.model_validate_json(b'{"revision": 2, "received": true, "at": null}')
    assert AckState.of(old) == AckState(2, False, True, None, None)


def test_ledger_drop_returns_what_the_partition_held() -> None:
    ledger = AckLedger()
    ledger.put(0, "A", AckState(1))
    ledger.put(1, "B", AckState(2))
    assert ledger.drop(0) == {"A": AckState(1)}
    assert (ledger.get(0, "A"), ledger.get(1, "B")) == (None, AckState(2))
    assert list(ledger) == [AckState(2)]
