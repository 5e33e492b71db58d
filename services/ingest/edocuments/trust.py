"""Whether a signer's certificate may make a signature `verified`: the trust bundle, the chain's
constraints (by pyhanko-certvalidator), the key's usage, and who the signer is.

- The chain is built and validated by pyhanko-certvalidator (RFC 5280 path validation: basic
  constraints and `pathLenConstraint`, name constraints, key usage of the CAs, every certificate
  valid at the signing time), with the bundle's certificates as trust anchors whose own
  constraints apply too. Not a walk of our own: those are the rules a hand-written walk misses.
  SHA-1 certificate signatures still validate (older government CAs use them) and are reported
  as legacy; MD2 and MD5 do not. Revocation is not checked: no network on this path.
- The signer's key must be for signing: the key usage extension must be present and assert
  digitalSignature or nonRepudiation, and an extended key usage, where present, must name a
  purpose a document signer has (below) — a TLS server certificate (serverAuth only) is refused.

Pure apart from `load_trust_bundle`, which reads the bundle once at startup (`TrustBundleError`).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    PathValidationError,
    ValidationError,
)

from services.ingest.errors import TrustBundleError

_T = TypeVar("_T")

# Document-signing purposes. clientAuth is on the list because many CAs (Vietnamese ones
# included) issue personal signing certificates with clientAuth and emailProtection only.
SIGNING_PURPOSES = frozenset(
    {
        "email_protection",
        "client_auth",
        "1.3.6.1.5.5.7.3.36",  # id-kp-documentSigning (RFC 9336)
        "microsoft_document_signing",
        "adobe_authentic_documents_trust",
    }
)
SIGNER_KEY_USAGE = KeyUsageConstraints(
    key_usage=frozenset({"digital_signature", "non_repudiation"}),
    extd_key_usage=SIGNING_PURPOSES,
    # No extended key usage at all, or anyExtendedKeyUsage, means any purpose (RFC 5280).
    explicit_extd_key_usage_required=False,
)
# SHA-1 stays allowed in certificates (flagged legacy); these never are.
_WEAK_HASHES = frozenset({"md2", "md5"})


def to_asn1(certificate: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


class TrustBundle:
    """CA certificates that make a signer `verified`, loaded once and shared by every check,
    with the paths it validated (`check_chain`)."""

    def __init__(self, certificates: Sequence[x509.Certificate]) -> None:
        if not certificates:
            raise TrustBundleError("the trust bundle holds no certificates")
        self.certificates: tuple[x509.Certificate, ...] = tuple(certificates)
        self.paths = _PathCache()

    @classmethod
    def from_pem(cls, data: bytes) -> TrustBundle:
        try:
            return cls(x509.load_pem_x509_certificates(data))
        except ValueError as exc:
            raise TrustBundleError("the trust bundle is not a PEM file of certificates") from exc

    def __len__(self) -> int:
        return len(self.certificates)

    @cached_property
    def asn1_roots(self) -> list[Any]:
        """The same certificates as pyhanko-certvalidator wants them."""
        return [to_asn1(c) for c in self.certificates]

    @cached_property
    def anchors(self) -> list[CertTrustAnchor]:
        # The anchor's own basic constraints, path length and name constraints bind the path:
        # an operator who trusts a CA trusts it as far as it says it may be trusted.
        return [CertTrustAnchor(c, derive_default_quals_from_cert=True) for c in self.asn1_roots]


def validation_context(
    trust: TrustBundle | None, moment: datetime, others: Sequence[Any] = ()
) -> ValidationContext:
    """pyhanko-certvalidator's context at `moment` (no anchors without a bundle: nothing is
    trusted, never the system's TLS roots); `others` are the intermediates the signer sent."""
    return ValidationContext(
        trust_roots=trust.anchors if trust is not None else [],
        other_certs=list(others),
        moment=moment,
        allow_fetching=False,
        revocation_mode="soft-fail",
        weak_hash_algos=_WEAK_HASHES,
    )


