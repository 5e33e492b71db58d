"""Hardened edXML reading (QCVN 102:2016): refuses hostile XML, bounds its cost, reads the package.

It raises the `EdxmlError` subtree of `services/ingest/errors.py` (none is retryable: the same
bytes fail the same way every time, so a caller dead-letters the package and moves on).

Real packages vary, so elements are found by local name wherever they sit (a missing or wrong
namespace, a SOAP wrapper, attachments beside the envelope) and the irregularity is recorded as
an `Anomaly` rather than refused. Messages name elements and sizes, never element text.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from schemas.edocument import Anomaly, BusinessType
from services.common import dates
from services.ingest.errors import (
    AttachmentTooLargeError,
    HostileXmlError,
    MalformedXmlError,
    NotEdxmlError,
    WrappedContentError,
    XmlTooDeepError,
    XmlTooLargeError,
)
from services.ingest.settings import EdxmlLimits

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

_FEED_CHUNK = 1 << 16
# A base64 prefix long enough to sniff `%PDF-` without decoding the whole attachment.
_SNIFF_CHARS = 12


# --- safe parsing ---------------------------------------------------------------------------

# Everything XML allows before the root element except a DOCTYPE: whitespace, the declaration,
# comments and processing instructions. A DOCTYPE can only come right after these.
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_PROLOG_STR = re.compile(r"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_UTF8_BOM = codecs.BOM_UTF8
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _refuse_doctype(raw: bytes) -> None:
    """Refuse a DOCTYPE before libxml2 sees it: entities are never declared, so never expanded.

    Scans only the prolog, so the cost is the prolog's length, not the document's.
    """
    for bom, codec in _WIDE_BOMS:
        if raw.startswith(bom):
            # Wide encodings are rare in edXML; decoding is bounded by max_bytes already.
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise MalformedXmlError("undecodable XML") from exc
            end = _PROLOG_STR.match(text, 1 if text.startswith("\ufeff") else 0)
            wide_head = text[end.end() if end else 0 :][:9]
            if wide_head.upper() == "<!DOCTYPE":
                raise HostileXmlError("DOCTYPE declarations are refused")
            return
    start = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
    match = _PROLOG.match(raw, start)
    head = raw[match.end() if match else start :][:9]
    if head.upper() == b"<!DOCTYPE":
        raise HostileXmlError("DOCTYPE declarations are refused")


def parse_xml(raw: bytes, limits: EdxmlLimits) -> etree._Element:
    """Parse `raw` with every lxml hazard switched off and the package's bounds enforced."""
    if len(raw) > limits.max_bytes:
        raise XmlTooLargeError(f"package of {len(raw)} bytes is over {limits.max_bytes}")
    _refuse_doctype(raw)
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    depth = nodes = 0

    def track_depth() -> None:
        nonlocal depth, nodes
        for event, element in parser.read_events():
            if event == "start":
                depth += 1
                if depth > limits.max_depth:
                    raise XmlTooDeepError(f"elements nest deeper than {limits.max_depth}")
                # At most one chunk (64 KiB) is parsed beyond the budget before this sees it.
                nodes += 1 + len(element.attrib)
                if nodes > limits.max_nodes:
                    raise XmlTooLargeError(f"more than {limits.max_nodes} elements and attributes")
            else:
                depth -= 1

    try:
        for offset in range(0, len(raw), _FEED_CHUNK):
            parser.feed(raw[offset : offset + _FEED_CHUNK])
            track_depth()
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        # libxml2's own depth cap (256) can trip inside one chunk before we see its events:
        # the events parsed so far are still queued and tell which limit it was.
        track_depth()
        # Translated by libxml2's error code; the message may quote the package, so it is dropped.
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            raise XmlTooLargeError("a node is over libxml2's limits") from None
        raise MalformedXmlError(f"not well-formed XML (libxml2 error {exc.code})") from None
    docinfo = root.getroottree().docinfo
    # Belt and braces for encodings the prolog scan could not read.
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise HostileXmlError("DOCTYPE declarations are refused")
    return root


# --- local-name navigation ------------------------------------------------------------------


