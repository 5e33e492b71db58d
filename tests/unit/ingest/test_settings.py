"""Ingest's settings types: the agency list read from one environment variable, the signer
bindings read as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.labels import AgencyList, parse_agency_list
from services.ingest.settings import IngestSettings, load_legal_time_limits


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


# --- legal time limits from a procedure catalogue export ------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "limits.csv",
            "procedure_code,days\n1.001612,15\n2.000908, 3\n\n# retired\n",
            {"1.001612": 15, "2.000908": 3},
            id="csv-with-header",
        ),
        pytest.param("limits.csv", "1.001612,15\n", {"1.001612": 15}, id="csv-no-header"),
        pytest.param(
            "limits.json", '{"1.001612": 15, "1.004227": "5"}', {"1.001612": 15, "1.004227": 5},
            id="json",
        ),
    ],
)  # fmt: skip
def test_legal_time_limits_from_a_file(
    tmp_path: Path, name: str, text: str, expected: dict[str, int]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert load_legal_time_limits(path) == expected


def test_limits_set_directly_win_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "limits.csv"
    path.write_text("A,10\nB,20\n", encoding="utf-8")
    monkeypatch.setenv("GOVSYNC_LEGAL_TIME_LIMITS_FILE", str(path))
    monkeypatch.setenv("GOVSYNC_LEGAL_TIME_LIMITS_DAYS", '{"B": 2}')
    assert IngestSettings().legal_time_limits_days == {"A": 10, "B": 2}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("A,10\nB,ten\n", "row 2", id="not-a-number"),
        pytest.param("[1, 2]", "expected an object", id="json-not-an-object"),
    ],
)
def test_a_bad_limits_file_stops_the_service(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "limits.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=reason):
        IngestSettings(legal_time_limits_file=path)
