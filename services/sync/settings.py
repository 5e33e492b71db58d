"""Configuration of the sync service: one frozen `SyncSettings`, read from `GOVSYNC_*` variables."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.common import topics
from services.common.settings import PipelineSettings


class Target(StrEnum):
    PORTAL = "portal"
    NDXP = "ndxp"


DEFAULT_HTTP_PORTS = {Target.PORTAL: 8082, Target.NDXP: 8083}


class PortalSettings(BaseModel):
    """The Public Service Portal adapter (DOMAIN.md §1); `GOVSYNC_PORTAL_*`."""

    model_config = ConfigDict(frozen=True)

    url: str = ""
    """The adapter's base URL: https, unless `allow_http` (a local run); required."""
    auth_path: str = "/api/auth/login"
    integration_path: str = "/api/integration"
    share_path: str = "/api/share"
    username: str = "govsync"
    password: SecretStr = SecretStr("")
    dstcode: str = ""
    madonvi: str = Field(default="", description="Fallback agency code when a record has none.")
    batch_size: int = Field(default=50, ge=1, le=500)
    linger_ms: float = Field(default=20.0, ge=0)
    timeout_seconds: float = Field(default=15.0, gt=0)
    retryable_error_codes: frozenset[str] = frozenset({"-1", "429", "500", "502", "503", "504"})
    """`error_code` values that mean "try again later"."""
    session_error_codes: frozenset[str] = frozenset({"-2", "401"})
    """`error_code` values that mean the session was rejected: log in again once."""
    permanent_error_codes: frozenset[str] = frozenset({"3", "-3", "4", "400", "422"})
    """`error_code` values that mean the record was refused; unknown codes are treated the same."""


class NdxpSettings(BaseModel):
    """The national data exchange platform gateway (DOMAIN.md §4); `GOVSYNC_NDXP_*`."""

    model_config = ConfigDict(frozen=True)

    url: str = ""
    """The gateway's base URL: https, unless `allow_http` (a local run); required."""
    token_path: str = "/token"  # noqa: S105 - a URL path, not a secret
    status_path: str = "/dossier/v1/status"
    client_id: str = "govsync"
    client_secret: SecretStr = SecretStr("")
    token_margin_seconds: float = Field(default=30.0, ge=0)
    """Refresh the token this long before `expires_in` runs out."""
    timeout_seconds: float = Field(default=15.0, gt=0)


class DeliverySettings(BaseModel):
    """Concurrency, retries and back-pressure shared by both targets; `GOVSYNC_DELIVERY_*`."""

    model_config = ConfigDict(frozen=True)

    max_in_flight: int = Field(default=64, ge=1, le=4096)
    """Records being delivered at once (each dossier has at most one)."""
    max_buffered: int = Field(default=2000, ge=1)
    """Fetched but unfinished records beyond which the partitions are paused."""
    backoff_initial_seconds: float = Field(default=0.2, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    retry_after_max_seconds: float = Field(default=120.0, gt=0)
    breaker_failure_threshold: int = Field(default=10, ge=1)
    """Consecutive transient failures that open the circuit."""
    breaker_reset_seconds: float = Field(default=5.0, gt=0)
    """How long the circuit stays open before one probe is let through."""
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    revoke_drain_seconds: float = Field(default=5.0, ge=0)
    """On a rebalance, how long requests in flight may finish before they are abandoned."""
    step_wait_seconds: float = Field(default=300.0, gt=0)
    """Portal only: how long a progress step of a dossier the portal does not hold yet waits for
    the dossier's header before it is dead-lettered. Offsets are not committed past a waiting
    step, so this also bounds how far a commit can lag behind."""


class SyncSettings(PipelineSettings):
    """Everything one `govsync sync --target ...` process needs.

    `kafka`, `topic_dlq`, the input topics (`replay_topics`) and the consumer's session and
    heartbeat come from `PipelineSettings`.
    """

    portal: PortalSettings = PortalSettings()
    ndxp: NdxpSettings = NdxpSettings()
    delivery: DeliverySettings = DeliverySettings()

    acked_topic_template: str = topics.SYNC_ACKED_TEMPLATE
    """Compacted topic of acknowledged revisions per destination, keyed by dossier code."""
    group_prefix: str = topics.SYNC_GROUP_PREFIX
    replication_factor: int = Field(default=1, ge=1)
    consumer_fetch_max_wait_ms: int = Field(default=100, ge=1, le=10_000)
    """How long the broker may hold a fetch that found nothing new. Kafka answers as soon as a
    record arrives; the embedded Tansu broker was seen holding a fetch of several partitions until
    this ran out, which delayed picking up a burst by ~200 ms with aiokafka's default of 500."""

    http_host: str = "0.0.0.0"  # noqa: S104 - the pod's probes and Prometheus come from outside
    http_port: int | None = Field(default=None, ge=0, le=65535)
    """Defaults to 8082 for the portal worker and 8083 for the NDXP worker."""
    admin_token: SecretStr | None = None
    """Bearer credential of the admin endpoints (dead letters); unset disables them."""
    allow_http: bool = False
    """Let the portal and NDXP URLs be plain http: for the local run and tests against the
    simulator only; the credentials would cross the network in clear."""
    shutdown_budget_seconds: float = Field(default=20.0, gt=0)
    log_level: str = "INFO"

    def acked_topic(self, target: Target) -> str:
        return self.acked_topic_template.format(target=target.value)

    def group_id(self, target: Target) -> str:
        return f"{self.group_prefix}{target.value}"

    def port(self, target: Target) -> int:
        return self.http_port if self.http_port is not None else DEFAULT_HTTP_PORTS[target]
