"""Exports the contracts as JSON Schema (`python -m schemas.export`) for vendors on any stack.

`tests/unit/schemas/test_export.py` fails when the files under `schemas/json/` drift from the
models, so the published contract is always the one the code enforces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.cloudevents import CloudEvent
from schemas.dossier import DossierEvent, DossierRecord, ProgressEvent
from schemas.facts import SyncAck

JSON_DIR = Path(__file__).parent / "json"

# File name -> model; inbound contracts by the portal's names, records by their own.
CONTRACTS: dict[str, type[BaseModel]] = {
    "cloudevent.schema.json": CloudEvent,
    "dossier-event.schema.json": DossierEvent,
    "dossier-progress-event.schema.json": ProgressEvent,
    "dossier-record.schema.json": DossierRecord,
    "sync-ack.schema.json": SyncAck,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://govsync.gov.vn/schemas/{model.__name__}.json",
        **schema,
    }
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[str, str]:
    """Every contract file's expected content, by file name."""
    return {name: render(model) for name, model in CONTRACTS.items()}


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (JSON_DIR / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
