"""What the simulator does wrong on purpose: set in its constructor or by `POST /_sim/faults`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Fault injection switches; every field may be changed while the simulator runs."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    error_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of business calls answered with a 5xx (or a retryable portal error code)."""
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of business calls answered with 429 and `Retry-After`."""
    retry_after_seconds: float = Field(default=1.0, ge=0)
    latency_seconds: float = Field(default=0.0, ge=0)
    """Added to every business call before it is handled."""
    outage_seconds: float = Field(default=0.0, ge=0)
    """When set through the control endpoint: answer 503 to everything for this long from now."""
    session_max_uses: int | None = Field(default=None, ge=1)
    """Portal sessions expire after this many business calls."""
    token_ttl_seconds: int = Field(default=3600, ge=1)
    """`expires_in` of NDXP tokens."""
    existing_dossiers: set[str] = Field(default_factory=set)
    """Dossier codes the portal already has (created elsewhere): creating them says "đã tồn tại"."""
    reject_dossiers: set[str] = Field(default_factory=set)
    """Dossier codes both destinations refuse as invalid (permanent validation errors)."""
    echo_personal_data: bool = False
    """Refusals quote the applicant's phone and ID number back, as some real gateways do."""
