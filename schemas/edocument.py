"""E-document contracts: the normalised records ingest publishes for edXML packages (QCVN 102:2016).

The inbound side is XML, not JSON, so there is no `...Event` model here: in
`services/ingest/edocuments/`, `edxml.py` reads the package and `normalise.py` builds these strict
records from it. The records never carry attachment content or the signer's personal data
(DOMAIN.md §5).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "ORGAN_ID_PATTERN",
    "SCHEMA_MODELS",
    "STATUS_CODES",
    "Anomaly",
    "BusinessType",
    "Direction",
    "DocumentType",
    "EDocumentAttachment",
    "EDocumentRecord",
    "EDocumentState",
    "EDocumentStatusRecord",
    "Organ",
    "SignatureAlgorithm",
    "SignatureInfo",
    "SignatureVerdict",
    "UnverifiedReason",
    "is_regular_organ_id",
]

_OUTBOUND = ConfigDict(extra="forbid", frozen=True)

ORGAN_ID_PATTERN = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
"""Agency identifiers such as `000.00.00.G22`: four dot-separated groups, the last a letter and two
digits (DOMAIN.md §3). Codes of another form are kept as sent and flagged, never dropped."""


def is_regular_organ_id(code: str) -> bool:
    """Whether `code` has the four-group form; an unknown but well-formed code is still regular."""
    return ORGAN_ID_PATTERN.fullmatch(code) is not None


class BusinessType(StrEnum):
    """`TraceHeaderList/Bussiness/BussinessDocType` (0 to 3)."""

    NEW = "new"
    REVOKED = "revoked"
    UPDATED = "updated"
    REPLACED = "replaced"


class Direction(StrEnum):
    """`outgoing` when the issuer is one of our own agencies, else `incoming`."""

    OUTGOING = "outgoing"
    INCOMING = "incoming"


class SignatureVerdict(StrEnum):
    """What the signature check concluded.

    Only `verified` means a valid signature by a certificate that chains to the configured trust
    bundle and was valid when the package was signed.
    """

    VERIFIED = "verified"
    UNTRUSTED = "untrusted"
    INVALID = "invalid"
    UNSIGNED = "unsigned"


class UnverifiedReason(StrEnum):
    """Why a signature is not `verified`: a closed set, safe as a metric label."""

    NO_TRUST_BUNDLE = "no_trust_bundle"
    CHAIN_NOT_TRUSTED = "chain_not_trusted"
    WRONG_NAMESPACE = "wrong_namespace"
    MALFORMED = "malformed"
    NO_CERTIFICATE = "no_certificate"
    CERTIFICATE_UNPARSEABLE = "certificate_unparseable"
    CERTIFICATE_NOT_VALID_AT_SIGNING_TIME = "certificate_not_valid_at_signing_time"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    REFERENCE_NOT_WHOLE_DOCUMENT = "reference_not_whole_document"
    DIGEST_MISMATCH = "digest_mismatch"
    SIGNATURE_MISMATCH = "signature_mismatch"
    KEY_NOT_FOR_SIGNING = "key_not_for_signing"
    """No digitalSignature or nonRepudiation key usage, or no signing purpose in the EKU."""
    CHAIN_INVALID = "chain_invalid"
    """A path to the bundle breaks its rules: path length, name constraints, a CA not valid."""
    MODIFIED_AFTER_SIGNING = "modified_after_signing"
    """A PDF changed after signing beyond what its signature allows (pyHanko's diff analysis)."""
    SIGNER_NOT_BOUND = "signer_not_bound"
    """A valid signer that is not bound to the issuing agency (`GOVSYNC_SIGNER_BINDINGS`)."""
    PDF_POLICY_FAILED = "pdf_policy_failed"
    """A PDF's seed-value constraints or its timestamp token failed pyHanko's bottom line."""


class SignatureAlgorithm(StrEnum):
    """XML-DSig signature methods seen in practice; `other` for anything else that verified."""

    RSA_SHA1 = "rsa-sha1"
    RSA_SHA256 = "rsa-sha256"
    RSA_SHA384 = "rsa-sha384"
    RSA_SHA512 = "rsa-sha512"
    ECDSA_SHA1 = "ecdsa-sha1"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    ECDSA_SHA512 = "ecdsa-sha512"
    OTHER = "other"


class Anomaly(StrEnum):
    """Irregularities that were tolerated and kept: a closed set, safe as a metric label."""

    IRREGULAR_ORGAN_ID = "irregular_organ_id"
    NAMESPACE_MISSING = "namespace_missing"
    NAMESPACE_UNEXPECTED = "namespace_unexpected"
    SIGNATURE_WRONG_NAMESPACE = "signature_wrong_namespace"
    ATTACHMENTS_OUTSIDE_BODY = "attachments_outside_body"
    ATTACHMENT_NOT_ENCLOSED = "attachment_not_enclosed"
    DOCUMENT_ID_DERIVED = "document_id_derived"
    DATE_UNPARSEABLE = "date_unparseable"
    SUBJECT_TRUNCATED = "subject_truncated"
    BUSINESS_TYPE_UNKNOWN = "business_type_unknown"


class Organ(BaseModel):
    """An agency as the package names it; `code_valid` is False when `organ_id` is irregular."""

    model_config = _OUTBOUND
    organ_id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=500)
    code_valid: bool


