"""Kafka over TLS with client certificates, end to end through our own `client_options`.

The embedded Tansu broker cannot serve TLS, so each test's broker is a Tansu of its own behind
`tests.support.tls_proxy.TlsProxy`, advertising the proxy's address: every connection the
clients make, bootstrap and after metadata, passes the proxy's TLS handshake, which requires a
client certificate signed by the test CA. SASL runs against Tansu's `--authentication` mode,
in the clear and behind TLS. See docs/security.md for what this does not prove.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import SecretStr

from services.common.kafka import TopicSpec, ensure_topics, make_consumer, make_producer
from services.common.settings import KafkaSettings, SaslMechanism, SecurityProtocol
from tests.support.ingest import API_KEY, API_SOURCES, ingest_settings, running_ingest
from tests.support.kafka import topic_partitions
from tests.support.tls import TlsFiles, make_tls_files, server_context
from tests.support.tls_proxy import TlsProxy, advertising_broker, broker_behind_tls

pytestmark = [pytest.mark.reliability, pytest.mark.kafka]

REFUSED_WITHIN = 10.0


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("kafka-tls"))


@pytest.fixture(scope="module")
async def mtls_proxy(tls: TlsFiles) -> AsyncIterator[TlsProxy]:
    """A fresh broker reachable only through TLS that requires a client certificate."""
    async with broker_behind_tls(server_context(tls, require_client_cert=True)) as proxy:
        yield proxy


def ssl_settings(
    address: str,
    *,
    cafile: Path | None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    request_timeout_ms: int = 5_000,
) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=address,
        security_protocol=SecurityProtocol.SSL,
        ssl_cafile=cafile,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        request_timeout_ms=request_timeout_ms,
    )


def client_settings(tls: TlsFiles, proxy: TlsProxy) -> KafkaSettings:
    # Tansu answers a first JoinGroup only after the session timeout (10 s): leave room.
    return ssl_settings(
        proxy.address,
        cafile=tls.ca,
        certfile=tls.client_cert,
        keyfile=tls.client_key,
        request_timeout_ms=20_000,
    )


async def read_values(
    settings: KafkaSettings, topic: str, at_least: int, within: float = 20.0
) -> list[bytes]:
    """Read `topic` from the beginning with our own consumer (so over `settings`' security)."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    values: list[bytes] = []
    try:
        partitions = await topic_partitions(settings, topic, within)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(within):
            while len(values) < at_least:
                batch = await consumer.getmany(timeout_ms=200)
                values.extend(m.value or b"" for ms in batch.values() for m in ms)
        return values
    finally:
        await consumer.stop()


async def test_produce_and_consume_over_mutual_tls(
    tls: TlsFiles, mtls_proxy: TlsProxy, unique: str
) -> None:
    settings = client_settings(tls, mtls_proxy)
    topic = f"mtls-{unique}"
    forwarded_before = mtls_proxy.stats.forwarded
    async with asyncio.timeout(30):
        await ensure_topics(settings, [TopicSpec(topic, 2)])
        producer = make_producer(settings)
        await producer.start()
        try:
            # The broker's metadata names the proxy: clients never learn the plaintext port.
            advertised = {(b.host, b.port) for b in producer.client.cluster.brokers()}
            assert advertised == {("127.0.0.1", mtls_proxy.port)}
            for i in range(5):
                await producer.send_and_wait(topic, f"record-{i}".encode(), key=b"k")
        finally:
            await producer.stop()
        values = await read_values(settings, topic, at_least=5)
    assert sorted(values) == [f"record-{i}".encode() for i in range(5)]
    assert mtls_proxy.stats.forwarded > forwarded_before
    assert "commonName=govsync-ingest" in mtls_proxy.stats.client_subjects[-1]


def dossier_event(event_id: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": API_SOURCES[0],
        "type": "vn.gov.dvc.dossier.v1",
        "time": "2026-11-02T08:00:00+07:00",
        "agency": "000.00.00.G22",
        "data": {"MaHoSo": "H-TLS-1", "TrangThaiHoSo": 2},
    }


async def test_ingest_service_runs_over_mutual_tls(
    tls: TlsFiles, mtls_proxy: TlsProxy, unique: str
) -> None:
    kafka = client_settings(tls, mtls_proxy)
    settings = ingest_settings(kafka, unique, topic_partitions=1)
    async with asyncio.timeout(45):
        async with (
            running_ingest(settings) as base_url,
            httpx.AsyncClient(base_url=base_url) as client,
        ):
            response = await client.post(
                "/v1/events",
                content=json.dumps(dossier_event(f"tls-{unique}")),
                headers={
                    "Authorization": f"Bearer {API_KEY}",
                    "content-type": "application/cloudevents+json",
                },
            )
            assert response.status_code == 202, response.text
            values = await read_values(kafka, settings.topic_dossier_normalized, 1)
    assert [orjson.loads(v)["event_id"] for v in values] == [f"tls-{unique}"]


RefusedCase = Callable[[TlsFiles, str], KafkaSettings]

REFUSED: dict[str, RefusedCase] = {
    "no-client-certificate": lambda tls, address: ssl_settings(address, cafile=tls.ca),
    "certificate-from-another-ca": lambda tls, address: ssl_settings(
        address,
        cafile=tls.ca,
        certfile=tls.stranger_client_cert,
        keyfile=tls.stranger_client_key,
    ),
    "server-ca-not-trusted": lambda tls, address: ssl_settings(
        address, cafile=tls.stranger_ca, certfile=tls.client_cert, keyfile=tls.client_key
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_without_mutual_trust(
    tls: TlsFiles, mtls_proxy: TlsProxy, case: str, figures: Callable[[str], None]
) -> None:
    settings = REFUSED[case](tls, mtls_proxy.address)
    forwarded_before = mtls_proxy.stats.forwarded
    handshakes_before = len(mtls_proxy.stats.client_subjects)
    producer = make_producer(settings)
    started = time.monotonic()
    try:
        with pytest.raises(KafkaConnectionError):
            async with asyncio.timeout(REFUSED_WITHIN):
                await producer.start()
    finally:
        await producer.stop()
    figures(f"refused in {(time.monotonic() - started) * 1000:.0f} ms")
    assert len(mtls_proxy.stats.client_subjects) == handshakes_before, "a handshake completed"
    assert mtls_proxy.stats.forwarded == forwarded_before, "a byte reached the broker"


# --- SASL ----------------------------------------------------------------------------------
#
# Tansu 0.6.0 with `--authentication` offers SCRAM-SHA-512, SCRAM-SHA-256 and OAUTHBEARER (not
# PLAIN), and knows only users created with AlterUserScramCredentials, a request it refuses
# before a client has authenticated; its storage is memory only. No user can exist, so these
# tests prove what our client sends, read from the broker's own authentication log, and that
# the broker refuses it: never that a right password is accepted or a wrong one refused.

SASL_PASSWORD = "scram-password-never-on-the-wire"
TANSU_MECHANISM = {SaslMechanism.SCRAM_SHA_512: "Scram512", SaslMechanism.SCRAM_SHA_256: "Scram256"}


@dataclass(frozen=True)
class SaslBroker:
    address: str
    log: Path


@pytest.fixture(scope="module")
async def sasl_brokers(
    tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[SecurityProtocol, SaslBroker]]:
    """Two Tansu brokers with `--authentication`: one in the clear, one behind TLS."""
    logs = tmp_path_factory.mktemp("sasl")
    async with AsyncExitStack() as stack:
        plain = stack.enter_context(
            advertising_broker(None, authentication=True, log=logs / "plaintext.log")
        )
        proxy = await stack.enter_async_context(
            broker_behind_tls(
                server_context(tls, require_client_cert=False),
                authentication=True,
                log=logs / "ssl.log",
            )
        )
        yield {
            SecurityProtocol.SASL_PLAINTEXT: SaslBroker(plain.advertised, logs / "plaintext.log"),
            SecurityProtocol.SASL_SSL: SaslBroker(proxy.address, logs / "ssl.log"),
        }


async def start_refused(settings: KafkaSettings) -> BaseException:
    """Start a producer that the broker must refuse; return what the client raised."""
    producer = make_producer(settings)
    try:
        # aiokafka reads the SCRAM server-final `e=unknown-user` as a signature and raises
        # `KeyError('v')` (aiokafka/conn.py); refusals before SCRAM are KafkaConnectionError.
        with pytest.raises((KeyError, KafkaError)) as caught:
            async with asyncio.timeout(REFUSED_WITHIN):
                await producer.start()
        refused: BaseException = caught.value
        return refused
    finally:
        await producer.stop()


@pytest.mark.parametrize("mechanism", list(TANSU_MECHANISM))
@pytest.mark.parametrize("protocol", [SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL])
async def test_scram_credentials_reach_the_broker(
    tls: TlsFiles,
    sasl_brokers: dict[SecurityProtocol, SaslBroker],
    protocol: SecurityProtocol,
    mechanism: SaslMechanism,
    unique: str,
    figures: Callable[[str], None],
) -> None:
    broker = sasl_brokers[protocol]
    user = f"govsync-{unique}"
    settings = KafkaSettings(
        bootstrap_servers=broker.address,
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=user,
        sasl_password=SecretStr(SASL_PASSWORD),
        ssl_cafile=tls.ca,
        request_timeout_ms=5_000,
    )
    refused = await start_refused(settings)
    text = broker.log.read_text(errors="replace")
    seen = f'auth_id="{user}" mechanism={TANSU_MECHANISM[mechanism]}'
    assert seen in text, "the broker never saw our SCRAM exchange"
    assert SASL_PASSWORD not in text, "SCRAM must never put the password on the wire"
    figures(f"refused with {type(refused).__name__}; broker log: {seen}")


async def test_sasl_broker_refuses_plaintext_and_plain(
    sasl_brokers: dict[SecurityProtocol, SaslBroker],
) -> None:
    """The broker demands SASL, and PLAIN is not among its mechanisms."""
    broker = sasl_brokers[SecurityProtocol.SASL_PLAINTEXT]
    plaintext = KafkaSettings(bootstrap_servers=broker.address, request_timeout_ms=5_000)
    assert isinstance(await start_refused(plaintext), KafkaConnectionError)
    plain = KafkaSettings(
        bootstrap_servers=broker.address,
        security_protocol=SecurityProtocol.SASL_PLAINTEXT,
        sasl_mechanism=SaslMechanism.PLAIN,
        sasl_username="plain-user",
        sasl_password=SecretStr(SASL_PASSWORD),
        request_timeout_ms=5_000,
    )
    assert isinstance(await start_refused(plain), KafkaConnectionError)
    text = broker.log.read_text(errors="replace")
    assert 'mechanism: "PLAIN"' in text
    assert "NoSharedMechanism" in text
