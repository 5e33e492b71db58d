"""`client_options()`: what every aiokafka client is given, for each security protocol.

TLS contexts are checked by what they hold (`get_ca_certs()`, `verify_mode`, `check_hostname`)
and by a handshake in memory against a server that requires a client certificate: an
`ssl.SSLContext` does not expose the client chain it loaded, a handshake shows it was sent.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.common.kafka import KafkaTlsConfigError, client_options
from services.common.settings import KafkaSettings, SaslMechanism, SecurityProtocol
from services.ingest.settings import IngestSettings
from tests.support.tls import CLIENT_KEY_PASSWORD, TlsFiles, make_tls_files, server_context

BASE_KEYS = {"bootstrap_servers", "client_id", "security_protocol", "request_timeout_ms"}
SASL_KEYS = {"sasl_mechanism", "sasl_plain_username", "sasl_plain_password"}
PASSWORD = "s3cr3t-scram-password-never-printed"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, server_hostname: str = "127.0.0.1"
) -> dict[str, object]:
    """Run a TLS handshake in memory; return the certificate the server received."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = False
    for _ in range(20):
        for side, done in ((client_side, client_done), (server_side, server_done)):
            if done:
                continue
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                if side is client_side:
                    client_done = True
                else:
                    server_done = True
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if client_done and server_done:
            # TLS 1.3: the server's verdict on the client certificate arrives after the
            # client considers the handshake done; read once so a refusal surfaces here.
            with contextlib.suppress(ssl.SSLWantReadError):
                client_side.read(1)
            peer = server_side.getpeercert()
            return dict(peer) if peer else {}
    raise AssertionError("the handshake did not finish")


def subject(cert: Mapping[str, object]) -> dict[str, str]:
    rdns = cert.get("subject", ())
    assert isinstance(rdns, tuple)
    return {key: value for rdn in rdns for key, value in rdn}


def test_plaintext_has_no_tls_or_sasl() -> None:
    options = client_options(KafkaSettings(bootstrap_servers="k1:9092,k2:9092", client_id="x"))
    assert set(options) == BASE_KEYS
    assert options == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "client_id": "x",
        "security_protocol": "PLAINTEXT",
        "request_timeout_ms": 30_000,
    }


def test_ssl_trusts_the_configured_ca_only(tls: TlsFiles) -> None:
    options = client_options(
        KafkaSettings(security_protocol=SecurityProtocol.SSL, ssl_cafile=tls.ca)
    )
    assert set(options) == BASE_KEYS | {"ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [subject(c)["commonName"] for c in context.get_ca_certs()] == ["govsync test CA"]
    # The server's certificate verifies; nothing is sent as a client certificate.
    assert handshake(context, server_context(tls, require_client_cert=False)) == {}


def test_ssl_refuses_a_server_from_another_ca(tls: TlsFiles) -> None:
    context = client_options(
        KafkaSettings(security_protocol=SecurityProtocol.SSL, ssl_cafile=tls.stranger_ca)
    )["ssl_context"]
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(context, server_context(tls, require_client_cert=False))


def test_mutual_tls_sends_the_client_certificate(tls: TlsFiles) -> None:
    context = client_options(
        KafkaSettings(
            security_protocol=SecurityProtocol.SSL,
            ssl_cafile=tls.ca,
            ssl_certfile=tls.client_cert,
            ssl_keyfile=tls.client_key,
        )
    )["ssl_context"]
    received = handshake(context, server_context(tls, require_client_cert=True))
    assert subject(received)["commonName"] == "govsync-ingest"


def test_without_a_client_certificate_a_mutual_tls_server_refuses(tls: TlsFiles) -> None:
    context = client_options(
        KafkaSettings(security_protocol=SecurityProtocol.SSL, ssl_cafile=tls.ca)
    )["ssl_context"]
    with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_REQUIRED|PEER_DID_NOT_RETURN"):
        handshake(context, server_context(tls, require_client_cert=True))


def test_encrypted_client_key_is_opened_with_the_key_password(tls: TlsFiles) -> None:
    settings = KafkaSettings(
        security_protocol=SecurityProtocol.SSL,
        ssl_cafile=tls.ca,
        ssl_certfile=tls.client_cert,
        ssl_keyfile=tls.client_key_encrypted,
        ssl_key_password=SecretStr(CLIENT_KEY_PASSWORD),
    )
    received = handshake(
        client_options(settings)["ssl_context"], server_context(tls, require_client_cert=True)
    )
    assert subject(received)["commonName"] == "govsync-ingest"


def _wrong_key_password(tls: TlsFiles) -> KafkaSettings:
    return KafkaSettings(
        security_protocol=SecurityProtocol.SSL,
        ssl_cafile=tls.ca,
        ssl_certfile=tls.client_cert,
        ssl_keyfile=tls.client_key_encrypted,
        ssl_key_password=SecretStr("not-the-password"),
    )


def test_a_wrong_key_password_fails_at_once(tls: TlsFiles) -> None:
    # At client construction, before any connection: a service fails at start, not later.
    with pytest.raises(KafkaTlsConfigError):
        client_options(_wrong_key_password(tls))


def test_a_wrong_key_password_names_the_key_file(tls: TlsFiles) -> None:
    settings = _wrong_key_password(tls)
    with pytest.raises(KafkaTlsConfigError) as caught:
        client_options(settings)
    message = str(caught.value)
    assert str(settings.ssl_keyfile) in message, message
    assert "not-the-password" not in message


@pytest.mark.parametrize("check", [True, False])
def test_ssl_check_hostname_is_honoured(tls: TlsFiles, check: bool) -> None:
    context = client_options(
        KafkaSettings(
            security_protocol=SecurityProtocol.SSL, ssl_cafile=tls.ca, ssl_check_hostname=check
        )
    )["ssl_context"]
    assert context.check_hostname is check
    assert context.verify_mode == ssl.CERT_REQUIRED  # the chain is verified either way
    server = server_context(tls, require_client_cert=False)
    if check:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            handshake(context, server, server_hostname="kafka.example.org")
    else:
        assert handshake(context, server, server_hostname="kafka.example.org") == {}


def test_sasl_ssl_with_scram_sha_512(tls: TlsFiles) -> None:
    options = client_options(
        KafkaSettings(
            security_protocol=SecurityProtocol.SASL_SSL,
            sasl_mechanism=SaslMechanism.SCRAM_SHA_512,
            sasl_username="govsync-ingest",
            sasl_password=SecretStr(PASSWORD),
            ssl_cafile=tls.ca,
        )
    )
    assert set(options) == BASE_KEYS | SASL_KEYS | {"ssl_context"}
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "govsync-ingest"
    assert options["sasl_plain_password"] == PASSWORD  # the plain string, not a SecretStr
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].get_ca_certs()


