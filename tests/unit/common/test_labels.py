"""The agency label: configured, well-formed agencies keep their code, anything else is `other`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.labels import OTHER, UNKNOWN, AgencyLabels
from services.common.settings import PipelineSettings

SERVED = ("000.00.00.G22", "000.00.10.H29")


@pytest.mark.parametrize(
    ("agency", "label"),
    [
        pytest.param("000.00.00.G22", "000.00.00.G22", id="served"),
        pytest.param("000.00.99.H01", OTHER, id="well-formed-not-served"),
        pytest.param("Nguyen Van A 0912345678", OTHER, id="free-text"),
        pytest.param("000.00.00.g22", OTHER, id="lower-case"),
        pytest.param(None, UNKNOWN, id="missing"),
        pytest.param("", UNKNOWN, id="empty"),
    ],
)
def test_only_configured_agencies_are_labels(agency: str | None, label: str) -> None:
    assert AgencyLabels(SERVED)(agency) == label


def test_slots_are_never_filled_first_come() -> None:
    labels = AgencyLabels(SERVED)
    assert [labels(f"000.00.{n:02d}.H01") for n in range(300)] == [OTHER] * 300
    assert labels("000.00.10.H29") == "000.00.10.H29"


def test_a_malformed_configured_agency_is_no_label() -> None:
    assert AgencyLabels(["G22", "000.00.00.G22"]).agencies == {"000.00.00.G22"}


def test_label_agencies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVSYNC_LABEL_AGENCIES", "000.00.00.G22, 000.00.10.H29")
    assert PipelineSettings().label_agencies == set(SERVED)
    monkeypatch.setenv("GOVSYNC_LABEL_AGENCIES", "000.00.00.G22,Sở Nội vụ 0912345678")
    with pytest.raises(ValidationError) as refused:
        PipelineSettings()
    assert "0912345678" not in str(refused.value).split("input_value")[0]