class DocumentType(BaseModel):
    model_config = _OUTBOUND
    code: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)


class SignatureInfo(BaseModel):
    """The verdict on one signature and what was learned checking it. No personal data."""

    model_config = _OUTBOUND
    verdict: SignatureVerdict
    algorithm: SignatureAlgorithm | None = None
    legacy_algorithm: bool = Field(
        default=False, description="SHA-1 in the signature method, a digest or the chain."
    )
    signer_cn: str | None = Field(
        default=None,
        max_length=200,
        description="Signer certificate's common name with ID numbers, phones and e-mail masked.",
    )
    signing_time: AwareDatetime | None = Field(
        default=None, description="The time the certificate was checked at."
    )
    reason: UnverifiedReason | None = Field(default=None, description="Set unless verified.")


class EDocumentAttachment(BaseModel):
    """An attachment's description; the content stays in the package, never in the record."""

    model_config = _OUTBOUND
    content_id: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=500)
    content_type: str | None = Field(default=None, max_length=200)
    size_bytes: int | None = Field(
        default=None, ge=0, description="Decoded size; None when the package does not enclose it."
    )
    enclosed: bool = Field(description="Whether the package carries the content.")
    signed: bool = Field(description="A PDF with at least one embedded signature.")
    signature: SignatureInfo | None = Field(default=None, description="Set when signed.")


class EDocumentRecord(BaseModel):
    """One edXML package, published on the normalised topic keyed by `document_id`."""

    model_config = _OUTBOUND

    document_id: str = Field(
        min_length=1, max_length=300, description="`OrganId,yyyy/MM/dd,Number/Notation`."
    )
    issuer: Organ
    recipients: tuple[Organ, ...] = ()
    number: str | None = Field(default=None, max_length=64)
    notation: str | None = Field(default=None, max_length=200)
    document_type: DocumentType | None = None
    subject: str | None = Field(
        default=None, description="NFC, control characters stripped, bounded."
    )
    promulgation_date: AwareDatetime | None = Field(
        default=None, description="Midnight of the promulgation day in Asia/Ho_Chi_Minh."
    )
    due_date: AwareDatetime | None = None
    business_type: BusinessType
    replaces: tuple[str, ...] = Field(
        default=(), description="DocumentIds this package revokes, updates or replaces."
    )
    direction: Direction
    attachments: tuple[EDocumentAttachment, ...] = ()
    signature: SignatureInfo
    anomalies: tuple[Anomaly, ...] = ()
    agency: str | None = Field(description="The issuer's OrganId, as sent.")
    package_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the package bytes."
    )
    source: str
    event_id: str
    event_time: AwareDatetime
    ingested_at: AwareDatetime


class EDocumentState(StrEnum):
    """Status package codes (DOMAIN.md §3), named."""

    DELIVERED = "delivered"
    REJECTED = "rejected"
    REGISTERED = "registered"
    ASSIGNED = "assigned"
    IN_PROCESS = "in_process"
    FINISHED = "finished"
    RECALLED = "recalled"
    RECALL_ACCEPTED = "recall_accepted"
    RECALL_REFUSED = "recall_refused"


STATUS_CODES: dict[str, EDocumentState] = {
    "01": EDocumentState.DELIVERED,
    "02": EDocumentState.REJECTED,
    "03": EDocumentState.REGISTERED,
    "04": EDocumentState.ASSIGNED,
    "05": EDocumentState.IN_PROCESS,
    "06": EDocumentState.FINISHED,
    "13": EDocumentState.RECALLED,
    "15": EDocumentState.RECALL_ACCEPTED,
    "16": EDocumentState.RECALL_REFUSED,
}


class EDocumentStatusRecord(BaseModel):
    """One status package about a document, keyed by the document it answers (`ResponseFor`)."""

    model_config = _OUTBOUND

    document_id: str = Field(min_length=1, max_length=300)
    status_code: str = Field(pattern=r"^\d{2}$")
    state: EDocumentState
    responder: Organ
    description: str | None = Field(default=None, max_length=1000)
    timestamp: AwareDatetime
    anomalies: tuple[Anomaly, ...] = ()
    source: str
    event_id: str
    event_time: AwareDatetime
    ingested_at: AwareDatetime


SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "edocument-record": EDocumentRecord,
    "edocument-status-record": EDocumentStatusRecord,
}
"""Names under which the JSON Schemas of these records are exported (`model_json_schema()`)."""
