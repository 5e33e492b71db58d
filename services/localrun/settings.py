"""Settings of `govsync run`, read from `GOVSYNC_RUN_*` variables (the command's own options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.localrun.traffic.options import DEFAULT_AGENCIES, TrafficOptions


class RunSettings(BaseSettings):
    """The local pipeline: which broker, how much traffic of which shape, how to show it."""

    model_config = SettingsConfigDict(env_prefix="GOVSYNC_RUN_", frozen=True, extra="ignore")

    duration: float | None = Field(default=None, gt=0)
    """Seconds of traffic; then the generator stops, the pipeline drains and everything stops."""
    drain_timeout: float = Field(default=30.0, gt=0)
    namespace: str | None = None
    """Suffix for topics and consumer groups; unset: none on the embedded broker, a fresh one
    on an external broker so a run never reads what an earlier run left there."""
    partitions: int = Field(default=3, ge=1)
    refresh_seconds: float = Field(default=1.0, gt=0)
    """How often the live view (or the plain summary line) is refreshed."""
    tick_seconds: float = Field(default=0.05, gt=0)
    seed: int | None = None
    live: bool | None = None
    """Force the live view on or off; unset: live when stdout is a terminal."""
    log_file: Path | None = None
    """Where the services' JSON logs go; unset: a file in the temporary directory."""
    log_level: str = "INFO"
    broker_port: int | None = Field(default=None, ge=1, le=65535)
    """Loopback port of the embedded broker; unset: a free one (the run prints it)."""
    ingest_port: int | None = Field(default=None, ge=1, le=65535)
    """Loopback port of ingest (`/v1/events`, `/dvcqg`, `/metrics`); unset: a free one."""
    client_relay: bool = True
    """Put the embedded broker behind the relay of `compat.py`, so that clients on librdkafka
    before 2.x (Debian 12's kcat) can produce to it; every client then goes through it."""

    # The traffic (see `TrafficOptions`).
    dossiers_per_second: float = Field(default=15.0, gt=0)
    agencies: tuple[str, ...] = DEFAULT_AGENCIES
    online_share: float = Field(default=0.55, ge=0, le=1)
    postal_share: float = Field(default=0.10, ge=0, le=1)
    paid_online_share: float = Field(default=0.6, ge=0, le=1)
    digitised_share: float = Field(default=0.7, ge=0, le=1)
    reject_share: float = Field(default=0.05, ge=0, le=1)
    withdraw_share: float = Field(default=0.04, ge=0, le=1)
    supplement_share: float = Field(default=0.15, ge=0, le=1)
    late_share: float = Field(default=0.2, ge=0, le=1)
    step_seconds: float = Field(default=2.0, gt=0)
    duplicate_rate: float = Field(default=0.02, ge=0, le=1)
    out_of_order_rate: float = Field(default=0.02, ge=0, le=1)
    malformed_rate: float = Field(default=0.02, ge=0, le=1)
    binary_share: float = Field(default=0.2, ge=0, le=1)
    bare_share: float = Field(default=0.1, ge=0, le=1)
    dialect_share: float = Field(default=0.35, ge=0, le=1)
    edocuments_per_second: float = Field(default=4.0, ge=0)
    """edXML packages per second; 0 sends none (and the run makes no PKI)."""
    edocument_incoming_share: float = Field(default=0.25, ge=0, le=1)
    edocument_verified_share: float = Field(default=0.6, ge=0, le=1)
    edocument_untrusted_share: float = Field(default=0.15, ge=0, le=1)
    edocument_invalid_share: float = Field(default=0.1, ge=0, le=1)
    edocument_duplicate_rate: float = Field(default=0.05, ge=0, le=1)
    national_repository_share: float = Field(default=0.2, ge=0, le=1)
    vneid_share: float = Field(default=0.4, ge=0, le=1)
    bare_life_share: float = Field(default=0.04, ge=0, le=1)
    sparse_header_share: float = Field(default=0.06, ge=0, le=1)
    late_facts_share: float = Field(default=0.06, ge=0, le=1)
    backfill_share: float = Field(default=0.04, ge=0, le=1)
    backfill_days: float = Field(default=60.0, ge=0)
    reexport_share: float = Field(default=0.05, ge=0, le=1)
    reexport_after_seconds: float = Field(default=3.0, ge=0)
    recode_share: float = Field(default=0.03, ge=0, le=1)
    recode_at_reception: bool = True
    http_share: float = Field(default=0.1, ge=0, le=1)
    """Of the dossiers sent as structured CloudEvents, those posted to ingest's `/v1/events`."""
    dvcqg_share: float = Field(default=0.2, ge=0, le=1)
    """Dossiers (and malformed events) sent through ingest's `/dvcqg` as an adapter would."""
    scores_refresh_seconds: float = Field(default=2.0, gt=0)
    """How often the run's scores service recomputes its gauges (its API is always current)."""
    # The ingest service's eviction, shortened to see it within a run (unset: its defaults).
    finished_retention_seconds: float | None = Field(default=None, gt=0)
    eviction_interval_seconds: float | None = Field(default=None, gt=0)

    def traffic(self) -> TrafficOptions:
        return TrafficOptions(
            dossiers_per_second=self.dossiers_per_second,
            agencies=self.agencies,
            online_share=self.online_share,
            postal_share=self.postal_share,
            paid_online_share=self.paid_online_share,
            digitised_share=self.digitised_share,
            reject_share=self.reject_share,
            withdraw_share=self.withdraw_share,
            supplement_share=self.supplement_share,
            late_share=self.late_share,
            step_seconds=self.step_seconds,
            duplicate_rate=self.duplicate_rate,
            out_of_order_rate=self.out_of_order_rate,
            malformed_rate=self.malformed_rate,
            binary_share=self.binary_share,
            bare_share=self.bare_share,
            dialect_share=self.dialect_share,
            edocuments_per_second=self.edocuments_per_second,
            edocument_incoming_share=self.edocument_incoming_share,
            edocument_verified_share=self.edocument_verified_share,
            edocument_untrusted_share=self.edocument_untrusted_share,
            edocument_invalid_share=self.edocument_invalid_share,
            edocument_duplicate_rate=self.edocument_duplicate_rate,
            national_repository_share=self.national_repository_share,
            vneid_share=self.vneid_share,
            bare_life_share=self.bare_life_share,
            sparse_header_share=self.sparse_header_share,
            late_facts_share=self.late_facts_share,
            backfill_share=self.backfill_share,
            backfill_days=self.backfill_days,
            reexport_share=self.reexport_share,
            reexport_after_seconds=self.reexport_after_seconds,
            recode_share=self.recode_share,
            recode_at_reception=self.recode_at_reception,
            dvcqg_share=self.dvcqg_share,
            http_share=self.http_share,
        )
