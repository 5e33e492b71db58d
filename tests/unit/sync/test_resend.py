"""Copies the reconciliation re-sent: delivered although acknowledged, not once the dossier moved
past the copy's `upto`, skipped by the other target's worker (the dispatcher with our fakes)."""

from __future__ import annotations

import pytest

from services.sync.acked import AckLedger, AckState
from services.sync.delivery import Work
from tests.unit.sync.test_delivery import make, rec, settle


@pytest.mark.parametrize(
    ("acked", "revision", "upto", "foreign", "delivered"),
    [
        pytest.param(3, 3, None, False, False, id="plain-copy-of-acked-is-stale"),
        pytest.param(3, 3, 3, False, True, id="resend-of-latest-delivered"),
        pytest.param(3, 1, 3, False, True, id="resend-of-older-record-delivered"),
        pytest.param(4, 3, 3, False, False, id="dossier-moved-on-since"),
        pytest.param(3, 3, 3, True, False, id="resend-for-another-target-skipped"),
        pytest.param(None, 1, 1, True, False, id="foreign-even-when-never-acked"),
    ],
)
async def test_resent_copies(
    acked: int | None, revision: int, upto: int | None, foreign: bool, delivered: bool
) -> None:
    ledger = AckLedger()
    if acked is not None:
        ledger.put(0, "A", AckState(acked, header=True, received=True))
    dispatcher, destination, outcomes = make(ledger=ledger)
    work = Work(0, 0, "A", rec("A", revision), resend_upto=upto, foreign=foreign)
    dispatcher.submit(work)
    await settle(dispatcher, 0, 1)
    assert bool(destination.sent) is delivered
    assert bool(outcomes.stale) is not delivered
    if delivered:
        state = ledger.get(0, "A")
        assert state is not None
        assert state.revision == max(acked or 0, revision)  # never moved backwards
