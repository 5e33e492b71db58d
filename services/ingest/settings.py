"""Settings of the ingest service, read once from `GOVSYNC_*` environment variables (and files),
and the settings types its parts receive (`EdxmlLimits`, `AgencyList`)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import NoDecode

from services.common import topics
from services.common.settings import PipelineSettings

# One source system's words for the portal's status codes (DOMAIN.md §1); others are configured.
DEFAULT_STATUS_VOCABULARY: dict[str, int] = {
    "receiving": 1,
    "new": 2,
    "denied": 3,
    "processing": 4,
    "waiting": 5,
    "paying": 6,
    "cancelled": 7,
    "unresolved": 8,
    "releasing": 9,
    "done": 10,
}
DEFAULT_CHANNEL_VOCABULARY: dict[str, int] = {
    "in_person": 1,
    "truc_tiep": 1,
    "direct": 1,
    "online": 2,
    "truc_tuyen": 2,
    "postal": 3,
    "buu_chinh": 3,
}


class EdxmlLimits(BaseModel):
    """Bounds on what one edXML package may cost; nests in the ingest settings as `edxml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_depth: int = Field(default=48, ge=8, le=250)
    """libxml2 stops at 256 levels on its own; ours is lower and configurable."""
    max_attachment_bytes: int = Field(default=7 * 1024 * 1024, ge=1)
    """Decoded size. Without huge_tree libxml2 caps a text node at 10 MB: about 7.1 MiB decoded."""
    max_attachments: int = Field(default=200, ge=0)
    max_subject_chars: int = Field(default=2000, ge=1)


def parse_agency_list(value: object) -> frozenset[str]:
    """`GOVSYNC_OWN_AGENCIES`: comma-separated OrganIds (spaces ignored), as a set."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(part).strip() for part in value if str(part).strip())
    raise ValueError("expected a comma-separated list of agency codes")


AgencyList = Annotated[frozenset[str], NoDecode, BeforeValidator(parse_agency_list)]
"""Settings field type for `own_agencies`: `NoDecode` stops pydantic-settings reading it as JSON."""


class IngestSettings(PipelineSettings):
    """Everything the ingest process needs; built once in `main()` and passed down.

    `kafka`, `topic_dlq`, `topic_dossier_normalized` and the consumer's session and heartbeat
    come from `PipelineSettings`.
    """

    http_host: str = "0.0.0.0"  # noqa: S104 - a pod listens on its own interface
    http_port: int = Field(default=8081, ge=1, le=65535)
    log_level: str = "INFO"

    topic_dossier: str = topics.DOSSIER
    topic_state: str = topics.INGEST_STATE
    """Compacted, keyed by dossier code, same partition count as `topic_dossier`."""
    topic_edocument: str = topics.EDOCUMENT
    topic_edocument_normalized: str = topics.EDOCUMENT_NORMALIZED
    topic_edocument_ledger: str = topics.EDOCUMENT_LEDGER
    """Compacted, keyed by document id, same partition count as `topic_edocument`."""
    consumer_group: str = topics.INGEST_GROUP

    create_topics: bool = True
    """Create missing topics at start (local runs); production clusters usually pre-create them."""
    topic_partitions: int = Field(default=topics.DEFAULT_PARTITIONS, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    # Pydantic copies mutable defaults per instance; RUF012 cannot see that this class is a
    # pydantic model when its base is imported (astral-sh/ruff#5639).
    status_vocabularies: dict[str, dict[str, int]] = {"*": DEFAULT_STATUS_VOCABULARY}  # noqa: RUF012
    """Per CloudEvents source, its words for the status codes; `*` applies to every source."""
    channel_vocabularies: dict[str, dict[str, int]] = {"*": DEFAULT_CHANNEL_VOCABULARY}  # noqa: RUF012
    legal_time_limits_days: dict[str, int] = {}  # noqa: RUF012
    """Procedure code to its legal time limit in days, for dossiers that carry no due date; with
    `legal_time_limits_file`, the file's limits and then these (which win)."""
    legal_time_limits_file: Path | None = None
    """A procedure catalogue export: CSV rows `procedure_code,days` (a header row is skipped) or
    a JSON object of procedure code to days. Read once at start; an unreadable file stops it."""
    max_future_skew_seconds: float = Field(default=300.0, ge=0)
    """How far ahead of the clock an event's time may be (a source's clock running fast); a
    CloudEvent `time` or a `ThoiDiemXuLy` further ahead is a dead letter."""

    api_keys: dict[str, list[str]] = {}  # noqa: RUF012
    """SHA-256 (hex) of each caller's API key to the CloudEvents sources it may publish."""
    admin_token: SecretStr | None = None
    auth_failure_limit: int = Field(default=10, ge=1)
    """Failed credentials from one client address before it is refused for the window."""
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)

    max_event_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_request_bytes: int = Field(default=24 * 1024 * 1024, ge=1024)
    """An HTTP request body; large enough for one edXML package with its attachments."""
    max_batch_events: int = Field(default=500, ge=1)
    max_text_chars: int = Field(default=4000, ge=100)
    agency_label_limit: int = Field(default=200, ge=1)
    """Distinct agency label values per metric; the rest are counted as `other`."""
    finished_retention: timedelta = timedelta(days=30)
    """How long a finished dossier stays in memory after govsync last changed it (govsync's
    own clock, never the source's time); then it moves to the archive."""
    archive_retention_days: int = Field(default=400, ge=1)
    """How long an evicted dossier's archive entry (revision, watermarks, facts: a few hundred
    bytes) is kept after govsync last changed it; a dossier that comes back within it continues
    its revisions and counts, one that comes back later starts again at revision 1."""
    eviction_interval_seconds: float = Field(default=60.0, gt=0)
    """How often the worker looks for finished dossiers past their retention."""
    commit_interval_seconds: float = Field(default=0.0, ge=0)
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)

    trust_bundle: Path | None = None
    """PEM file of the CA certificates that make a signature `verified`; unset: none is."""
    own_agencies: AgencyList = frozenset()
    """Comma-separated agency codes whose documents are outgoing."""
    edxml: EdxmlLimits = EdxmlLimits()
    """Bounds on one edXML package (`GOVSYNC_EDXML_MAX_BYTES`, `..._MAX_DEPTH`, ...)."""

    @model_validator(mode="before")
    @classmethod
    def _limits_from_file(cls, data: Any) -> Any:
        """The file's legal limits under those set directly, so the field holds what applies."""
        if not isinstance(data, dict) or not data.get("legal_time_limits_file"):
            return data
        from_file = load_legal_time_limits(Path(data["legal_time_limits_file"]))
        given = data.get("legal_time_limits_days") or {}
        if isinstance(given, str):
            given = json.loads(given)
        return {**data, "legal_time_limits_days": {**from_file, **given}}


def load_legal_time_limits(path: Path) -> dict[str, int]:
    """Procedure code to legal time limit in days, from a CSV (`procedure_code,days`, an
    optional header row, `#` comments) or a JSON object; a `ValueError` says where it is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"legal time limits file {path} cannot be read: {exc.strerror}") from None
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected an object of procedure code to days")
        rows = [(str(code), value, n) for n, (code, value) in enumerate(loaded.items(), 1)]
    else:
        rows = [
            (row[0], row[1] if len(row) > 1 else "", n)
            for n, row in enumerate(csv.reader(io.StringIO(text)), 1)
            if row and row[0].strip() and not row[0].lstrip().startswith("#")
        ]
    limits: dict[str, int] = {}
    for code, value, n in rows:
        days = str(value).strip()
        if not days.isdecimal():
            if n == 1 and not limits:
                continue  # a header row
            raise ValueError(f"{path}: row {n}: the limit is not a whole number of days")
        limits[code.strip()] = int(days)
    return limits
