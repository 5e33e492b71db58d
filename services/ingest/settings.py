"""Settings of the ingest service, read once from `GOVSYNC_*` environment variables (and files),
and the settings types its parts receive (`EdxmlLimits`, `SignerBinding`)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from schemas.edocument import is_regular_organ_id
from services.common import topics
from services.common.labels import AgencyList as AgencyList  # re-exported for importers
from services.common.labels import parse_agency_list as parse_agency_list
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

    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """A whole e-document event (the Kafka record or one event of a request, base64 included).
    Checking a package costs some 10 times its size in memory (signxml copies the tree and
    canonicalises it): the chart's 512 MiB pod holds this default with a margin
    (docs/security.md)."""
    max_depth: int = Field(default=48, ge=8, le=250)
    """libxml2 stops at 256 levels on its own; ours is lower and configurable."""
    max_attachment_bytes: int = Field(default=7 * 1024 * 1024, ge=1)
    """Decoded size. Without huge_tree libxml2 caps a text node at 10 MB: about 7.1 MiB decoded."""
    max_attachments: int = Field(default=200, ge=0)
    max_subject_chars: int = Field(default=2000, ge=1)
    max_nodes: int = Field(default=20_000, ge=100)
    """Elements and attributes, counted as they are parsed: libxml2 spends some 120 bytes on each,
    and a real package has a few hundred; millions of empty elements cost gigabytes."""
    concurrency: int = Field(default=1, ge=1)
    """Packages parsed and verified at once in the process, the intake's and the worker's
    together, on as many threads: the CPU-bound checks gain little from more, and each package
    holds some 10 times its size while it is checked."""
    max_pdfs: int = Field(default=20, ge=0)
    """PDF attachments whose signatures one package may ask to verify (each costs 10-60 ms of
    CPU); a package with more is refused."""


class SignerBinding(BaseModel):
    """Who may sign for an agency: every criterion given must hold, at least one is given.

    `organisation` is the subject's O as the CA writes it (compared after NFC, case folding and
    collapsing spaces); `organisation_identifier` a subject organizationIdentifier (2.5.4.97) or
    UID value, exactly; `issuer_sha256` the SHA-256 fingerprint (hex, colons allowed) of the CA
    certificate that issued the signer's. An issuer alone binds everything that CA issues: right
    for a CA that serves this one agency, too wide for a CA that serves many.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    organisation: str | None = Field(default=None, min_length=1, max_length=500)
    organisation_identifier: str | None = Field(default=None, min_length=1, max_length=200)
    issuer_sha256: str | None = Field(
        default=None, pattern=r"^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$"
    )

    @model_validator(mode="after")
    def _one_criterion(self) -> SignerBinding:
        if (
            self.organisation is None
            and self.organisation_identifier is None
            and self.issuer_sha256 is None
        ):
            raise ValueError(
                "a signer binding needs organisation, organisation_identifier or issuer_sha256"
            )
        return self


def _check_binding_codes(
    value: dict[str, tuple[SignerBinding, ...]],
) -> dict[str, tuple[SignerBinding, ...]]:
    for code, bindings in value.items():
        if not is_regular_organ_id(code):
            raise ValueError("signer bindings are keyed by agency codes such as 000.00.00.G22")
        if not bindings:
            raise ValueError("an agency in the signer bindings needs at least one binding")
    return value


SignerBindingMap = Annotated[
    dict[str, tuple[SignerBinding, ...]], AfterValidator(_check_binding_codes)
]
"""`GOVSYNC_SIGNER_BINDINGS` (JSON): agency code to the bindings any one of which suffices."""


