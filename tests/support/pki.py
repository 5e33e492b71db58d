"""A throwaway PKI made at test time: CAs, signers, signed edXML packages and signed PDFs.

No private key is ever written to disk or checked in; everything lives for one test session.
`Pki.trusted` chains root -> intermediate -> signer; `Pki.stranger` is a self-contained CA outside
any bundle the tests configure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.signer import XMLSigner

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
# The XML-DSig schema admits only foreign-namespace content in a SignatureProperty.
_SIGNING_TIME_NS = "http://uri.etsi.org/01903/v1.3.2#"

NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2035, 1, 1, tzinfo=UTC)
EXPIRED_NOT_AFTER = datetime(2021, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Identity:
    """A key and its certificate, with the chain above it (issuers, leaf excluded)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def pem_chain(self) -> list[str]:
        return [
            c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (self.certificate, *self.chain)
        ]


@dataclass(frozen=True)
class Pki:
    root: Identity
    intermediate: Identity
    signer: Identity
    expired_signer: Identity
    stranger_root: Identity
    stranger_signer: Identity

    @property
    def bundle_pem(self) -> bytes:
        """What `GOVSYNC_TRUST_BUNDLE` would point at: the trusted root only."""
        return self.root.certificate.public_bytes(serialization.Encoding.PEM)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str, organisation: str = "govsync test PKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: Identity | None,
    *,
    ca: bool,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
) -> x509.Certificate:
    issuer_name = issuer.certificate.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


def _ca(common_name: str, issuer: Identity | None = None) -> Identity:
    key = _key()
    certificate = _certificate(_name(common_name), key, issuer, ca=True)
    chain = (issuer.certificate, *issuer.chain) if issuer else ()
    return Identity(key=key, certificate=certificate, chain=chain)


def _leaf(common_name: str, issuer: Identity, **kwargs: Any) -> Identity:
    key = _key()
    certificate = _certificate(
        _name(common_name, "UBND tỉnh Thử Nghiệm"), key, issuer, ca=False, **kwargs
    )
    return Identity(key=key, certificate=certificate, chain=(issuer.certificate, *issuer.chain))


@cache
def make_pki() -> Pki:
    """One PKI per test session: RSA key generation is the slow part."""
    root = _ca("govsync Test Root CA")
    intermediate = _ca("govsync Test Issuing CA", root)
    stranger_root = _ca("Stranger Root CA")
    return Pki(
        root=root,
        intermediate=intermediate,
        # The CN carries an ID number, as real signing certificates often do.
        signer=_leaf("Văn thư Sở Thử Nghiệm 001099012345", intermediate),
        expired_signer=_leaf("Văn thư hết hạn", intermediate, not_after=EXPIRED_NOT_AFTER),
        stranger_root=stranger_root,
        stranger_signer=_leaf("Người lạ", stranger_root),
    )


# --- signing edXML --------------------------------------------------------------------------


class _LegacyXMLSigner(XMLSigner):
    """signxml refuses to make SHA-1 signatures; real senders still do, so the tests must too."""

    def check_deprecated_methods(self) -> None:
        return None


def sign_edxml(
    xml: bytes,
    identity: Identity,
    *,
    algorithm: str = "rsa-sha256",
    digest: str = "sha256",
    embed: Identity | None = None,
    signing_time: datetime | None = None,
) -> bytes:
    """Sign `xml` enveloped, with the Signature placed at the end of `edXMLHeader`.

    `embed` puts another identity's certificate in KeyInfo (a key/certificate mismatch);
    `signing_time` adds a `SigningTime` property, as some Vietnamese signing tools do.
    """
    root = etree.fromstring(xml)
    header = next(root.iter("{*}edXMLHeader"), root)
    placeholder = etree.SubElement(header, f"{{{DSIG_NS}}}Signature", Id="placeholder")
    del placeholder  # signxml finds it by its Id
    signer = _LegacyXMLSigner(
        signature_algorithm=algorithm,
        digest_algorithm=digest,
        c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    )
    certificates = (embed or identity).pem_chain
    signed = signer.sign(root, key=identity.key, cert=certificates)
    if signing_time is not None:
        # As Vietnamese signing tools write it: a SignatureProperty in a ds:Object. signxml adds
        # properties only to detached signatures, and this one is outside the signed data, which
        # is also what the verifier must cope with.
        signature = next(signed.iter(f"{{{DSIG_NS}}}Signature"))
        obj = etree.SubElement(signature, f"{{{DSIG_NS}}}Object")
        props = etree.SubElement(obj, f"{{{DSIG_NS}}}SignatureProperties")
        prop = etree.SubElement(props, f"{{{DSIG_NS}}}SignatureProperty", Target="#sig")
        etree.SubElement(prop, f"{{{_SIGNING_TIME_NS}}}SigningTime").text = signing_time.astimezone(
            UTC
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


# --- signed PDFs ----------------------------------------------------------------------------


def _minimal_pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table, written by hand."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length 0 >>\nstream\n\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def unsigned_pdf() -> bytes:
    return _minimal_pdf()


def signed_pdf(identity: Identity) -> bytes:
    """A PDF signed with pyHanko by `identity`, its issuers embedded in the CMS."""
    from asn1crypto import keys  # type: ignore[import-untyped]
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def asn1(certificate: x509.Certificate) -> Any:
        return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))

    key_der = identity.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1(identity.certificate),
        signing_key=keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1(c) for c in identity.chain]
        ),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(_minimal_pdf()))
    output = signers.sign_pdf(
        writer, signers.PdfSignatureMetadata(field_name="Signature1"), signer=signer
    )
    return bytes(output.getvalue())


def tamper_pdf(pdf: bytes) -> bytes:
    """Change one byte inside the signed range (the page's MediaBox)."""
    return pdf.replace(b"/MediaBox [0 0 200 200]", b"/MediaBox [0 0 201 200]", 1)