def local_name(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def namespace_of(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].partition("}")[0]


def child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    for item in element:
        if local_name(item) == name:
            return item
    return None


def children(element: etree._Element | None, name: str) -> list[etree._Element]:
    if element is None:
        return []
    return [item for item in element if local_name(item) == name]


def descendants(element: etree._Element, name: str) -> Iterator[etree._Element]:
    """Elements named `name` in any namespace or none, in document order."""
    yield from element.iter(f"{{*}}{name}")


def first(element: etree._Element, name: str) -> etree._Element | None:
    return next(descendants(element, name), None)


def _first_of(element: etree._Element, *names: str) -> etree._Element | None:
    # Never `first(a) or first(b)`: an element without children is falsy.
    for name in names:
        found = first(element, name)
        if found is not None:
            return found
    return None


def text_of(element: etree._Element | None, *path: str) -> str | None:
    """Stripped text at `path` under `element`; None when absent or blank."""
    for name in path:
        element = child(element, name)
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None


# --- dates ----------------------------------------------------------------------------------


def parse_date(value: str | None) -> datetime | None:
    """`yyyy/MM/dd` (and the variants real systems send, `dates.EDXML_DATES`) as midnight in
    Asia/Ho_Chi_Minh; a time after the date is ignored. None when unreadable."""
    if value is None:
        return None
    try:
        return dates.parse(value.strip().split(" ")[0].split("T")[0], dates.EDXML_DATES)
    except ValueError:
        return None


def parse_timestamp(value: str | None) -> datetime | None:
    """`yyyy/MM/dd HH:mm:ss` local time, its variants, or ISO 8601 with its own offset
    (`dates.EDXML_TIMESTAMPS`). None when unreadable."""
    if value is None:
        return None
    try:
        return dates.parse(value.strip(), dates.EDXML_TIMESTAMPS)
    except ValueError:
        return None


# --- the package ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrganInfo:
    organ_id: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """An attachment as described and, where enclosed, its base64 text (kept only until checked)."""

    content_id: str | None
    name: str | None
    content_type: str | None
    size_bytes: int | None
    is_pdf: bool
    encoded: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class SignatureElement:
    """Where the package's `Signature` is; `in_dsig_namespace` False means not XML-DSig at all."""

    element: etree._Element
    in_dsig_namespace: bool


@dataclass(frozen=True, slots=True)
class EdxmlDocument:
    """What a document package says, read leniently; `root` is the tree it was read from."""

    root: etree._Element = field(repr=False)
    document_id: str | None
    issuer: OrganInfo
    recipients: tuple[OrganInfo, ...]
    code_number: str | None
    code_notation: str | None
    promulgation_place: str | None
    promulgation_date_text: str | None
    document_type_code: str | None
    document_type_name: str | None
    subject: str | None
    due_date_text: str | None
    business_type: BusinessType
    replaces: tuple[str, ...]
    signature: SignatureElement | None
    attachments: tuple[AttachmentInfo, ...]
    anomalies: frozenset[Anomaly]


@dataclass(frozen=True, slots=True)
class EdxmlStatus:
    response_for: str | None
    response_for_organ: str | None
    response_for_code: str | None
    response_for_date_text: str | None
    responder: OrganInfo
    status_code: str | None
    description: str | None
    timestamp_text: str | None
    anomalies: frozenset[Anomaly]


_BUSINESS_TYPES = {
    "0": BusinessType.NEW,
    "1": BusinessType.REVOKED,
    "2": BusinessType.UPDATED,
    "3": BusinessType.REPLACED,
}


def _organ(element: etree._Element | None) -> OrganInfo:
    return OrganInfo(organ_id=text_of(element, "OrganId"), name=text_of(element, "OrganName"))


def _namespace_anomalies(container: etree._Element | None) -> set[Anomaly]:
    """Flag edXML elements with no or a foreign namespace; the Signature subtree is XML-DSig's."""
    found: set[Anomaly] = set()
    if container is None:
        return found
    for element in container.iter():
        if local_name(element) == "Signature":
            continue
        ns = namespace_of(element)
        if ns in (EDXML_NS, DSIG_NS):
            continue
        if any(local_name(a) == "Signature" for a in element.iterancestors()):
            continue
        found.add(Anomaly.NAMESPACE_MISSING if ns == "" else Anomaly.NAMESPACE_UNEXPECTED)
    return found


def _decoded_size(text: str) -> int:
    """Size of base64 `text` once decoded, from its length alone; raises on impossible lengths."""
    length = len(text)
    if length % 4:
        raise MalformedXmlError("attachment content is not base64 (length)")
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return length // 4 * 3 - padding


def _attachment(element: etree._Element, limits: EdxmlLimits) -> AttachmentInfo:
    content_el = child(element, "ContentTransferEncoded")
    encoded: str | None = None
    size: int | None = None
    is_pdf = False
    if content_el is not None and content_el.text and content_el.text.strip():
        # Base64 in XML is often wrapped at 76 columns; the size counts only the alphabet.
        encoded_guess = "".join(content_el.text.split())
        size = _decoded_size(encoded_guess)
        if size > limits.max_attachment_bytes:
            raise AttachmentTooLargeError(
                f"attachment of {size} bytes is over {limits.max_attachment_bytes}"
            )
        try:
            head = binascii.a2b_base64(encoded_guess[:_SNIFF_CHARS], strict_mode=True)
        except binascii.Error as exc:
            raise MalformedXmlError("attachment content is not base64") from exc
        is_pdf = head.startswith(b"%PDF-")
        encoded = encoded_guess
    content_type = text_of(element, "ContentType")
    name = text_of(element, "AttachmentName")
    return AttachmentInfo(
        content_id=text_of(element, "ContentId"),
        name=name,
        content_type=content_type,
        size_bytes=size,
        is_pdf=is_pdf,
        encoded=encoded,
    )


def _attachments(
    root: etree._Element, header: etree._Element, limits: EdxmlLimits, anomalies: set[Anomaly]
) -> tuple[AttachmentInfo, ...]:
    """Manifest references merged with enclosed attachments by ContentId (or name)."""
    enclosed: list[AttachmentInfo] = []
    for element in descendants(root, "Attachment"):
        if any(a is header for a in element.iterancestors()):
            continue
        if len(enclosed) >= limits.max_attachments:
            raise AttachmentTooLargeError(f"more than {limits.max_attachments} attachments")
        if not any(local_name(a) == "edXMLBody" for a in element.iterancestors()):
            anomalies.add(Anomaly.ATTACHMENTS_OUTSIDE_BODY)
        enclosed.append(_attachment(element, limits))
    keys = {a.content_id or a.name for a in enclosed}
    described: list[AttachmentInfo] = []
    for manifest in descendants(root, "edXMLManifest"):
        for reference in children(manifest, "Reference"):
            content_id = text_of(reference, "ContentId")
            name = text_of(reference, "AttachmentName")
            if (content_id or name) in keys:
                continue
            anomalies.add(Anomaly.ATTACHMENT_NOT_ENCLOSED)
            described.append(
                AttachmentInfo(
                    content_id=content_id,
                    name=name,
                    content_type=text_of(reference, "ContentType"),
                    size_bytes=None,
                    is_pdf=False,
                    encoded=None,
                )
            )
            if len(enclosed) + len(described) > limits.max_attachments:
                raise AttachmentTooLargeError(f"more than {limits.max_attachments} attachments")
    return (*enclosed, *described)


def find_signature(root: etree._Element) -> SignatureElement | None:
    """The first XML-DSig `Signature` (the one signxml verifies); failing that, the first
    `Signature` in any other namespace."""
    for element in root.iter(f"{{{DSIG_NS}}}Signature"):
        return SignatureElement(element=element, in_dsig_namespace=True)
    stray = first(root, "Signature")
    if stray is not None:
        return SignatureElement(element=stray, in_dsig_namespace=False)
    return None


# The package's own parts. None of them belongs inside a signature, where no digest covers it.
_PACKAGE_PARTS = frozenset(
    {
        "edXMLEnvelope",
        "edXMLHeader",
        "edXMLBody",
        "MessageHeader",
        "TraceHeaderList",
        "Bussiness",
        "Business",
        "edXMLManifest",
        "AttachmentEncoded",
        "Attachment",
        "Status",
    }
)


def refuse_wrapped_content(root: etree._Element) -> None:
    """Refuse what signature wrapping needs: a second `MessageHeader`, or package parts hidden
    inside a `Signature` (in a `ds:Object`, which the enveloped signature does not cover)."""
    headers = sum(1 for _ in descendants(root, "MessageHeader"))
    if headers > 1:
        raise WrappedContentError(f"{headers} MessageHeader elements; a package has one")
    for signature in descendants(root, "Signature"):
        for element in signature.iter():
            if element is not signature and local_name(element) in _PACKAGE_PARTS:
                raise WrappedContentError(f"a {local_name(element)} element inside a Signature")


def read_document(
    root: etree._Element, limits: EdxmlLimits, signature: SignatureElement | None
) -> EdxmlDocument:
    """Read a document package from a tree `parse_xml` produced, or from the part of it a
    signature covers; `signature` is what `find_signature` found in the whole package."""
    header = first(root, "MessageHeader")
    if header is None:
        raise NotEdxmlError("no MessageHeader")
    anomalies = _namespace_anomalies(header)
    anomalies |= _namespace_anomalies(first(root, "TraceHeaderList"))

    business = _first_of(root, "Bussiness", "Business")
    type_text = text_of(business, "BussinessDocType") or text_of(business, "BusinessDocType")
    business_type = _BUSINESS_TYPES.get(type_text or "0")
    if business_type is None:
        anomalies.add(Anomaly.BUSINESS_TYPE_UNKNOWN)
        business_type = BusinessType.NEW
    replaces: list[str] = []
    if business is not None:
        for info in descendants(business, "ReplacementInfo"):
            target = text_of(info, "DocumentId")
            if target is not None:
                replaces.append(target)
    # An update or revocation names the document it acts on in Bussiness/DocumentId.
    if business_type is not BusinessType.NEW:
        target = text_of(business, "DocumentId")
        if target is not None and target not in replaces:
            replaces.insert(0, target)

    if signature is not None and not signature.in_dsig_namespace:
        anomalies.add(Anomaly.SIGNATURE_WRONG_NAMESPACE)

    code = child(header, "Code")
    promulgation = child(header, "PromulgationInfo")
    document_type = child(header, "DocumentType")
    return EdxmlDocument(
        root=root,
        document_id=text_of(header, "DocumentId"),
        issuer=_organ(child(header, "From")),
        recipients=tuple(_organ(element) for element in children(header, "To")),
        code_number=text_of(code, "CodeNumber"),
        code_notation=text_of(code, "CodeNotation"),
        promulgation_place=text_of(promulgation, "Place"),
        promulgation_date_text=text_of(promulgation, "PromulgationDate"),
        document_type_code=text_of(document_type, "Type"),
        document_type_name=text_of(document_type, "TypeName"),
        subject=text_of(header, "Subject"),
        due_date_text=text_of(header, "DueDate"),
        business_type=business_type,
        replaces=tuple(dict.fromkeys(replaces)),
        signature=signature,
        attachments=_attachments(root, header, limits, anomalies),
        anomalies=frozenset(anomalies),
    )


def read_status(root: etree._Element) -> EdxmlStatus:
    """Read a status package; real ones sit in SOAP headers, in varying namespaces."""
    status = first(root, "Status")
    container = status if status is not None else root
    code = text_of(container, "StatusCode")
    if code is None:
        found = first(root, "StatusCode")
        if found is None:
            raise NotEdxmlError("no StatusCode")
        code = (found.text or "").strip() or None
        parent = found.getparent()
        container = parent if parent is not None else root
    response_for = child(container, "ResponseFor")
    anomalies = _namespace_anomalies(container)
    if response_for is not None and len(response_for):
        document_id = text_of(response_for, "DocumentId")
    else:
        document_id = text_of(container, "ResponseFor")
    return EdxmlStatus(
        response_for=document_id,
        response_for_organ=text_of(response_for, "OrganId"),
        response_for_code=text_of(response_for, "Code"),
        response_for_date_text=text_of(response_for, "PromulgationDate"),
        responder=_organ(child(container, "From")),
        status_code=code,
        description=text_of(container, "Description"),
        timestamp_text=text_of(container, "Timestamp"),
        anomalies=frozenset(anomalies),
    )


def parse_document(raw: bytes, limits: EdxmlLimits) -> EdxmlDocument:
    """Parse and read a document package in one step, all of it (signed or not)."""
    root = parse_xml(raw, limits)
    refuse_wrapped_content(root)
    return read_document(root, limits, find_signature(root))


def parse_status(raw: bytes, limits: EdxmlLimits) -> EdxmlStatus:
    """Parse and read a status package in one step."""
    return read_status(parse_xml(raw, limits))
