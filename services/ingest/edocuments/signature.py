"""Signature verdicts for edXML packages (XML-DSig, by signxml) and their signed PDFs (by pyHanko).

Verdicts (`schemas.edocument.SignatureVerdict`):

- `verified`: the signature checks out cryptographically over the whole package, and the signer's
  certificate chains to the configured trust bundle, every certificate valid at the signing time.
- `untrusted`: the signature checks out, but no trust bundle is configured or the chain misses it.
- `invalid`: tampered content, a key that does not match the certificate, a certificate that cannot
  be read or was not valid when the package was signed, or a `Signature` that is not XML-DSig.
- `unsigned`: no `Signature` element at all.

Decisions worth knowing:

- A signer certificate outside its validity period at the signing time makes the signature
  `invalid`, not `untrusted`: a trust bundle cannot repair it, and counting it as merely untrusted
  would let an expired key keep producing "signed" documents.
- A `Signature` element outside the XML-DSig namespace is `invalid` (reason `wrong_namespace`), not
  `unsigned`: the sender meant to sign, and the index must not count it as signed either way. We
  never rewrite the namespace to make it verify, as that would verify something nobody signed.
- One reference must cover the whole document (`URI=""`, enveloped), so what we read is what was
  signed ("see what is signed"); a signature over part of the package only is `invalid`. Extra
  references (up to 4, e.g. to the signing tool's SignatureProperties) must verify as well.
- SHA-1 (rsa-sha1 and sha1 digests) still verifies, flagged `legacy_algorithm=True`.
- The signing time is the package's own `SigningTime` inside the signature where present (it is
  the signer's claim, not a trusted timestamp), never later than the verification clock; else the
  clock. Revocation (CRL, OCSP) is not checked: no network on this path.

Everything here is pure apart from `load_trust_bundle`, which reads the bundle once at startup; an
unusable bundle is a `TrustBundleError` (`services/ingest/errors.py`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    SignXMLException,
)
from signxml.exceptions import InvalidSignature as XmlInvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from schemas.edocument import (
    SignatureAlgorithm,
    SignatureInfo,
    SignatureVerdict,
    UnverifiedReason,
)
from services.common.masking import mask_personal_data
from services.ingest.edocuments.edxml import (
    DSIG_NS,
    SignatureElement,
    child,
    children,
    parse_timestamp,
)
from services.ingest.errors import TrustBundleError

_MAX_CHAIN = 8
_MAX_REFERENCES = 4
_MAX_CN_CHARS = 200

_SIGNATURE_ALGORITHMS: dict[str, SignatureAlgorithm] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": SignatureAlgorithm.RSA_SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": SignatureAlgorithm.RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": SignatureAlgorithm.RSA_SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": SignatureAlgorithm.RSA_SHA512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": SignatureAlgorithm.ECDSA_SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": SignatureAlgorithm.ECDSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": SignatureAlgorithm.ECDSA_SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": SignatureAlgorithm.ECDSA_SHA512,
}
_LEGACY_SIGNATURE = {SignatureAlgorithm.RSA_SHA1, SignatureAlgorithm.ECDSA_SHA1}
_SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
_WHOLE_DOCUMENT_URIS = {"", "#xpointer(/)"}
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

# Asymmetric methods only, SHA-1 included for the legacy packages still in circulation; HMAC is
# left out because a shared secret cannot identify a signer.
_VERIFY_CONFIG = SignatureConfiguration(
    require_x509=True,
    location=".//",
    # Any number: each is checked by signxml, and we require one to be the whole document.
    expect_references=True,
    signature_methods=frozenset(m for m in SignatureMethod if not m.name.startswith("HMAC")),
    digest_algorithms=frozenset(DigestAlgorithm),
)

_ACCEPTED_METHODS = frozenset(m.value for m in _VERIFY_CONFIG.signature_methods)
_ACCEPTED_DIGESTS = frozenset(d.value for d in _VERIFY_CONFIG.digest_algorithms)


class TrustBundle:
    """CA certificates that make a signer `verified`, loaded once and shared by every check."""

    def __init__(self, certificates: Sequence[x509.Certificate]) -> None:
        if not certificates:
            raise TrustBundleError("the trust bundle holds no certificates")
        self.certificates: tuple[x509.Certificate, ...] = tuple(certificates)
        self._fingerprints = {c.fingerprint(hashes.SHA256()) for c in self.certificates}
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        for certificate in self.certificates:
            self._by_subject.setdefault(certificate.subject.public_bytes(), []).append(certificate)

    @classmethod
    def from_pem(cls, data: bytes) -> TrustBundle:
        try:
            return cls(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise TrustBundleError("the trust bundle is not a PEM file of certificates") from exc

    def __len__(self) -> int:
        return len(self.certificates)

    def is_anchor(self, certificate: x509.Certificate) -> bool:
        return certificate.fingerprint(hashes.SHA256()) in self._fingerprints

    def anchors_for(self, issuer: x509.Name) -> list[x509.Certificate]:
        return self._by_subject.get(issuer.public_bytes(), [])

    @cached_property
    def asn1_roots(self) -> list[Any]:
        """The same certificates as pyHanko's validation context wants them."""
        from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]

        return [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in self.certificates]


