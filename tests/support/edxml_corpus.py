"""edXML packages made at test time, and a corpus of (name, bytes, expected outcome) cases.

`build_document` and `build_status` write packages the way real document systems do, variations
included; `corpus()` signs some with the test PKI and states what ingest must make of each. The
Kafka-level acceptance test reuses `corpus()` with the same trust bundle (`make_pki().bundle_pem`)
and the same clock (`NOW`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from schemas.edocument import Anomaly, BusinessType, EDocumentState, SignatureVerdict
from services.ingest.edocuments.binding import SignerBindings
from tests.support.pki import make_pki, sign_edxml, signed_pdf, signer_bindings, unsigned_pdf

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ISSUER = "000.00.00.G22"
RECIPIENT = "000.00.10.H29"
OWN_AGENCIES = frozenset({ISSUER})


def bindings() -> SignerBindings:
    """The issuer and the recipient bound to the test signer (`GOVSYNC_SIGNER_BINDINGS`)."""
    return SignerBindings(signer_bindings(ISSUER, RECIPIENT))


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes
    content_type: str = "application/pdf"
    content_id: str | None = None
    # Some senders put the attachments beside the envelope, under the root.
    beside_envelope: bool = False


def _element(tag: str, value: str | None, prefix: str) -> str:
    if value is None:
        return ""
    return f"<{prefix}{tag}>{escape(value)}</{prefix}{tag}>"


def build_document(
    *,
    organ_id: str = ISSUER,
    recipients: tuple[str, ...] = (RECIPIENT,),
    number: str = "123",
    notation: str = "QĐ-UBND",
    date: str = "2026/02/27",
    subject: str = "Về việc triển khai liên thông văn bản điện tử",
    business_type: int = 0,
    business_document_id: str | None = None,
    replaces: tuple[str, ...] = (),
    document_id: str | None = "",
    attachments: tuple[Attachment, ...] = (),
    manifest_only: tuple[str, ...] = (),
    namespace: bool = True,
) -> bytes:
    """A document package; `document_id=""` states the usual id, None leaves it out."""
    p = "edXML:" if namespace else ""
    xmlns = f' xmlns:edXML="{EDXML_NS}"' if namespace else ""
    if document_id == "":
        document_id = f"{organ_id},{date},{number}/{notation}"
    to = "".join(
        f"<{p}To>{_element('OrganId', r, p)}{_element('OrganName', 'Sở Nội vụ', p)}</{p}To>"
        for r in recipients
    )
    replacement = "".join(
        f"<{p}ReplacementInfo>{_element('DocumentId', r, p)}</{p}ReplacementInfo>" for r in replaces
    )
    references = "".join(
        f"<{p}Reference>{_element('ContentId', a.content_id or a.name, p)}"
        f"{_element('AttachmentName', a.name, p)}</{p}Reference>"
        for a in attachments
    ) + "".join(
        f"<{p}Reference>{_element('ContentId', name, p)}{_element('AttachmentName', name, p)}"
        f"</{p}Reference>"
        for name in manifest_only
    )

    def encoded(a: Attachment) -> str:
        text = base64.encodebytes(a.content).decode()
        return (
            f"<{p}Attachment>{_element('ContentId', a.content_id or a.name, p)}"
            f"{_element('AttachmentName', a.name, p)}{_element('ContentType', a.content_type, p)}"
            f"<{p}ContentTransferEncoded>{text}</{p}ContentTransferEncoded></{p}Attachment>"
        )

    inside = "".join(encoded(a) for a in attachments if not a.beside_envelope)
    beside = "".join(encoded(a) for a in attachments if a.beside_envelope)
    header = (
        f"<{p}MessageHeader>"
        f"<{p}From>{_element('OrganId', organ_id, p)}"
        f"{_element('OrganName', 'UBND tỉnh Thử Nghiệm', p)}</{p}From>{to}"
        f"<{p}Code>{_element('CodeNumber', number, p)}"
        f"{_element('CodeNotation', notation, p)}</{p}Code>"
        f"<{p}PromulgationInfo>{_element('Place', 'Hà Nội', p)}"
        f"{_element('PromulgationDate', date, p)}</{p}PromulgationInfo>"
        f"<{p}DocumentType>{_element('Type', '1', p)}{_element('TypeName', 'Quyết định', p)}"
        f"</{p}DocumentType>{_element('Subject', subject, p)}"
        f"<{p}SignerInfo>{_element('Competence', 'TM. UBND', p)}"
        f"{_element('Position', 'Chủ tịch', p)}{_element('FullName', 'Nguyễn Văn A', p)}"
        f"</{p}SignerInfo>{_element('DueDate', '2026/03/15', p)}"
        f"{_element('DocumentId', document_id, p)}</{p}MessageHeader>"
        f"<{p}TraceHeaderList><{p}TraceHeader>{_element('OrganId', organ_id, p)}"
        f"{_element('Timestamp', '2026/02/27 10:00:00', p)}</{p}TraceHeader>"
        f"<{p}Bussiness>{_element('BussinessDocType', str(business_type), p)}"
        f"{_element('DocumentId', business_document_id, p)}"
        f"<{p}ReplacementInfoList>{replacement}</{p}ReplacementInfoList></{p}Bussiness>"
        f"</{p}TraceHeaderList>"
    )
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?><{p}edXML{xmlns}><{p}edXMLEnvelope>'
        f"<{p}edXMLHeader>{header}</{p}edXMLHeader>"
        f"<{p}edXMLBody><{p}edXMLManifest>{references}</{p}edXMLManifest>"
        f"<{p}AttachmentEncoded>{inside}</{p}AttachmentEncoded></{p}edXMLBody>"
        f"</{p}edXMLEnvelope>{beside}</{p}edXML>"
    )
    return text.encode()


def build_status(
    code: str,
    *,
    response_for: str = f"{ISSUER},2026/02/27,123/QĐ-UBND",
    timestamp: str = "2026/02/28 09:30:00",
    responder: str = RECIPIENT,
    soap: bool = False,
) -> bytes:
    """A status package; `soap=True` writes it as some systems do, in a SOAP header."""
    body = (
        f"<edXML:ResponseFor><edXML:OrganId>{ISSUER}</edXML:OrganId>"
        f"<edXML:Code>123/QĐ-UBND</edXML:Code><edXML:PromulgationDate>2026/02/27"
        f"</edXML:PromulgationDate><edXML:DocumentId>{escape(response_for)}</edXML:DocumentId>"
        f"</edXML:ResponseFor><edXML:From><edXML:OrganId>{responder}</edXML:OrganId>"
        f"<edXML:OrganName>Sở Nội vụ</edXML:OrganName></edXML:From>"
        f"<edXML:StatusCode>{code}</edXML:StatusCode>"
        f"<edXML:Description>Đã xử lý</edXML:Description>"
        f"<edXML:Timestamp>{timestamp}</edXML:Timestamp>"
        f"<edXML:StaffInfo><edXML:Staff>Trần Thị B</edXML:Staff></edXML:StaffInfo>"
    )
    if soap:
        soap_ns = "http://schemas.xmlsoap.org/soap/envelope/"
        text = (
            f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{soap_ns}"><SOAP-ENV:Header>'
            f'<edXML:Status xmlns:edXML="{soap_ns}">{body}</edXML:Status>'
            "</SOAP-ENV:Header><SOAP-ENV:Body/></SOAP-ENV:Envelope>"
        )
    else:
        text = (
            f'<edXML:edXMLEnvelope xmlns:edXML="{EDXML_NS}"><edXML:edXMLHeader><edXML:Status>'
            f"{body}</edXML:Status></edXML:edXMLHeader></edXML:edXMLEnvelope>"
        )
    return b'<?xml version="1.0" encoding="UTF-8"?>' + text.encode()


# --- hostile and broken packages ------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<edXML xmlns="'
    + EDXML_NS.encode()
    + b'"><MessageHeader><Subject>&lol9;</Subject>'
    b"</MessageHeader></edXML>"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<edXML xmlns="' + EDXML_NS.encode() + b'"><MessageHeader><Subject>&xxe;</Subject>'
    b"</MessageHeader></edXML>"
)


def deep_nesting(levels: int = 200) -> bytes:
    return b"<edXML>" + b"<a>" * levels + b"</a>" * levels + b"</edXML>"


def with_subject(xml: bytes, subject: str) -> bytes:
    """Change the subject after signing: what a tamperer would do."""
    return xml.replace(
        "Về việc triển khai liên thông văn bản điện tử".encode(), subject.encode(), 1
    )


def truncate_certificate(xml: bytes) -> bytes:
    """Cut the first embedded certificate in half, as broken senders do."""
    start = xml.index(b"X509Certificate>") + len(b"X509Certificate>")
    end = xml.index(b"</", start)
    return xml[: start + (end - start) // 2] + xml[end:]


def move_signature_namespace(xml: bytes) -> bytes:
    """Put the signature in the edXML namespace instead of XML-DSig's."""
    return xml.replace(b"http://www.w3.org/2000/09/xmldsig#", EDXML_NS.encode() + b"#dsig")


