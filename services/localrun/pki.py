"""Throwaway certificates and enveloped edXML signatures, made in memory: one builder for all.

The local run (`services.localrun.edocs`, EC P-256 keys: fast to make) and the tests
(`tests.support.pki`, RSA keys with key identifiers, legacy SHA-1 signatures, signed PDFs) both
build their authorities and signers here. No private key is ever written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.signer import XMLSigner

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class KeyKind(StrEnum):
    EC_P256 = "ec-p256"
    RSA_2048 = "rsa-2048"


def new_key(kind: KeyKind) -> PrivateKey:
    if kind is KeyKind.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True, slots=True)
class Identity:
    """A key and its certificate, with the chain above it (issuers, leaf excluded)."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def pem_chain(self) -> list[str]:
        return [
            c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (self.certificate, *self.chain)
        ]


def name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    common_name: str,
    issuer: Identity | None,
    *,
    ca: bool,
    key: KeyKind,
    organisation: str,
    not_before: datetime,
    not_after: datetime,
    key_identifiers: bool = False,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None = None,
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = (),
) -> Identity:
    """A new key and its certificate, signed by `issuer` (self-signed without one).

    `key_identifiers` adds the subject key identifier and, under an issuer, the authority key
    identifier, as real CAs write them. `path_length` (a CA's pathLenConstraint), `key_usage`
    (default: certificate and CRL signing for a CA, digitalSignature and nonRepudiation for a
    signer) and `extended_key_usage` let tests issue what a careless CA issues.
    """
    private = new_key(key)
    subject = name(common_name, organisation)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            key_usage
            or x509.KeyUsage(
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
    if extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    if key_identifiers:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
    certificate = builder.sign(issuer.key if issuer else private, hashes.SHA256())
    chain = (issuer.certificate, *issuer.chain) if issuer else ()
    return Identity(private, certificate, chain)


def sign_enveloped(
    xml: bytes,
    identity: Identity,
    *,
    algorithm: str,
    digest: str,
    certificates: list[str] | None = None,
    signer_class: type[XMLSigner] = XMLSigner,
) -> etree._Element:
    """Sign `xml` enveloped, with the Signature placed at the end of `edXMLHeader`.

    `certificates` go in KeyInfo (default: the identity's own chain); `signer_class` lets a
    caller allow what signxml refuses by default. Returns the signed tree.
    """
    root = etree.fromstring(xml)
    header = next(root.iter("{*}edXMLHeader"), root)
    # signxml finds the placeholder by its Id and signs in its place.
    etree.SubElement(header, f"{{{DSIG_NS}}}Signature", Id="placeholder")
    signer = signer_class(
        signature_algorithm=algorithm, digest_algorithm=digest, c14n_algorithm=C14N
    )
    signed: etree._Element = signer.sign(
        root, key=identity.key, cert=certificates or identity.pem_chain
    )
    return signed


def to_bytes(tree: etree._Element) -> bytes:
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