class DvcqgAccount(BaseModel):
    """One source system's login on the portal-compatible intake (`govsync dvcqg-account`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    password_hash: str = Field(pattern=r"^scrypt\$")
    """`scrypt$n$r$p$salt$hash` (base64); the password itself is never configured."""
    agencies: frozenset[str] = Field(min_length=1)
    """The agency codes (`madonvi`) this source may write and look up."""
    source: str | None = Field(default=None, min_length=1, max_length=1024)
    """CloudEvents `source` of its events; unset: `urn:govsync:dvcqg:<username>`."""


class IngestSettings(PipelineSettings):
    """Everything the ingest process needs; built once in `main()` and passed down.

    `kafka`, `topic_dlq`, `topic_dossier`, `topic_edocument`, `topic_dossier_normalized` and the
    consumer's session and heartbeat come from `PipelineSettings`.
    """

    http_host: str = "0.0.0.0"  # noqa: S104 - a pod listens on its own interface
    http_port: int = Field(default=8081, ge=1, le=65535)
    log_level: str = "INFO"

    topic_state: str = topics.INGEST_STATE
    """Compacted, keyed by dossier code, same partition count as `topic_dossier`."""
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
    source_agencies: dict[str, list[str]] = {}  # noqa: RUF012
    """CloudEvents source to the agency codes it may write (`MaDonVi`, the `agency` attribute, an
    edXML `From/OrganId`); a code listed for several sources may be written by each, but a dossier
    or document stays with its first source (`shared_sources`). A bare Kafka record's source is
    its topic. Empty: no binding and no owners, any source writes anything (warned)."""
    shared_sources: list[list[str]] = []  # noqa: RUF012
    """Groups of sources that may write each other's dossiers and documents (JSON, e.g.
    `[["urn:a", "urn:b"]]`); otherwise each stays with the source that first wrote it. Applies
    once `source_agencies` binds anything."""
    admin_token: SecretStr | None = None

    dvcqg_accounts: dict[str, DvcqgAccount] = {}  # noqa: RUF012
    """Logins of the portal-compatible intake (`/dvcqg`), by username; empty: nobody logs in."""
    dvcqg_session_secret: SecretStr | None = None
    """Signs the intake's session tokens; every replica needs the same one. Unset: a random one
    per process (sessions then end with the process and work on that replica only)."""
    dvcqg_session_ttl_seconds: float = Field(default=3600.0, gt=0)
    """How long a session token is honoured; adapters log in again when it is refused."""
    dvcqg_max_items: int = Field(default=500, ge=1)
    """Items in one DongBoHoSoMC or CapNhatTienDoHoSoMC call."""
    auth_failure_limit: int = Field(default=10, ge=1)
    """Failed credentials from one client address before it is refused for the window."""
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)

    max_event_bytes: int = Field(default=1024 * 1024, ge=1024)
    """A dossier event (a Kafka record, or one event of a request); e-documents have `edxml`'s."""
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """An HTTP request body, refused from its Content-Length or as it streams in."""
    max_json_values: int = Field(default=200_000, ge=1000)
    """JSON values (keys included) in one request body or Kafka record, counted before parsing:
    a body of empty objects costs 35 times its size once parsed."""
    max_batch_events: int = Field(default=500, ge=1)
    intake_concurrency: int = Field(default=2, ge=1)
    """HTTP intake requests read and checked at once; the rest wait their turn (after their
    credentials are checked), so the memory a burst of large requests takes stays bounded."""
    max_pdfs_per_request: int = Field(default=20, ge=0)
    """PDF signature checks one HTTP request may ask for, over all its packages (each package
    also has `edxml.max_pdfs`); more is 413: the caller sends smaller requests."""
    max_text_chars: int = Field(default=4000, ge=100)
    allow_internal_file_urls: bool = False
    """Let file links (`DuongDanTaiTepTin`, `DuongDanTepTinKetQua`) name internal, loopback or
    link-local hosts; they are sent to the portal as they are. Off: such a dossier is refused."""
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
    signer_bindings: SignerBindingMap = {}  # noqa: RUF012
    """Agency code to who may sign for it; a signer bound to no issuing agency is `untrusted`."""
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
