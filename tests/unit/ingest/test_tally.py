"""The exact figures' bookkeeping: shares per partition, moved, dropped, summed."""

from __future__ import annotations

from services.ingest.tally import Tally

A = ("A", "3.3", "denominator")
A_ONLINE = ("A", "3.3", "numerator")
B = ("B", "3.3", "denominator")


def test_a_change_moves_one_item_between_series() -> None:
    tally = Tally()
    tally.add(0, [A])
    tally.add(1, [A])
    assert tally.move(0, [A], [A, A_ONLINE]) == {A_ONLINE}
    assert (tally.total(A), tally.total(A_ONLINE)) == (2, 1)
    # Re-coded: the dossier moves from agency A to B wholly.
    assert tally.move(0, [A, A_ONLINE], [B]) == {A, A_ONLINE, B}
    assert (tally.total(A), tally.total(A_ONLINE), tally.total(B)) == (1, 0, 1)


def test_a_revoked_partition_takes_its_share_along() -> None:
    tally = Tally()
    tally.add(0, [A, A_ONLINE])
    tally.add(1, [A])
    assert tally.drop(0) == {A, A_ONLINE}
    assert (tally.total(A), tally.total(A_ONLINE)) == (1, 0)
    assert tally.drop(7) == set()
