"""A throwaway PKI made at test time: CAs, signers, signed edXML packages and signed PDFs.

Certificates and enveloped signatures come from the one builder, `services.localrun.pki`
(RSA keys with key identifiers here). No private key is ever written to disk or checked in;
everything lives for one test session.
`Pki.trusted` chains root -> intermediate -> signer; `Pki.stranger` is a self-contained CA outside
any bundle the tests configure.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from lxml import etree
from signxml.signer import XMLSigner
from signxml.xades.xades import XAdESSigner

from services.ingest.settings import SignerBinding
from services.localrun.pki import DSIG_NS, Identity, KeyKind, issue, sign_enveloped, to_bytes

# The XML-DSig schema admits only foreign-namespace content in a SignatureProperty.
_SIGNING_TIME_NS = "http://uri.etsi.org/01903/v1.3.2#"

NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2035, 1, 1, tzinfo=UTC)
EXPIRED_NOT_AFTER = datetime(2021, 1, 1, tzinfo=UTC)
SIGNER_ORGANISATION = "UBND tỉnh Thử Nghiệm"
OTHER_ORGANISATION = "UBND huyện Khác"


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


def _ca(common_name: str, issuer: Identity | None = None) -> Identity:
    return issue(
        common_name,
        issuer,
        ca=True,
        key=KeyKind.RSA_2048,
        organisation="govsync test PKI",
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        key_identifiers=True,
    )


def _leaf(
    common_name: str,
    issuer: Identity,
    *,
    not_after: datetime = NOT_AFTER,
    organisation: str = SIGNER_ORGANISATION,
    key_usage: x509.KeyUsage | None = None,
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = (),
) -> Identity:
    return issue(
        common_name,
        issuer,
        ca=False,
        key=KeyKind.RSA_2048,
        organisation=organisation,
        not_before=NOT_BEFORE,
        not_after=not_after,
        key_identifiers=True,
        key_usage=key_usage,
        extended_key_usage=extended_key_usage,
    )


def _key_usage(*, digital_signature: bool, key_encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


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


@dataclass(frozen=True)
class OtherSigners:
    """Certificates the trusted CAs should never have made or that are not for signing, and a
    signer of another agency."""

    tls_server: Identity
    """Extended key usage serverAuth only (a web server's certificate)."""
    encipherment_only: Identity
    """Key usage keyEncipherment only: neither digitalSignature nor nonRepudiation."""
    beyond_path_length: Identity
    """Under root -> issuing CA with pathLenConstraint 0 -> a sub-CA it may not have made."""
    other_agency: Identity
    """A valid signer of another organisation (`OTHER_ORGANISATION`), from the issuing CA."""


@cache
def make_other_signers() -> OtherSigners:
    """Made apart from `make_pki`, by the same trusted root: only the tests that need them pay."""
    pki = make_pki()
    constrained = issue(
        "govsync Test Constrained CA",
        pki.root,
        ca=True,
        key=KeyKind.RSA_2048,
        organisation="govsync test PKI",
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        key_identifiers=True,
        path_length=0,
    )
    sub_ca = _ca("govsync Test Sub-CA", constrained)
    return OtherSigners(
        tls_server=_leaf(
            "portal.example.gov.vn",
            pki.intermediate,
            key_usage=_key_usage(digital_signature=True, key_encipherment=True),
            extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
        ),
        encipherment_only=_leaf(
            "Mã hoá",
            pki.intermediate,
            key_usage=_key_usage(digital_signature=False, key_encipherment=True),
        ),
        beyond_path_length=_leaf("Văn thư dưới CA con", sub_ca),
        other_agency=_leaf("Văn thư huyện", pki.intermediate, organisation=OTHER_ORGANISATION),
    )


def signer_bindings(*agencies: str) -> dict[str, tuple[SignerBinding, ...]]:
    """`GOVSYNC_SIGNER_BINDINGS` binding `agencies` to the test signer: its organisation,
    issued by the test PKI's issuing CA."""
    issuer = hashlib.sha256(
        make_pki().intermediate.certificate.public_bytes(serialization.Encoding.DER)
    ).hexdigest()
    binding = SignerBinding(organisation=SIGNER_ORGANISATION, issuer_sha256=issuer)
    return dict.fromkeys(agencies, (binding,))


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
    signed = sign_enveloped(
        xml,
        identity,
        algorithm=algorithm,
        digest=digest,
        certificates=(embed or identity).pem_chain,
        signer_class=_LegacyXMLSigner,
    )
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
    return to_bytes(signed)


def sign_xades(xml: bytes, identity: Identity, *, signing_time: datetime | str) -> bytes:
    """Sign `xml` enveloped with XAdES: `signing_time` in the SignedProperties, which a
    reference of the signature covers (a signed claim, unlike `sign_edxml`'s); a string is
    written as it is."""

    class Signer(XAdESSigner):
        # signxml writes the clock's SigningTime; the test chooses its own.
        def add_signing_time(
            self, signed_signature_properties: Any, sig_root: Any, signing_settings: Any
        ) -> None:
            element = etree.SubElement(
                signed_signature_properties, f"{{{_SIGNING_TIME_NS}}}SigningTime"
            )
            element.text = (
                signing_time
                if isinstance(signing_time, str)
                else signing_time.astimezone(UTC).isoformat(timespec="seconds")
            )

    signed = sign_enveloped(
        xml, identity, algorithm="rsa-sha256", digest="sha256", signer_class=Signer
    )
    return to_bytes(signed)


# --- signed PDFs ----------------------------------------------------------------------------


def _minimal_pdf(padding: int = 0) -> bytes:
    """A one-page PDF with a correct cross-reference table, written by hand; `padding` bytes of
    comment in its content stream make it as large as a test needs."""
    content = b"%" + b"p" * (padding - 1) if padding else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
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


def unsigned_pdf(padding: int = 0) -> bytes:
    return _minimal_pdf(padding)


def signed_pdf(identity: Identity, *, padding: int = 0) -> bytes:
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
    writer = IncrementalPdfFileWriter(io.BytesIO(_minimal_pdf(padding)))
    output = signers.sign_pdf(
        writer, signers.PdfSignatureMetadata(field_name="Signature1"), signer=signer
    )
    return bytes(output.getvalue())


def tamper_pdf(pdf: bytes) -> bytes:
    """Change one byte inside the signed range (the page's MediaBox)."""
    return pdf.replace(b"/MediaBox [0 0 200 200]", b"/MediaBox [0 0 201 200]", 1)


def rewrite_page_after_signing(pdf: bytes) -> bytes:
    """An incremental update after the signature that replaces the page's content stream: the
    signed bytes are untouched, so the signature stays intact, but what the page shows is new."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    page["/Contents"] = writer.add_object(
        generic.StreamObject(stream_data=b"BT 10 10 Td (Noi dung khac) Tj ET")
    )
    writer.mark_update(page_ref)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()
