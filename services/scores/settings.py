"""Configuration of the scores service: one frozen `ScoresSettings`, read from `GOVSYNC_*`.

The service's own section is `GOVSYNC_SCORES_*` (`GOVSYNC_SCORES_DATABASE_URL`, ...); the topics
and the broker are the same variables every service reads.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.common import topics
from services.common.settings import PipelineSettings
from services.reconcile.options import ReconcileOptions
from services.sync.settings import PortalSettings

DEFAULT_DATABASE_URL = "sqlite:///govsync-scores.sqlite3"


class ScoresOptions(BaseModel):
    """`GOVSYNC_SCORES_*`."""

    model_config = ConfigDict(frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    """A SQLite file (embedded default) or `postgresql://user@host/db` (psycopg 3)."""
    database_password: SecretStr | None = None
    """Replaces the URL's password (from a Kubernetes Secret: `secrets_dir`)."""
    migrate_on_start: bool = True
    """Bring the schema up to date at start (else `govsync scores migrate` must have)."""
    agency_crosswalk: Path | None = None
    """CSV `old_code,new_code,valid_from[,valid_to]`: the 2025 re-coding (DOMAIN.md §3)."""
    agencies: frozenset[str] = frozenset()
    """The agencies that exist now (served): codes seen that are neither these nor in the
    crosswalk are listed as unknown; these and `GOVSYNC_LABEL_AGENCIES` have score gauges of
    their own, every other agency is `other`."""
    procedure_catalogue: Path | None = None
    """CSV `procedure_code,paper_result[,fee_bearing,legal_limit_days]` (4.1, 3.3, 4.2, 3.6)."""
    batch_max_records: int = Field(default=10_000, ge=1, le=100_000)
    """Records fetched and applied per database transaction at most. Larger batches catch more
    revisions of one dossier in one fetch (only the newest is decoded and written) and spread
    each statement's cost over more rows; two batches are in memory at once."""
    fetch_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    """Bytes one fetch from the broker may bring (all partitions)."""
    partition_fetch_max_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    """Bytes one fetch may bring per partition."""
    metrics_refresh_seconds: float = Field(default=15.0, gt=0)
    """How often the score gauges of the current month, quarter and year are recomputed."""
    page_size: int = Field(default=50, ge=1, le=1000)
    export_max_rows: int = Field(default=100_000, ge=1)
    """Rows of a CSV or Excel download at most."""


class ScoresSettings(PipelineSettings):
    """Everything one `govsync scores` process needs.

    `kafka`, `topic_dlq`, `topic_dossier_normalized` and the consumer's session and heartbeat
    come from `PipelineSettings`.
    """

    scores: ScoresOptions = ScoresOptions()
    reconcile: ReconcileOptions = ReconcileOptions()
    """The reconciliation's sweeps (`GOVSYNC_RECONCILE_*`, services/reconcile/)."""
    portal: PortalSettings = PortalSettings()
    """The portal the sweeps look dossiers up on: the same `GOVSYNC_PORTAL_*` as the sync's."""
    topic_edocument_normalized: str = topics.EDOCUMENT_NORMALIZED
    acked_topic_template: str = topics.SYNC_ACKED_TEMPLATE
    consumer_group: str = topics.SCORES_GROUP
    http_host: str = "0.0.0.0"  # noqa: S104 - the pod's probes and Prometheus come from outside
    http_port: int = Field(default=8084, ge=0, le=65535)
    shutdown_budget_seconds: float = Field(default=20.0, gt=0)
    log_level: str = "INFO"

    @property
    def acked_topic(self) -> str:
        """The portal's acknowledgements (1.4: the portal holds the dossier)."""
        return self.acked_topic_template.format(target="portal")
