"""The reconciliation's settings: `GOVSYNC_RECONCILE_*`, a section of the scores service's
settings (the sweeps run inside that process, or as `govsync reconcile` with the same variables).

No imports of the reconciliation's own modules: `services/scores/settings.py` imports this.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReconcileOptions(BaseModel):
    """`GOVSYNC_RECONCILE_*`; the portal itself is `GOVSYNC_PORTAL_*`, as for the sync."""

    model_config = ConfigDict(frozen=True)

    schedule: bool = False
    """Sweep on a schedule inside the scores service (off: only `govsync reconcile`)."""
    interval_seconds: float = Field(default=6 * 3600.0, gt=0)
    """Between two scheduled rounds (each sweeps every agency's current and previous month)."""
    agencies: frozenset[str] = frozenset()
    """The agencies the schedule sweeps; empty: every agency with dossiers in the period."""
    lookups_per_second: float = Field(default=20.0, gt=0, le=10_000)
    """`TraCuuHoSo` calls per second at most, re-checks included: evenly spaced, no burst."""
    concurrency: int = Field(default=16, ge=1, le=1024)
    """Lookups in flight at once (enough to keep the rate through the portal's latency)."""
    batch_size: int = Field(default=200, ge=1, le=10_000)
    """Dossiers per checkpoint: a restart looks up at most this many again."""
    lease_seconds: float = Field(default=60.0, ge=1)
    """How long an agency's sweep lease lasts unless renewed (renewed every third of it); a
    sweep killed outright blocks the next one for at most this long."""
    lease_wait_seconds: float = Field(default=0.0, ge=0)
    """`govsync reconcile dossiers` waits this long for another sweep's lease before giving up."""
    pause_initial_seconds: float = Field(default=1.0, gt=0)
    """After a portal error (timeout, 5xx, refused session) the sweep pauses this long, then
    one probe goes; each failed probe doubles the pause up to `pause_max_seconds`."""
    pause_max_seconds: float = Field(default=60.0, gt=0)
    resend: bool = True
    """Re-publish the missing and different dossiers for the portal sync, then check again."""
    recheck_delay_seconds: float = Field(default=30.0, ge=0)
    """How long the sync gets to deliver the re-sent dossiers before each re-check."""
    recheck_attempts: int = Field(default=3, ge=0, le=100)
    """Re-checks of those still differing (0: re-send without checking)."""
    departments: dict[str, str] = Field(default_factory=dict)
    """Agency code (`madonvi`) -> the reporting API's `departmentId` (DOMAIN.md §2)."""
    reporting_url: str = "http://127.0.0.1:8090/portal/api/v1/reporting/evaluation"
    """Base of the evaluation endpoints (`/transparency`, `/dvc-progress-tree` ...)."""
    reporting_timeout_seconds: float = Field(default=30.0, gt=0)
    gauges_refresh_seconds: float = Field(default=30.0, gt=0)
    """How often the scores service re-reads the sweeps' results into its gauges."""
