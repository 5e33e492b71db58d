"""E-document normalisation: edXML package bytes in, `EDocumentRecord` (or
`EDocumentStatusRecord`) out, its signatures verified.

Pure: the clock, the trust bundle and the limits come in as arguments. The parsing errors are
the `EdxmlError` subtree of `services/ingest/errors.py` (none is retryable); a bad signature is
a verdict in the record, never an error.

Call `normalise_edocument` off the event loop (`asyncio.to_thread`): signature checks are CPU
work, and pyHanko runs an event loop of its own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from schemas.edocument import (
    STATUS_CODES,
    Anomaly,
    Direction,
    DocumentType,
    EDocumentAttachment,
    EDocumentRecord,
    EDocumentStatusRecord,
    Organ,
    is_regular_organ_id,
)
from services.ingest.edocuments.binding import SignerBindings
from services.ingest.edocuments.edxml import (
    AttachmentInfo,
    OrganInfo,
    find_signature,
    parse_date,
    parse_timestamp,
    parse_xml,
    read_document,
    read_status,
    refuse_wrapped_content,
)
from services.ingest.edocuments.signature import check_pdf, check_xml_signature
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.errors import (
    AttachmentTooLargeError,
    EdxmlFieldError,
    MalformedXmlError,
    RequestTooLargeError,
    at_stage,
)
from services.ingest.settings import EdxmlLimits


class VerificationBudget:
    """PDF signature checks an HTTP request may still ask for, shared by its events in turn."""

    def __init__(self, pdfs: int) -> None:
        self.remaining = pdfs

    def spend(self, pdfs: int) -> None:
        if pdfs > self.remaining:
            raise RequestTooLargeError(
                "the request's packages ask for more PDF signature checks than one request may;"
                " send them in smaller requests"
            )
        self.remaining -= pdfs


@dataclass(frozen=True, slots=True)
class EventContext:
    """Where the package came from: CloudEvent attributes, or the Kafka record's for bare XML."""

    source: str
    event_id: str
    event_time: datetime


# --- text hygiene ---------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def clean_text(value: str | None, limit: int) -> tuple[str | None, bool]:
    """NFC, control characters dropped, whitespace collapsed, cut at `limit`; and if it was cut."""
    if value is None:
        return None, False
    text = _SPACES.sub(" ", _CONTROL.sub("", unicodedata.normalize("NFC", value))).strip()
    if not text:
        return None, False
    if len(text) > limit:
        return text[:limit], True
    return text, False


def _organ(info: OrganInfo) -> Organ:
    organ_id = clean_text(info.organ_id, 64)[0]
    return Organ(
        organ_id=organ_id,
        name=clean_text(info.name, 500)[0],
        code_valid=organ_id is not None and is_regular_organ_id(organ_id),
    )


def _document_id(
    stated: str | None,
    issuer: str | None,
    date: datetime | None,
    number: str | None,
    notation: str | None,
) -> tuple[str, bool]:
    """The stated DocumentId, else `OrganId,yyyy/MM/dd,Number/Notation` built from its parts."""
    cleaned = clean_text(stated, 300)[0]
    if cleaned:
        return cleaned.replace(" ", ""), False
    if issuer is None or date is None or not (number or notation):
        raise EdxmlFieldError("no DocumentId, and not enough fields to derive one")
    code = "/".join(part for part in (number, notation) if part)
    return f"{issuer},{date:%Y/%m/%d},{code}", True


_NO_BINDINGS = SignerBindings()


def _attachment(
    info: AttachmentInfo,
    *,
    trust: TrustBundle | None,
    bindings: SignerBindings,
    agency: str | None,
    now: datetime,
) -> EDocumentAttachment:
    signature = None
    if info.is_pdf and info.encoded is not None:
        import binascii

        try:
            content = binascii.a2b_base64(info.encoded, strict_mode=True)
        except binascii.Error as exc:
            raise MalformedXmlError("attachment content is not base64") from exc
        check = check_pdf(content, trust=trust, now=now)
        del content
        if check is not None:
            signature = bindings.bind(check.info, check.signers, agency)
    return EDocumentAttachment(
        content_id=clean_text(info.content_id, 256)[0],
        name=clean_text(info.name, 500)[0],
        content_type=clean_text(info.content_type, 200)[0],
        size_bytes=info.size_bytes,
        enclosed=info.encoded is not None,
        signed=signature is not None,
        signature=signature,
    )