def load_trust_bundle(path: str | Path) -> TrustBundle:
    """Read `GOVSYNC_TRUST_BUNDLE` (PEM CA certificates) once, at startup."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustBundleError(f"cannot read the trust bundle: {exc.strerror}") from exc
    return TrustBundle.from_pem(data)


@dataclass(frozen=True, slots=True)
class _ValidatedPath:
    valid_from: datetime
    valid_until: datetime
    check: ChainCheck


class _PathCache:
    """Paths pyhanko-certvalidator validated, by the certificates the signer sent.

    Without revocation checks the outcome depends on the moment only through the certificates'
    validity, so a path validated once holds for any moment inside every one of its
    certificates' validity (the anchor's included); outside it, or for a signer not seen yet,
    the path is validated again. Validation costs milliseconds (asn1crypto's name preparation),
    while a signer sends many documents. Only successes are kept, at most `size`, least
    recently used first out; thread-safe (normalisation runs in worker threads).
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._paths: OrderedDict[bytes, _ValidatedPath] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes, moment: datetime) -> ChainCheck | None:
        with self._lock:
            found = self._paths.get(key)
            if found is None or not found.valid_from <= moment <= found.valid_until:
                return None
            self._paths.move_to_end(key)
            return found.check

    def put(self, key: bytes, path: Any, check: ChainCheck) -> None:
        certificates = list(path.iter_certs(include_root=True))
        entry = _ValidatedPath(
            valid_from=max(c.not_valid_before for c in certificates),
            valid_until=min(c.not_valid_after for c in certificates),
            check=check,
        )
        with self._lock:
            self._paths[key] = entry
            self._paths.move_to_end(key)
            while len(self._paths) > self._size:
                self._paths.popitem(last=False)


def _path_key(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]) -> bytes:
    digest = hashlib.sha256(leaf.public_bytes(Encoding.DER))
    for der in sorted({c.public_bytes(Encoding.DER) for c in intermediates}):
        digest.update(hashlib.sha256(der).digest())
    return digest.digest()


def run_sync(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run pyHanko's coroutines from synchronous code, in or out of a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # An event loop cannot nest in a running one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="signature-check") as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- the signer ---------------------------------------------------------------------------------


def fits_for_signing(certificate: Any) -> bool:
    """`SIGNER_KEY_USAGE` holds for an asn1crypto certificate."""
    try:
        SIGNER_KEY_USAGE.validate(certificate)
    except InvalidCertificateError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    """Who signed, as the agency bindings compare it; none of it is published."""

    organisations: frozenset[str]
    """The subject's organisation (O) values."""
    organisation_identifiers: frozenset[str]
    """organizationIdentifier (2.5.4.97) and UID values of the subject."""
    issuer_sha256: str | None
    """SHA-256 (hex) of the certificate that issued the signer's, from the validated path."""

    @classmethod
    def of(cls, leaf: Any, issuer: Any | None) -> SignerIdentity:
        """From asn1crypto certificates: the signer's and its issuer's (None: not known)."""
        organisations: set[str] = set()
        identifiers: set[str] = set()
        for rdn in leaf.subject.chosen:
            for attribute in rdn:
                kind = attribute["type"].dotted
                value = attribute["value"].native
                if not isinstance(value, str):
                    continue
                if kind == "2.5.4.10":
                    organisations.add(value)
                elif kind in ("2.5.4.97", "0.9.2342.19200300.100.1.1"):
                    identifiers.add(value)
        fingerprint = hashlib.sha256(issuer.dump()).hexdigest() if issuer is not None else None
        return cls(frozenset(organisations), frozenset(identifiers), fingerprint)


class ChainVerdict(Enum):
    TRUSTED = "trusted"
    NOT_TRUSTED = "not_trusted"
    """No path to an anchor of the bundle."""
    INVALID = "invalid"
    """A path exists but breaks a rule: a constraint, an expired, not yet valid or revoked CA."""


@dataclass(frozen=True, slots=True)
class ChainCheck:
    verdict: ChainVerdict
    legacy: bool = False
    """SHA-1 in a certificate signature of the validated path."""
    signer: SignerIdentity | None = None


def check_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    trust: TrustBundle,
    moment: datetime,
) -> ChainCheck:
    """Validate the signer's path to `trust` at `moment` with pyhanko-certvalidator."""
    key = _path_key(leaf, intermediates)
    cached = trust.paths.get(key, moment)
    if cached is not None:
        return cached
    leaf_asn1 = to_asn1(leaf)
    context = validation_context(trust, moment, [to_asn1(c) for c in intermediates])
    validator = CertificateValidator(leaf_asn1, validation_context=context)
    try:
        path = run_sync(validator.async_validate_path())
    except (PathBuildingError, InvalidCertificateError):
        return ChainCheck(ChainVerdict.NOT_TRUSTED)
    except (PathValidationError, ValidationError):
        return ChainCheck(ChainVerdict.INVALID)
    check = path_check(path)
    trust.paths.put(key, path, check)
    return check


def path_check(path: Any) -> ChainCheck:
    """A validated pyhanko-certvalidator path, as ours (also used for pyHanko's PDF results)."""
    certificates = list(path.iter_certs(include_root=True))
    leaf = certificates[-1]
    issuer = certificates[-2] if len(certificates) > 1 else None
    # The anchor's self-signature is never checked, so its hash does not count.
    legacy = any(c.hash_algo == "sha1" for c in path.iter_certs(include_root=False))
    return ChainCheck(ChainVerdict.TRUSTED, legacy=legacy, signer=SignerIdentity.of(leaf, issuer))
