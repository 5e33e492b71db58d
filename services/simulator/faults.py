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
    lose_share: float = Field(default=0.0, ge=0, le=1)
    """While set, the portal loses this share of the dossiers (chosen by code and `damage_seed`):
    what it is sent for them is acknowledged and not kept, and those it held are gone (once set
    through `POST /_sim/faults`, or after `Simulator.faults_changed()`). Back at 0, a re-send is
    kept again. `state.lost` names them."""
    stale_share: float = Field(default=0.0, ge=0, le=1)
    """While set, the portal keeps this share of the dossiers (chosen the same way, none of them
    lost) at what it holds: a later header, or a step that changes the status, is acknowledged
    and not applied. `state.stale` names those a change was dropped for."""
    damage_seed: int = 0
    """Which dossiers `lose_share` and `stale_share` pick (a hash of the seed and the code)."""
    received_count_delta: int = 0
    """Added to every department's received count in the reporting answers (a portal that
    counts dossiers it was never sent, or misses some): 2.1's denominator, 1.4's portal side."""
