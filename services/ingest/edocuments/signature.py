"""Signature verdicts for edXML packages (XML-DSig, by signxml) and their signed PDFs (by pyHanko).

Verdicts (`schemas.edocument.SignatureVerdict`):

- `verified`: the signature checks out cryptographically over the whole package, the signer's
  key is for signing and its certificate was valid at the signing time, and pyhanko-certvalidator
  validated its path to the configured trust bundle (`trust.py`).
- `untrusted`: the signature checks out, but no trust bundle is configured or no path reaches it.
- `invalid`: tampered content, a key that does not match the certificate, a certificate that
  cannot be read, was not valid when the package was signed or is not for signing, a path that
  breaks its CA's constraints, or a `Signature` that is not XML-DSig.
- `unsigned`: no `Signature` element at all.

Decisions worth knowing:

- What was signed is what is read: `check_xml_signature` returns signxml's verified result for
  the whole-document reference (`XmlSignatureCheck.signed_root`) and the reader takes every field
  from it, so a forged header hidden in the signature (a `ds:Object` is covered by no digest)
  is never read (`edxml.refuse_wrapped_content` refuses such packages outright as well).
- One reference must cover the whole document (`URI=""`, enveloped); a signature over part of
  the package only is `invalid`. Extra references (up to 4: XAdES adds SignedProperties and
  KeyInfo) must verify as well.
- The signing time is a `SigningTime` inside signed properties (XAdES `SignedProperties`, or
  XML-DSig `SignatureProperties`) that a verified reference covers, never later than the clock;
  without one, the clock. An unsigned `SigningTime` is ignored: anyone could have written it, and
  it would let an expired key keep signing "in the past". A PDF's time is its CMS signingTime
  attribute or its signature dictionary's `/M`, both covered by its signature.
- A signer certificate outside its validity period at the signing time makes the signature
  `invalid`, not `untrusted`: a trust bundle cannot repair it.
- A `Signature` element outside the XML-DSig namespace is `invalid` (reason `wrong_namespace`), not
  `unsigned`: the sender meant to sign, and the index must not count it as signed either way. We
  never rewrite the namespace to make it verify, as that would verify something nobody signed.
- A PDF verifies only on pyHanko's bottom line: intact, trusted, and no suspicious modification
  after signing (an incremental update that rewrites page content is `modified_after_signing`).
- SHA-1 (rsa-sha1, sha1 digests, SHA-1 certificate signatures) still verifies, flagged
  `legacy_algorithm=True`. Revocation (CRL, OCSP) is not checked: no network on this path.

Pure: the trust bundle is loaded by `trust.load_trust_bundle` at startup.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
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
    local_name,
    parse_timestamp,
)
from services.ingest.edocuments.trust import (
    SIGNER_KEY_USAGE,
    ChainVerdict,
    SignerIdentity,
    TrustBundle,
    check_chain,
    fits_for_signing,
    path_check,
    run_sync,
    to_asn1,
    validation_context,
)

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


def _valid_at(certificate: x509.Certificate, moment: datetime) -> bool:
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


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


# What XML-DSig and XAdES put signed properties in; a SigningTime counts only inside one of them
# that a reference of the signature covers.
_PROPERTY_CONTAINERS = frozenset({"SignedProperties", "SignatureProperties", "SignatureProperty"})


def _signed_signing_time(covered: Sequence[etree._Element | None]) -> datetime | None:
    """The first `SigningTime` in the signed properties among `covered` (what each reference
    covers, as signxml verified it); None when no signed property states one."""
    for part in covered:
        if part is None or local_name(part) not in _PROPERTY_CONTAINERS:
            continue
        for element in part.iter("{*}SigningTime"):
            claimed = parse_timestamp(element.text)
            if claimed is None:
                continue
            try:
                return claimed.astimezone(UTC)
            except OverflowError:
                # Year 1 with a positive offset, or 9999 with a negative one.
                return None
    return None


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
    signer: SignerIdentity | None = None
    """Who signed, when `verified` (for `binding.SignerBindings`)."""


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
    return _check_xml(raw, signature, trust=trust, now=now)


def _check_xml(
    raw: bytes, signature: SignatureElement, *, trust: TrustBundle | None, now: datetime
) -> XmlSignatureCheck:
    if not signature.in_dsig_namespace:
        return XmlSignatureCheck(_invalid(UnverifiedReason.WRONG_NAMESPACE))
    element = signature.element
    signed_info = child(element, "SignedInfo")
    method = child(signed_info, "SignatureMethod")
    references = children(signed_info, "Reference")
    if signed_info is None or method is None or not 1 <= len(references) <= _MAX_REFERENCES:
        return XmlSignatureCheck(_invalid(UnverifiedReason.MALFORMED))
    algorithm = _SIGNATURE_ALGORITHMS.get(method.get("Algorithm", ""), SignatureAlgorithm.OTHER)
    digests = {d.get("Algorithm", "") for d in signed_info.iter(f"{{{DSIG_NS}}}DigestMethod")}
    legacy = algorithm in _LEGACY_SIGNATURE or _SHA1_DIGEST in digests
    known: dict[str, Any] = {"algorithm": algorithm, "legacy_algorithm": legacy}
    if method.get("Algorithm") not in _ACCEPTED_METHODS or not digests <= _ACCEPTED_DIGESTS:
        return XmlSignatureCheck(_invalid(UnverifiedReason.UNSUPPORTED_ALGORITHM, **known))

    # Further references (signing tools add one for their SignatureProperties) are verified too,
    # but one of them must cover the whole package.
    whole = [i for i, reference in enumerate(references) if _covers_whole_document(reference)]
    if not whole:
        return XmlSignatureCheck(_invalid(UnverifiedReason.REFERENCE_NOT_WHOLE_DOCUMENT, **known))

    certificates = _load_certificates(element)
    if certificates is None:
        return XmlSignatureCheck(_invalid(UnverifiedReason.CERTIFICATE_UNPARSEABLE, **known))
    if not certificates:
        return XmlSignatureCheck(_invalid(UnverifiedReason.NO_CERTIFICATE, **known))
    leaf = _pick_leaf(certificates)
    known["signer_cn"] = _signer_cn(leaf)

    # The leaf is handed to signxml as the key to use, so signxml checks only the cryptography:
    # its validity clock is put inside the certificate's validity, because the time that counts
    # is known only once the signed properties are verified. Validity and trust are ours below.
    config = SignatureConfiguration(
        require_x509=_VERIFY_CONFIG.require_x509,
        location=_VERIFY_CONFIG.location,
        expect_references=_VERIFY_CONFIG.expect_references,
        signature_methods=_VERIFY_CONFIG.signature_methods,
        digest_algorithms=_VERIFY_CONFIG.digest_algorithms,
        verification_time=leaf.not_valid_before_utc,
    )
    try:
        results = XMLVerifier().verify(
            raw, x509_cert=leaf, parser=_hardened_parser(), expect_config=config
        )
    except InvalidDigest:
        return XmlSignatureCheck(_invalid(UnverifiedReason.DIGEST_MISMATCH, **known))
    except InvalidCertificate:
        return XmlSignatureCheck(
            _invalid(UnverifiedReason.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME, **known)
        )
    except XmlInvalidSignature:
        return XmlSignatureCheck(_invalid(UnverifiedReason.SIGNATURE_MISMATCH, **known))
    except (InvalidInput, SignXMLException, ValueError, etree.LxmlError):
        # signxml's schema check and lxml raise these for structurally broken signatures.
        return XmlSignatureCheck(_invalid(UnverifiedReason.MALFORMED, **known))
    # One result per reference, in SignedInfo's order (signxml verified that SignedInfo).
    verified = results if isinstance(results, list) else [results]
    if len(verified) != len(references) or verified[whole[0]].signed_xml is None:
        return XmlSignatureCheck(_invalid(UnverifiedReason.MALFORMED, **known))
    signed_root = verified[whole[0]].signed_xml
    covered = [r.signed_xml for i, r in enumerate(verified) if i != whole[0]]

    # Only a time the signature itself vouches for; an unsigned claim could be anything, and
    # would let an expired key keep signing "in the past". Never later than the clock.
    claimed = _signed_signing_time(covered)
    moment = min(claimed, now.astimezone(UTC)) if claimed is not None else now.astimezone(UTC)
    known["signing_time"] = moment
    if not _valid_at(leaf, moment):
        expired = _invalid(UnverifiedReason.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME, **known)
        return XmlSignatureCheck(expired, signed_root)
    if not fits_for_signing(to_asn1(leaf)):
        return XmlSignatureCheck(
            _invalid(UnverifiedReason.KEY_NOT_FOR_SIGNING, **known), signed_root
        )

    if trust is None:
        info = SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.NO_TRUST_BUNDLE, **known
        )
        return XmlSignatureCheck(info, signed_root)
    chain = check_chain(leaf, [c for c in certificates if c is not leaf], trust, moment)
    if chain.verdict is ChainVerdict.INVALID:
        return XmlSignatureCheck(_invalid(UnverifiedReason.CHAIN_INVALID, **known), signed_root)
    if chain.verdict is ChainVerdict.NOT_TRUSTED:
        info = SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.CHAIN_NOT_TRUSTED, **known
        )
        return XmlSignatureCheck(info, signed_root)
    known["legacy_algorithm"] = legacy or chain.legacy
    verified_info = SignatureInfo(verdict=SignatureVerdict.VERIFIED, **known)
    return XmlSignatureCheck(verified_info, signed_root, chain.signer)


# --- signed PDFs ----------------------------------------------------------------------------


# pyHanko rebuilds the constraints it is given and then requires an EKU whenever a purpose is
# listed, so it checks the key usage only; `fits_for_signing` applies the whole policy after.
_PDF_KEY_USAGE = KeyUsageConstraints(key_usage=SIGNER_KEY_USAGE.key_usage)


async def _validate_pdf_signatures(
    pdf: bytes, trust: TrustBundle | None, now: datetime
) -> list[tuple[Any, datetime]]:
    """pyHanko's status for each embedded signature, with the time it was checked at."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    statuses = []
    for embedded in reader.embedded_signatures:
        # Signed either way: the CMS signingTime attribute, else the signature dictionary's /M,
        # which lies inside the signed byte range.
        claimed = embedded.self_reported_timestamp
        moment = min(claimed, now) if claimed is not None else now
        status = await async_validate_pdf_signature(
            embedded, validation_context(trust, moment), key_usage_settings=_PDF_KEY_USAGE
        )
        statuses.append((status, moment))
    return statuses