def load_trust_bundle(path: str | Path) -> TrustBundle:
    """Read `GOVSYNC_TRUST_BUNDLE` (PEM CA certificates) once, at startup."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustBundleError(f"cannot read the trust bundle: {exc.strerror}") from exc
    return TrustBundle.from_pem(data)


# --- certificates and chains ----------------------------------------------------------------


def _valid_at(certificate: x509.Certificate, moment: datetime) -> bool:
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    if not constraints.value.ca:
        return False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        return True
    return usage.value.key_cert_sign


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, CryptoInvalidSignature):
        return False
    return True


def _uses_sha1(certificate: x509.Certificate) -> bool:
    try:
        algorithm = certificate.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - an unknown OID is simply not SHA-1
        return False
    return isinstance(algorithm, hashes.SHA1)


@dataclass(frozen=True, slots=True)
class _Chain:
    trusted: bool
    legacy: bool


def _chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    trust: TrustBundle,
    moment: datetime,
) -> _Chain:
    """Walk from the signer to an anchor of `trust`, each link signed by, and valid at, `moment`.

    Our own walk instead of cryptography's web-PKI verifier, which refuses the SHA-1 certificate
    signatures older government CAs still use; that is also why `legacy` is reported.
    """
    legacy = False
    current = leaf
    seen: set[bytes] = set()
    for _ in range(_MAX_CHAIN):
        if trust.is_anchor(current):
            return _Chain(trusted=True, legacy=legacy)
        seen.add(current.fingerprint(hashes.SHA256()))
        issuer_name = current.issuer.public_bytes()
        candidates = [
            *trust.anchors_for(current.issuer),
            *(c for c in intermediates if c.subject.public_bytes() == issuer_name),
        ]
        for candidate in candidates:
            if candidate.fingerprint(hashes.SHA256()) in seen and not trust.is_anchor(candidate):
                continue
            if (
                _is_ca(candidate)
                and _valid_at(candidate, moment)
                and _issued_by(current, candidate)
            ):
                legacy = legacy or _uses_sha1(current)
                if trust.is_anchor(candidate):
                    return _Chain(trusted=True, legacy=legacy)
                current = candidate
                break
        else:
            return _Chain(trusted=False, legacy=legacy)
    return _Chain(trusted=False, legacy=legacy)


def _signer_cn(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    if not names:
        return None
    value = names[0].value
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    # Vietnamese signing certificates often append an ID or phone number to the name.
    return mask_personal_data(text)[:_MAX_CN_CHARS]


def _load_certificates(signature: etree._Element) -> list[x509.Certificate] | None:
    """The `X509Certificate`s in `KeyInfo`; None when one of them cannot be read."""
    key_info = child(signature, "KeyInfo")
    certificates: list[x509.Certificate] = []
    for x509_data in children(key_info, "X509Data"):
        for element in children(x509_data, "X509Certificate"):
            try:
                der = base64.b64decode("".join((element.text or "").split()), validate=True)
                certificates.append(x509.load_der_x509_certificate(der))
            except (binascii.Error, ValueError):
                return None
    return certificates


def _pick_leaf(certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The end-entity certificate; X509Data has no defined order, so skip CA certificates."""
    for certificate in certificates:
        if not _is_ca(certificate):
            return certificate
    return certificates[0]


def _signing_time(signature: etree._Element, now: datetime) -> datetime:
    for element in signature.iter("{*}SigningTime"):
        claimed = parse_timestamp(element.text)
        if claimed is not None:
            # A claim from the future cannot be true; the clock is the better bound.
            return min(claimed.astimezone(UTC), now.astimezone(UTC))
    return now.astimezone(UTC)


# --- XML-DSig -------------------------------------------------------------------------------


def _invalid(reason: UnverifiedReason, **known: Any) -> SignatureInfo:
    return SignatureInfo(verdict=SignatureVerdict.INVALID, reason=reason, **known)


