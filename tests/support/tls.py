"""A throwaway TLS PKI for the Kafka security tests, made at test time with `cryptography`.

`make_tls_files(directory)` writes a test CA, a server certificate for `127.0.0.1` and
`localhost`, a client certificate (mutual TLS) with its key in the clear and encrypted, and a
second, unrelated CA with its own client certificate. Nothing here is ever checked in: the files
live in a pytest temporary directory for one session.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_KEY_PASSWORD = "client-key-passphrase"


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: `ca` signs `server_*` and `client_*`; `stranger_ca` signs `stranger_client_*`."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    """The client key encrypted with `CLIENT_KEY_PASSWORD`."""
    stranger_ca: Path
    stranger_client_cert: Path
    stranger_client_key: Path
    ca_subject: str
    client_subject: str


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govsync tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    common_name: str,
    issuer: Issued | None,
    *,
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if server_names:
        names: list[x509.GeneralName] = []
        for name in server_names:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                names.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


def _write_cert(path: Path, issued: Issued) -> Path:
    path.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, issued: Issued, password: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )
    path.chmod(0o600)
    return path


def make_tls_files(
    directory: Path, server_names: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> TlsFiles:
    """Generate the PKI into `directory` (which must exist) and return the files' paths."""
    ca = _certificate("govsync test CA", None, ca=True)
    server = _certificate("govsync test broker", ca, server_names=server_names)
    client = _certificate("govsync-ingest", ca, client=True)
    stranger_ca = _certificate("stranger CA", None, ca=True)
    stranger_client = _certificate("govsync-ingest", stranger_ca, client=True)
    return TlsFiles(
        ca=_write_cert(directory / "ca.pem", ca),
        server_cert=_write_cert(directory / "server.pem", server),
        server_key=_write_key(directory / "server.key", server),
        client_cert=_write_cert(directory / "client.pem", client),
        client_key=_write_key(directory / "client.key", client),
        client_key_encrypted=_write_key(
            directory / "client-encrypted.key", client, CLIENT_KEY_PASSWORD
        ),
        stranger_ca=_write_cert(directory / "stranger-ca.pem", stranger_ca),
        stranger_client_cert=_write_cert(directory / "stranger-client.pem", stranger_client),
        stranger_client_key=_write_key(directory / "stranger-client.key", stranger_client),
        ca_subject=ca.certificate.subject.rfc4514_string(),
        client_subject=client.certificate.subject.rfc4514_string(),
    )


def server_context(files: TlsFiles, *, require_client_cert: bool) -> ssl.SSLContext:
    """What the TLS-terminating proxy presents: the server certificate, trusting only `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    context.load_verify_locations(cafile=files.ca)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    return context