@dataclass(frozen=True, slots=True)
class PdfSignatureCheck:
    """The worst verdict over a PDF's embedded signatures, and who made the verified ones."""

    info: SignatureInfo
    signers: tuple[SignerIdentity, ...] = ()


def verify_pdf(pdf: bytes, *, trust: TrustBundle | None, now: datetime) -> SignatureInfo | None:
    """The verdict alone (see `check_pdf`)."""
    check = check_pdf(pdf, trust=trust, now=now)
    return check.info if check is not None else None


def check_pdf(pdf: bytes, *, trust: TrustBundle | None, now: datetime) -> PdfSignatureCheck | None:
    """The verdict on a PDF's embedded signatures (the worst of them); None when it has none."""
    try:
        statuses = run_sync(_validate_pdf_signatures(pdf, trust, now))
    except Exception:  # noqa: BLE001 - pyHanko raises many types for a broken PDF; all mean invalid
        return PdfSignatureCheck(_invalid(UnverifiedReason.MALFORMED))
    if not statuses:
        return None
    checks = [_pdf_verdict(status, moment, trust) for status, moment in statuses]
    order = [SignatureVerdict.INVALID, SignatureVerdict.UNTRUSTED, SignatureVerdict.VERIFIED]
    worst = min((info for info, _ in checks), key=lambda info: order.index(info.verdict))
    return PdfSignatureCheck(worst, tuple(signer for _, signer in checks if signer is not None))


