"""The published JSON Schema files match the models, and the examples mean what they say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schemas.cloudevents import EventType
from schemas.dossier import DossierEvent, ProgressEvent
from schemas.export import CONTRACTS, JSON_DIR, rendered
from services.ingest.dossiers.decode import validate_data
from services.ingest.dossiers.normalise import (
    Vocabularies,
    normalise_dossier,
    normalise_progress,
)
from services.ingest.envelope import from_structured
from services.ingest.errors import IngestError
from services.ingest.settings import DEFAULT_CHANNEL_VOCABULARY, DEFAULT_STATUS_VOCABULARY

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
VOCAB = Vocabularies(status=DEFAULT_STATUS_VOCABULARY, channel=DEFAULT_CHANNEL_VOCABULARY)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_exported_schema_matches_the_model(name: str) -> None:
    path = JSON_DIR / name
    assert path.exists(), f"{name} is missing: run `make schemas`"
    assert path.read_text(encoding="utf-8") == rendered()[name], (
        f"{name} drifted from its model: run `make schemas` and commit the result"
    )


def test_no_stray_schema_files() -> None:
    assert {p.name for p in JSON_DIR.glob("*.json")} == set(CONTRACTS)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def accept(event: dict[str, Any]) -> None:
    """What ingest does with an example, short of the broker."""
    envelope = from_structured(event)
    if envelope.type == EventType.DOSSIER:
        normalise_dossier(
            validate_data(envelope.data, DossierEvent),
            vocabularies=VOCAB,
            agency_hint=envelope.agency,
            max_chars=4000,
        )
    elif envelope.type == EventType.PROGRESS:
        normalise_progress(
            validate_data(envelope.data, ProgressEvent),
            vocabularies=VOCAB,
            agency_hint=envelope.agency,
            max_chars=4000,
        )


@pytest.mark.parametrize("path", sorted((EXAMPLES / "valid").glob("*.json")), ids=lambda p: p.stem)
def test_valid_examples_are_accepted(path: Path) -> None:
    event = load(path)
    jsonschema.validate(event, json.loads((JSON_DIR / "cloudevent.schema.json").read_text()))
    accept(event)


# Dialect examples (field names in other cases) are canonicalised before validation.
PORTAL_CASE = [p for p in sorted((EXAMPLES / "valid").glob("*.json")) if "dialect" not in p.stem]


@pytest.mark.parametrize("path", PORTAL_CASE, ids=lambda p: p.stem)
def test_valid_examples_in_portal_case_match_the_data_schema(path: Path) -> None:
    event = load(path)
    data = event["data"]
    schema_file = (
        "dossier-progress-event.schema.json"
        if event["type"].endswith("progress.v1")
        else "dossier-event.schema.json"
    )
    jsonschema.validate(data, json.loads((JSON_DIR / schema_file).read_text()))


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "invalid").glob("*.json")), ids=lambda p: p.stem
)
def test_invalid_examples_are_refused(path: Path) -> None:
    with pytest.raises(IngestError):
        accept(load(path))