@pytest.mark.parametrize("mechanism", list(SaslMechanism))
def test_sasl_plaintext_has_sasl_and_no_tls(mechanism: SaslMechanism) -> None:
    options = client_options(
        KafkaSettings(
            security_protocol=SecurityProtocol.SASL_PLAINTEXT,
            sasl_mechanism=mechanism,
            sasl_username="u",
            sasl_password=SecretStr(PASSWORD),
        )
    )
    assert set(options) == BASE_KEYS | SASL_KEYS
    assert options["sasl_mechanism"] == mechanism.value
    assert options["sasl_plain_password"] == PASSWORD


def test_the_default_mechanism_is_scram_sha_512() -> None:
    options = client_options(KafkaSettings(security_protocol=SecurityProtocol.SASL_SSL))
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] is None
    assert options["sasl_plain_password"] is None


def test_environment_reaches_client_options(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {
        "GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": "kafka-0.kafka:9093,kafka-1.kafka:9093",
        "GOVSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "GOVSYNC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "GOVSYNC_KAFKA_SASL_USERNAME": "govsync-ingest",
        "GOVSYNC_KAFKA_SASL_PASSWORD": PASSWORD,
        "GOVSYNC_KAFKA_SSL_CAFILE": str(tls.ca),
        "GOVSYNC_KAFKA_SSL_CERTFILE": str(tls.client_cert),
        "GOVSYNC_KAFKA_SSL_KEYFILE": str(tls.client_key_encrypted),
        "GOVSYNC_KAFKA_SSL_KEY_PASSWORD": CLIENT_KEY_PASSWORD,
        "GOVSYNC_KAFKA_SSL_CHECK_HOSTNAME": "false",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = IngestSettings()
    kafka = settings.kafka
    assert kafka.security_protocol is SecurityProtocol.SASL_SSL
    assert kafka.ssl_cafile == Path(tls.ca)
    options = client_options(kafka)
    assert options["bootstrap_servers"] == "kafka-0.kafka:9093,kafka-1.kafka:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "govsync-ingest"
    assert options["sasl_plain_password"] == PASSWORD
    context = options["ssl_context"]
    assert context.check_hostname is False
    assert [subject(c)["commonName"] for c in context.get_ca_certs()] == ["govsync test CA"]
    received = handshake(context, server_context(tls, require_client_cert=True))
    assert subject(received)["commonName"] == "govsync-ingest"
    for shown in (repr(settings), str(settings), repr(kafka), settings.model_dump_json()):
        assert PASSWORD not in shown
        assert CLIENT_KEY_PASSWORD not in shown


def test_an_unknown_protocol_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOVSYNC_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError, match="security_protocol"):
        IngestSettings()
