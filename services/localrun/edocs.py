"""E-document packages for local runs: a throwaway PKI and edXML packages, made at run time.

The generator (`services.localrun.traffic.generator`) decides what to send (`DocumentSpec`: issuer,
recipient, number, the verdict ingest must reach); `Packager.render` writes the QCVN 102:2016
package and signs it. Keys live in memory for one run; only the CA certificate is written, as
the trust bundle ingest is given. EC P-256 keys keep the start fast (a few ms for all three).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.signer import XMLSigner

from schemas.edocument import SignatureVerdict
from services.localrun.traffic.plans import LOCAL_TZ, DocumentSpec

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
SUBJECT = "Về việc triển khai liên thông văn bản điện tử"
TAMPERED_SUBJECT = "Về việc khác"


@dataclass(frozen=True, slots=True)
class Identity:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def pem_chain(self) -> list[str]:
        return [
            c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (self.certificate, *self.chain)
        ]


@dataclass(frozen=True, slots=True)
class RunPki:
    """`ca` signs `signer` (→ verified); `stranger` signs itself (→ untrusted)."""

    ca: Identity
    signer: Identity
    stranger: Identity

    @property
    def bundle_pem(self) -> bytes:
        return self.ca.certificate.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, directory: Path) -> Path:
        path = directory / "trust-bundle.pem"
        path.write_bytes(self.bundle_pem)
        return path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govsync local run"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    name: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: Identity | None,
    *,
    ca: bool,
    now: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer.key if issuer else key, hashes.SHA256())


def _identity(common_name: str, issuer: Identity | None, *, ca: bool, now: datetime) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(_name(common_name), key, issuer, ca=ca, now=now)
    chain = (issuer.certificate,) if issuer else ()
    return Identity(key, certificate, chain)


def make_pki(now: datetime | None = None) -> RunPki:
    moment = now or datetime.now(UTC)
    ca = _identity("govsync local run CA", None, ca=True, now=moment)
    return RunPki(
        ca=ca,
        signer=_identity("Văn thư chạy thử", ca, ca=False, now=moment),
        stranger=_identity("Người ký tự cấp", None, ca=False, now=moment),
    )


def _e(tag: str, value: str) -> str:
    return f"<edXML:{tag}>{escape(value)}</edXML:{tag}>"


def build_package(spec: DocumentSpec, subject: str = SUBJECT) -> bytes:
    """The minimal document package ingest accepts (QCVN 102:2016), unsigned."""
    date = spec.date.astimezone(LOCAL_TZ)
    day, stamp = f"{date:%Y/%m/%d}", f"{date:%Y/%m/%d %H:%M:%S}"
    header = (
        f"<edXML:MessageHeader><edXML:From>{_e('OrganId', spec.issuer)}"
        f"{_e('OrganName', 'Cơ quan gửi')}</edXML:From>"
        f"<edXML:To>{_e('OrganId', spec.recipient)}{_e('OrganName', 'Cơ quan nhận')}</edXML:To>"
        f"<edXML:Code>{_e('CodeNumber', spec.number)}{_e('CodeNotation', spec.notation)}"
        f"</edXML:Code><edXML:PromulgationInfo>{_e('Place', 'Hà Nội')}"
        f"{_e('PromulgationDate', day)}</edXML:PromulgationInfo>"
        f"<edXML:DocumentType>{_e('Type', '1')}{_e('TypeName', 'Công văn')}</edXML:DocumentType>"
        f"{_e('Subject', subject)}{_e('DocumentId', spec.document_id)}</edXML:MessageHeader>"
        f"<edXML:TraceHeaderList><edXML:TraceHeader>{_e('OrganId', spec.issuer)}"
        f"{_e('Timestamp', stamp)}</edXML:TraceHeader><edXML:Bussiness>"
        f"{_e('BussinessDocType', '0')}</edXML:Bussiness></edXML:TraceHeaderList>"
    )
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?><edXML:edXML xmlns:edXML="{EDXML_NS}">'
        f"<edXML:edXMLEnvelope><edXML:edXMLHeader>{header}</edXML:edXMLHeader>"
        "<edXML:edXMLBody><edXML:edXMLManifest/></edXML:edXMLBody>"
        "</edXML:edXMLEnvelope></edXML:edXML>"
    )
    return text.encode()


def sign(xml: bytes, identity: Identity) -> bytes:
    """Enveloped XML-DSig over the whole package, placed at the end of `edXMLHeader`."""
    root = etree.fromstring(xml)
    header = next(root.iter("{*}edXMLHeader"), root)
    etree.SubElement(header, f"{{{DSIG_NS}}}Signature", Id="placeholder")
    signer = XMLSigner(
        signature_algorithm="ecdsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    )
    signed = signer.sign(root, key=identity.key, cert=identity.pem_chain)
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


class Packager:
    """Writes each spec as the package that makes ingest reach the spec's verdict."""

    def __init__(self, pki: RunPki) -> None:
        self.pki = pki

    def render(self, spec: DocumentSpec) -> bytes:
        plain = build_package(spec)
        verdict = spec.verdict
        if verdict is SignatureVerdict.UNSIGNED:
            return plain
        if verdict is SignatureVerdict.UNTRUSTED:
            return sign(plain, self.pki.stranger)
        signed = sign(plain, self.pki.signer)
        if verdict is SignatureVerdict.INVALID:
            # Changed after signing, as a tamperer would: the digest no longer matches.
            return signed.replace(SUBJECT.encode(), TAMPERED_SUBJECT.encode(), 1)
        return signed
