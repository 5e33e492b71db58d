"""Ingest's settings types: the agency list read from one environment variable, the signer
bindings read as JSON."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.labels import AgencyList, parse_agency_list
from services.ingest.settings import IngestSettings


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


FINGERPRINT = "AB:" * 31 + "CD"


def test_signer_bindings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GOVSYNC_SIGNER_BINDINGS",
        json.dumps(
            {
                "000.00.00.G22": [
                    {"organisation": "UBND tỉnh Thử Nghiệm", "issuer_sha256": FINGERPRINT},
                    {"organisation_identifier": "MST:0101234567"},
                ]
            }
        ),
    )
    bindings = IngestSettings().signer_bindings
    assert [b.organisation_identifier for b in bindings["000.00.00.G22"]] == [
        None,
        "MST:0101234567",
    ]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"G22": [{"organisation": "x"}]}, id="not-an-agency-code"),
        pytest.param({"000.00.00.G22": []}, id="no-binding"),
        pytest.param({"000.00.00.G22": [{}]}, id="no-criterion"),
        pytest.param({"000.00.00.G22": [{"issuer_sha256": "abc"}]}, id="not-a-fingerprint"),
        pytest.param({"000.00.00.G22": [{"organization": "x"}]}, id="unknown-field"),
    ],
)
def test_bad_signer_bindings_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        IngestSettings(signer_bindings=value)  # type: ignore[arg-type]