# --- the corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What ingest must make of a case: a record (with these properties), a status, or an error."""

    kind: str  # "document" | "status" | "error"
    verdict: SignatureVerdict | None = None
    legacy: bool = False
    business_type: BusinessType | None = None
    state: EDocumentState | None = None
    error: str | None = None  # the `reason` of the EdxmlError subclass
    anomalies: frozenset[Anomaly] = field(default_factory=frozenset)
    # Attachment name -> verdict on its embedded signature (None: not signed).
    attachments_signed: dict[str, SignatureVerdict | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    expected: Expected


def corpus() -> list[Case]:
    """Cases for a run with the test PKI's bundle and `bindings()` configured, the clock at
    `NOW`."""
    pki = make_pki()
    plain = build_document()
    signed = sign_edxml(plain, pki.signer)
    pdf = signed_pdf(pki.signer)
    doc = "document"
    cases = [
        Case("signed-sha256", signed, Expected(doc, SignatureVerdict.VERIFIED)),
        Case(
            "signed-rsa-sha1",
            sign_edxml(
                build_document(number="124"), pki.signer, algorithm="rsa-sha1", digest="sha1"
            ),
            Expected(doc, SignatureVerdict.VERIFIED, legacy=True),
        ),
        Case("unsigned", build_document(number="125"), Expected(doc, SignatureVerdict.UNSIGNED)),
        Case(
            "tampered-subject",
            with_subject(sign_edxml(build_document(number="126"), pki.signer), "Nội dung khác"),
            Expected(doc, SignatureVerdict.INVALID),
        ),
        Case(
            "key-certificate-mismatch",
            sign_edxml(build_document(number="127"), pki.signer, embed=pki.stranger_signer),
            Expected(doc, SignatureVerdict.INVALID),
        ),
        Case(
            "expired-certificate",
            sign_edxml(build_document(number="128"), pki.expired_signer),
            Expected(doc, SignatureVerdict.INVALID),
        ),
        Case(
            "truncated-certificate",
            truncate_certificate(sign_edxml(build_document(number="129"), pki.signer)),
            Expected(doc, SignatureVerdict.INVALID),
        ),
        Case(
            "signature-wrong-namespace",
            move_signature_namespace(sign_edxml(build_document(number="130"), pki.signer)),
            Expected(
                doc,
                SignatureVerdict.INVALID,
                anomalies=frozenset({Anomaly.SIGNATURE_WRONG_NAMESPACE}),
            ),
        ),
        Case(
            "untrusted-ca",
            sign_edxml(build_document(number="131"), pki.stranger_signer),
            Expected(doc, SignatureVerdict.UNTRUSTED),
        ),
        Case(
            "irregular-organ-id",
            build_document(organ_id="H29.12", number="132"),
            Expected(
                doc,
                SignatureVerdict.UNSIGNED,
                anomalies=frozenset({Anomaly.IRREGULAR_ORGAN_ID}),
            ),
        ),
        Case(
            "no-namespace",
            build_document(number="133", namespace=False),
            Expected(
                doc, SignatureVerdict.UNSIGNED, anomalies=frozenset({Anomaly.NAMESPACE_MISSING})
            ),
        ),
        Case(
            "attachments-beside-envelope-with-signed-pdf",
            sign_edxml(
                build_document(
                    number="134",
                    attachments=(
                        Attachment("qd.pdf", pdf, beside_envelope=True),
                        Attachment("phu-luc.pdf", unsigned_pdf()),
                    ),
                ),
                pki.signer,
            ),
            Expected(
                doc,
                SignatureVerdict.VERIFIED,
                anomalies=frozenset({Anomaly.ATTACHMENTS_OUTSIDE_BODY}),
                attachments_signed={"qd.pdf": SignatureVerdict.VERIFIED, "phu-luc.pdf": None},
            ),
        ),
        Case(
            "revoked",
            build_document(number="123", business_type=1, business_document_id=None),
            Expected(doc, SignatureVerdict.UNSIGNED, business_type=BusinessType.REVOKED),
        ),
        Case(
            "replaced",
            build_document(
                number="135",
                business_type=3,
                replaces=(f"{ISSUER},2026/02/27,123/QĐ-UBND",),
            ),
            Expected(doc, SignatureVerdict.UNSIGNED, business_type=BusinessType.REPLACED),
        ),
        Case("billion-laughs", BILLION_LAUGHS, Expected("error", error="hostile_xml")),
        Case("xxe-etc-passwd", XXE, Expected("error", error="hostile_xml")),
        Case("deep-nesting", deep_nesting(), Expected("error", error="too_deep")),
        Case("not-xml", b"{not xml", Expected("error", error="malformed_xml")),
    ]
    for code, state in (
        ("01", EDocumentState.DELIVERED),
        ("02", EDocumentState.REJECTED),
        ("03", EDocumentState.REGISTERED),
        ("04", EDocumentState.ASSIGNED),
        ("05", EDocumentState.IN_PROCESS),
        ("06", EDocumentState.FINISHED),
        ("13", EDocumentState.RECALLED),
        ("15", EDocumentState.RECALL_ACCEPTED),
        ("16", EDocumentState.RECALL_REFUSED),
    ):
        cases.append(Case(f"status-{code}", build_status(code), Expected("status", state=state)))
    cases.append(
        Case(
            "status-soap-wrapped",
            build_status("03", soap=True),
            Expected(
                "status",
                state=EDocumentState.REGISTERED,
                anomalies=frozenset({Anomaly.NAMESPACE_UNEXPECTED}),
            ),
        )
    )
    return cases