def _pdf_verdict(
    status: Any, moment: datetime, trust: TrustBundle | None
) -> tuple[SignatureInfo, SignerIdentity | None]:
    info = _pdf_info(status, moment, trust)
    if info.verdict is not SignatureVerdict.VERIFIED:
        return info, None
    return info, path_check(status.validation_path).signer


def _pdf_info(status: Any, moment: datetime, trust: TrustBundle | None) -> SignatureInfo:
    legacy = "sha1" in str(getattr(status, "md_algorithm", "")).lower()
    cn = None
    signer = getattr(status, "signing_cert", None)
    if signer is not None:
        cn = mask_personal_data(str(signer.subject.native.get("common_name", "")))[:_MAX_CN_CHARS]
    known: dict[str, Any] = {"legacy_algorithm": legacy, "signer_cn": cn or None}
    try:
        known["signing_time"] = moment.astimezone(UTC)
    except OverflowError:
        return _invalid(UnverifiedReason.MALFORMED, **known)
    if not (status.intact and status.valid) or signer is None:
        return _invalid(UnverifiedReason.SIGNATURE_MISMATCH, **known)
    # pyHanko's difference analysis of the revisions after the signed one: an incremental update
    # that rewrites page content (anything beyond form filling and annotations) is suspicious.
    if status.coverage is None or status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return _invalid(UnverifiedReason.MODIFIED_AFTER_SIGNING, **known)
    if status.modification_level is not None and not status.docmdp_ok:
        return _invalid(UnverifiedReason.MODIFIED_AFTER_SIGNING, **known)
    if not signer.not_valid_before <= moment <= signer.not_valid_after:
        return _invalid(UnverifiedReason.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME, **known)
    if not fits_for_signing(signer):
        return _invalid(UnverifiedReason.KEY_NOT_FOR_SIGNING, **known)
    if trust is None:
        return SignatureInfo(
            verdict=SignatureVerdict.UNTRUSTED, reason=UnverifiedReason.NO_TRUST_BUNDLE, **known
        )
    if not status.trusted or status.validation_path is None:
        if status.trust_problem_indic is AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND:
            return SignatureInfo(
                verdict=SignatureVerdict.UNTRUSTED,
                reason=UnverifiedReason.CHAIN_NOT_TRUSTED,
                **known,
            )
        return _invalid(UnverifiedReason.CHAIN_INVALID, **known)
    if not status.bottom_line:
        # Left by the checks above: the field's seed-value constraints or a timestamp token.
        return _invalid(UnverifiedReason.PDF_POLICY_FAILED, **known)
    chain = path_check(status.validation_path)
    known["legacy_algorithm"] = legacy or chain.legacy
    return SignatureInfo(verdict=SignatureVerdict.VERIFIED, **known)
