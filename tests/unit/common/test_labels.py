"""The bounded agency label: the first agencies keep their code, the rest share one value."""

from __future__ import annotations

from services.common.labels import AgencyLabels


def test_agency_labels_are_bounded() -> None:
    labels = AgencyLabels(2)
    assert [labels(a) for a in ("A", "B", "C", "A", None)] == ["A", "B", "other", "A", "unknown"]
