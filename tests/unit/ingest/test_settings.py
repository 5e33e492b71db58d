"""Ingest's settings types: the agency list read from one environment variable."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ingest.settings import AgencyList, parse_agency_list


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "000.00.00.G22, 000.00.10.H29,", {"000.00.00.G22", "000.00.10.H29"}, id="commas"
        ),
        pytest.param("", set(), id="empty"),
        pytest.param(None, set(), id="unset"),
        pytest.param(["a", " b "], {"a", "b"}, id="list"),
    ],
)
def test_parse_agency_list(value: object, expected: set[str]) -> None:
    assert parse_agency_list(value) == expected


def test_agency_list_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="GOVSYNC_")
        own_agencies: AgencyList = frozenset()

    monkeypatch.setenv("GOVSYNC_OWN_AGENCIES", "000.00.00.G22,000.00.10.H29")
    assert Settings().own_agencies == {"000.00.00.G22", "000.00.10.H29"}