def _hardened_parser() -> etree.XMLParser:
    # signxml parses the bytes again; the bytes already passed edxml.parse_xml, this is defence
    # in depth with the same switches.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        collect_ids=False,
    )


def _covers_whole_document(reference: etree._Element) -> bool:
    transforms = {t.get("Algorithm") for t in reference.iter(f"{{{DSIG_NS}}}Transform")}
    return reference.get("URI") in _WHOLE_DOCUMENT_URIS and _ENVELOPED in transforms


@dataclass(frozen=True, slots=True)
class XmlSignatureCheck:
    """The verdict, and the package as the signature covers it.

    `signed_root` is signxml's verified result for the whole-document reference: the package
    with the enveloped `Signature` taken out, re-parsed from the canonical bytes the digest was
    computed over. Set when the cryptography checked out (`verified` or `untrusted`); a reader
    takes the header and attachments from it, so nothing the signature does not cover (a
    `ds:Object`, say) can stand in for them.
    """

    info: SignatureInfo
    signed_root: etree._Element | None = None


def verify_xml_signature(
    raw: bytes,
    signature: SignatureElement | None,
    *,
    trust: TrustBundle | None,
    now: datetime,
) -> SignatureInfo:
    """The verdict alone (see `check_xml_signature`)."""
    return check_xml_signature(raw, signature, trust=trust, now=now).info


def check_xml_signature(
    raw: bytes,
    signature: SignatureElement | None,
    *,
    trust: TrustBundle | None,
    now: datetime,
) -> XmlSignatureCheck:
    """The verdict on a package's enveloped XML-DSig signature; never raises for a bad signature.

    `raw` are the package bytes exactly as received (what was signed); `signature` is what
    `edxml.find_signature` found; `now` is the verification clock.
    """
    if signature is None:
        return XmlSignatureCheck(SignatureInfo(verdict=SignatureVerdict.UNSIGNED))
    info, signed_root = _check_xml(raw, signature, trust=trust, now=now)
    return XmlSignatureCheck(info, signed_root)


def _check_xml(
    raw: bytes, signature: SignatureElement, *, trust: TrustBundle | None, now: datetime
) -> tuple[SignatureInfo, etree._Element | None]:
    if not signature.in_dsig_namespace:
        return _invalid(UnverifiedReason.WRONG_NAMESPACE), None
    element = signature.element
    signed_info = child(element, "SignedInfo")
    method = child(signed_info, "SignatureMethod")
    references = children(signed_info, "Reference")
    if signed_info is None or method is None or not 1 <= len(references) <= _MAX_REFERENCES:
        return _invalid(UnverifiedReason.MALFORMED), None
    algorithm = _SIGNATURE_ALGORITHMS.get(method.get("Algorithm", ""), SignatureAlgorithm.OTHER)
    digests = {d.get("Algorithm", "") for d in signed_info.iter(f"{{{DSIG_NS}}}DigestMethod")}
    legacy = algorithm in _LEGACY_SIGNATURE or _SHA1_DIGEST in digests
    known: dict[str, Any] = {"algorithm": algorithm, "legacy_algorithm": legacy}
    if method.get("Algorithm") not in _ACCEPTED_METHODS or not digests <= _ACCEPTED_DIGESTS:
        return _invalid(UnverifiedReason.UNSUPPORTED_ALGORITHM, **known), None

    # Further references (signing tools add one for their SignatureProperties) are verified too,
    # but one of them must cover the whole package.
    whole = [i for i, reference in enumerate(references) if _covers_whole_document(reference)]
    if not whole:
        return _invalid(UnverifiedReason.REFERENCE_NOT_WHOLE_DOCUMENT, **known), None

    certificates = _load_certificates(element)
    if certificates is None:
        return _invalid(UnverifiedReason.CERTIFICATE_UNPARSEABLE, **known), None
    if not certificates:
        return _invalid(UnverifiedReason.NO_CERTIFICATE, **known), None
    leaf = _pick_leaf(certificates)
    moment = _signing_time(element, now)
    known |= {"signer_cn": _signer_cn(leaf), "signing_time": moment}
    if not _valid_at(leaf, moment):
        return _invalid(UnverifiedReason.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME, **known), None

    # The leaf is handed to signxml as the key to use, so signxml checks only the cryptography
    # here; trust is decided by `_chain` against our bundle, with SHA-1 chains allowed.
    config = SignatureConfiguration(
        require_x509=_VERIFY_CONFIG.require_x509,
        location=_VERIFY_CONFIG.location,
        expect_references=_VERIFY_CONFIG.expect_references,
        signature_methods=_VERIFY_CONFIG.signature_methods,
        digest_algorithms=_VERIFY_CONFIG.digest_algorithms,
        verification_time=moment,
    )
    try:
        results = XMLVerifier().verify(
            raw, x509_cert=leaf, parser=_hardened_parser(), expect_config=config
        )
    except InvalidDigest:
        return _invalid(UnverifiedReason.DIGEST_MISMATCH, **known), None
    except InvalidCertificate:
        return _invalid(UnverifiedReason.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME, **known), None
    except XmlInvalidSignature:
        return _invalid(UnverifiedReason.SIGNATURE_MISMATCH, **known), None
    except (InvalidInput, SignXMLException, ValueError, etree.LxmlError):
        # signxml's schema check and lxml raise these for structurally broken signatures.
        return _invalid(UnverifiedReason.MALFORMED, **known), None
    # One result per reference, in SignedInfo's order (signxml verified that SignedInfo).
    verified = results if isinstance(results, list) else [results]
    signed_root = verified[whole[0]].signed_xml if len(verified) == len(references) else None
    if signed_root is None:
        return _invalid(UnverifiedReason.MALFORMED, **known), None

    if trust is None:
        info = SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.NO_TRUST_BUNDLE, **known
        )
        return info, signed_root
    intermediates = [c for c in certificates if c is not leaf]
    chain = _chain(leaf, intermediates, trust, moment)
    known["legacy_algorithm"] = legacy or chain.legacy
    if not chain.trusted:
        info = SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.CHAIN_NOT_TRUSTED, **known
        )
        return info, signed_root
    return SignatureInfo(verdict=SignatureVerdict.VERIFIED, **known), signed_root