def normalise_edocument(
    raw: bytes,
    *,
    own_agencies: frozenset[str],
    trust: TrustBundle | None,
    now: datetime,
    limits: EdxmlLimits,
    context: EventContext,
    bindings: SignerBindings = _NO_BINDINGS,
    budget: VerificationBudget | None = None,
) -> EDocumentRecord:
    """Parse, check and normalise one document package; raises an `EdxmlError` subclass.

    The signature is checked first: once its cryptography holds, every field is read from what
    it covers (`XmlSignatureCheck.signed_root`), never from the rest of the package. A verified
    signature (the package's and each PDF's) also needs a signer bound to the issuing agency
    (`bindings`; none by default, so nothing is verified without them). `budget`, at the HTTP
    intake, is what the request's other packages left of its PDF checks.
    """
    root = parse_xml(raw, limits)
    refuse_wrapped_content(root)
    found = find_signature(root)
    # A defect a package triggers in the checks is named by their stage.
    with at_stage("signature"):
        check = check_xml_signature(raw, found, trust=trust, now=now)
    covered = check.signed_root if check.signed_root is not None else root
    document = read_document(covered, limits, found)
    anomalies = set(document.anomalies)
    # Counted before any is verified: the cost is refused, not spent.
    pdfs = sum(1 for a in document.attachments if a.is_pdf and a.encoded is not None)
    if pdfs > limits.max_pdfs:
        raise AttachmentTooLargeError(f"more than {limits.max_pdfs} PDF attachments to verify")
    if budget is not None:
        budget.spend(pdfs)

    issuer = _organ(document.issuer)
    recipients = tuple(_organ(info) for info in document.recipients)
    if not issuer.code_valid or not all(r.code_valid for r in recipients):
        anomalies.add(Anomaly.IRREGULAR_ORGAN_ID)
    promulgation = parse_date(document.promulgation_date_text)
    due = parse_date(document.due_date_text)
    if (document.promulgation_date_text and promulgation is None) or (
        document.due_date_text and due is None
    ):
        anomalies.add(Anomaly.DATE_UNPARSEABLE)
    number = clean_text(document.code_number, 64)[0]
    notation = clean_text(document.code_notation, 200)[0]
    document_id, derived = _document_id(
        document.document_id, issuer.organ_id, promulgation, number, notation
    )
    if derived:
        anomalies.add(Anomaly.DOCUMENT_ID_DERIVED)
    subject, truncated = clean_text(document.subject, limits.max_subject_chars)
    if truncated:
        anomalies.add(Anomaly.SUBJECT_TRUNCATED)

    agency = issuer.organ_id if issuer.code_valid else None
    with at_stage("signature"):
        signature = bindings.bind(check.info, (check.signer,) if check.signer else (), agency)
        attachments = tuple(
            _attachment(a, trust=trust, bindings=bindings, agency=agency, now=now)
            for a in document.attachments
        )
    document_type = None
    if document.document_type_code or document.document_type_name:
        document_type = DocumentType(
            code=clean_text(document.document_type_code, 32)[0],
            name=clean_text(document.document_type_name, 200)[0],
        )
    return EDocumentRecord(
        document_id=document_id,
        issuer=issuer,
        recipients=recipients,
        number=number,
        notation=notation,
        document_type=document_type,
        subject=subject,
        promulgation_date=promulgation,
        due_date=due,
        business_type=document.business_type,
        replaces=tuple(r for r in (clean_text(x, 300)[0] for x in document.replaces) if r),
        direction=Direction.OUTGOING if issuer.organ_id in own_agencies else Direction.INCOMING,
        attachments=attachments,
        signature=signature,
        anomalies=tuple(sorted(anomalies)),
        agency=issuer.organ_id,
        package_sha256=hashlib.sha256(raw).hexdigest(),
        source=context.source,
        event_id=context.event_id,
        event_time=context.event_time,
        ingested_at=now,
    )


def normalise_edocument_status(
    raw: bytes, *, now: datetime, limits: EdxmlLimits, context: EventContext
) -> EDocumentStatusRecord:
    """Parse and normalise one status package; raises an `EdxmlError` subclass."""
    status = read_status(parse_xml(raw, limits))
    anomalies = set(status.anomalies)
    code = (status.status_code or "").strip()
    code = code.zfill(2) if code.isdigit() and len(code) == 1 else code
    state = STATUS_CODES.get(code)
    if state is None:
        raise EdxmlFieldError("StatusCode is missing or not one of 01-06, 13, 15, 16")
    timestamp = parse_timestamp(status.timestamp_text)
    if timestamp is None:
        raise EdxmlFieldError("Timestamp is missing or unreadable")
    responder = _organ(status.responder)
    if not responder.code_valid:
        anomalies.add(Anomaly.IRREGULAR_ORGAN_ID)
    document_id = clean_text(status.response_for, 300)[0]
    if document_id is None:
        date = parse_date(status.response_for_date_text)
        organ = clean_text(status.response_for_organ, 64)[0]
        code_text = clean_text(status.response_for_code, 200)[0]
        if organ is None or date is None or code_text is None:
            raise EdxmlFieldError("ResponseFor names no document")
        document_id = f"{organ},{date:%Y/%m/%d},{code_text}"
        anomalies.add(Anomaly.DOCUMENT_ID_DERIVED)
    return EDocumentStatusRecord(
        document_id=document_id.replace(" ", ""),
        status_code=code,
        state=state,
        responder=responder,
        description=clean_text(status.description, 1000)[0],
        timestamp=timestamp,
        anomalies=tuple(sorted(anomalies)),
        source=context.source,
        event_id=context.event_id,
        event_time=context.event_time,
        ingested_at=now,
    )
