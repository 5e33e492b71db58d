"""Settings pieces shared by every service: Kafka connection and security, the topics and consumer
fields the services have in common, and the one configuration of every settings class."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common import topics
from services.common.labels import LabelAgencies


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSettings(BaseModel):
    """How to reach the cluster; read from `GOVSYNC_KAFKA_*`."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = "localhost:9092"
    client_id: str = "govsync"
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    """CA bundle that signed the brokers' certificates; unset uses the system store."""
    ssl_certfile: Path | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    request_timeout_ms: int = Field(default=30_000, ge=1_000)


def settings_config(secrets_dir: str | None = None) -> SettingsConfigDict:
    """The one configuration every service's settings class uses.

    `GOVSYNC_KAFKA_BOOTSTRAP_SERVERS` fills `kafka.bootstrap_servers`: nested sections split on
    the first underscore only, so flat names such as `GOVSYNC_TOPIC_DOSSIER_NORMALIZED` still
    map to their own field. Secrets may also come from files (Kubernetes Secret volumes).
    """
    return SettingsConfigDict(
        env_prefix="GOVSYNC_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
        secrets_dir=secrets_dir,
    )


class ServiceSettings(BaseSettings):
    """Base of every service's settings: the broker, the dead-letter topic all of them write, and
    the topics govsync reads its input from (a dead letter is replayed to one of them or not at
    all, so every service that replays knows them).

    Fields stay flat (`GOVSYNC_TOPIC_DLQ`), so a subclass adds its own next to these.
    """

    model_config = settings_config()

    kafka: KafkaSettings = KafkaSettings()
    topic_dlq: str = topics.DLQ
    topic_dossier: str = topics.DOSSIER
    topic_edocument: str = topics.EDOCUMENT
    topic_dossier_normalized: str = topics.DOSSIER_NORMALIZED

    def replay_topics(self) -> frozenset[str]:
        """Where dead letters may go back to: ingest's inputs and the sync services' input.

        Never a state or acknowledgement topic, whatever a dead letter's header names: a record
        written there would be taken for govsync's own memory.
        """
        return frozenset({self.topic_dossier, self.topic_edocument, self.topic_dossier_normalized})


def parse_trusted_proxies(value: object) -> tuple[str, ...]:
    """`GOVSYNC_TRUSTED_PROXIES`: comma-separated addresses or networks (CIDR), checked."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple | set | frozenset):
        raise ValueError("expected a comma-separated list of addresses or networks")
    found: list[str] = []
    for part in parts:
        text = str(part).strip()
        if text:
            # Never "*": trusting every peer's X-Forwarded-For trusts every caller's word.
            found.append(str(ipaddress.ip_network(text, strict=False)))
    return tuple(found)


TrustedProxies = Annotated[tuple[str, ...], NoDecode, BeforeValidator(parse_trusted_proxies)]


class PipelineSettings(ServiceSettings):
    """A service on the dossier pipeline (ingest, sync): how their consumers keep their group
    membership, and whom their HTTP ports believe about a caller's address."""

    consumer_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    """How soon the group notices a dead replica (after `kill -9`) and hands its partitions on."""
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    trusted_proxies: TrustedProxies = ()
    """Peers (addresses or CIDR networks) whose `X-Forwarded-For` names the real client: the
    failed-attempt limits count that address instead of the proxy's. Empty: the header is
    ignored and every peer is its own client."""
    label_agencies: LabelAgencies = frozenset()
    """Comma-separated agency codes (`GOVSYNC_LABEL_AGENCIES`) that get a metric label of their
    own (ingest adds its own agencies); every other agency is counted as `other`."""