# --- signed PDFs ----------------------------------------------------------------------------


def _validate_pdf_signatures(pdf: bytes, trust: TrustBundle | None, now: datetime) -> Any:
    """pyHanko's statuses for each embedded signature (runs an event loop of its own)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    statuses = []
    for embedded in reader.embedded_signatures:
        claimed = embedded.self_reported_timestamp
        moment = min(claimed, now) if claimed is not None else now
        context = ValidationContext(
            trust_roots=trust.asn1_roots if trust is not None else [],
            moment=moment,
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        statuses.append(validate_pdf_signature(embedded, context))
    return statuses


def verify_pdf(pdf: bytes, *, trust: TrustBundle | None, now: datetime) -> SignatureInfo | None:
    """The verdict on a PDF's embedded signatures (the worst of them); None when it has none."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_pdf_checks(pdf, trust, now)
    # pyHanko's synchronous API starts an event loop, which cannot nest in a running one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf-verify") as pool:
        return pool.submit(_run_pdf_checks, pdf, trust, now).result()


def _run_pdf_checks(pdf: bytes, trust: TrustBundle | None, now: datetime) -> SignatureInfo | None:
    try:
        statuses = _validate_pdf_signatures(pdf, trust, now)
    except Exception:  # noqa: BLE001 - pyHanko raises many types for a broken PDF; all mean invalid
        return _invalid(UnverifiedReason.MALFORMED)
    if not statuses:
        return None
    verdicts = [_pdf_verdict(status, trust, now) for status in statuses]
    order = [SignatureVerdict.INVALID, SignatureVerdict.UNTRUSTED, SignatureVerdict.VERIFIED]
    return min(verdicts, key=lambda info: order.index(info.verdict))


def _pdf_verdict(status: Any, trust: TrustBundle | None, now: datetime) -> SignatureInfo:
    legacy = "sha1" in str(getattr(status, "md_algorithm", "")).lower()
    cn = None
    signer = getattr(status, "signing_cert", None)
    if signer is not None:
        cn = mask_personal_data(str(signer.subject.native.get("common_name", "")))[:_MAX_CN_CHARS]
    known: dict[str, Any] = {
        "legacy_algorithm": legacy,
        "signer_cn": cn or None,
        "signing_time": min(claimed, now) if (claimed := status.signer_reported_dt) else now,
    }
    if not (status.intact and status.valid):
        return _invalid(UnverifiedReason.SIGNATURE_MISMATCH, **known)
    if trust is None:
        return SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.NO_TRUST_BUNDLE, **known
        )
    if not status.trusted:
        return SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.CHAIN_NOT_TRUSTED, **known
        )
    return SignatureInfo(verdict=SignatureVerdict.VERIFIED, **known)
