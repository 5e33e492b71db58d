"""Forged "verified" documents (issue 13): what a signature does not cover never counts as signed.

Each test starts from packages the test PKI signs legitimately, forges them the way the issue
reproduced it, and runs them through `DocumentPipeline` (normalise, then decide) as the worker
does. The oracle counts verified outgoing documents by the test's own reckoning: only the
legitimately signed packages, by a signer bound to their agency, may count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from schemas.cloudevents import EventType
from schemas.edocument import Direction, EDocumentRecord, SignatureVerdict, UnverifiedReason
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.envelope import Envelope
from services.ingest.errors import EdxmlRefusedError, EventRefusedError
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import (
    ISSUER,
    NOW,
    OWN_AGENCIES,
    Attachment,
    bindings,
    build_document,
)
from tests.support.pki import (
    make_other_signers,
    make_pki,
    rewrite_page_after_signing,
    sign_edxml,
    sign_xades,
    signed_pdf,
)

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]


def pipeline() -> DocumentPipeline:
    return DocumentPipeline(
        own_agencies=OWN_AGENCIES,
        trust=TrustBundle.from_pem(make_pki().bundle_pem),
        limits=EdxmlLimits(),
        bindings=bindings(),
    )


def envelope(raw: bytes, n: int) -> Envelope:
    return Envelope(f"forged-{n}", "urn:vn:gov:edoc:test", EventType.EDXML, NOW, raw, None, "bare")


def verified_outgoing(documents: DocumentPipeline, packages: list[bytes]) -> tuple[int, int]:
    """(verified outgoing documents counted, packages refused) after feeding `packages`."""
    counted = refused = 0
    for n, raw in enumerate(packages):
        try:
            record = documents.normalise(envelope(raw, n), now=NOW)
        except EventRefusedError:
            refused += 1
            continue
        result = documents.decide(record)
        if (
            result.counted is not None
            and result.counted.direction is Direction.OUTGOING
            and result.counted.signature is SignatureVerdict.VERIFIED
        ):
            counted += 1
    return counted, refused


def record(documents: DocumentPipeline, raw: bytes) -> EDocumentRecord:
    normalised = documents.normalise(envelope(raw, 0), now=NOW)
    assert isinstance(normalised, EDocumentRecord)
    return normalised


def _header_of(package: bytes) -> bytes:
    """The `MessageHeader` of `package` as written (its `edXML:` prefix is the signed package's)."""
    start = package.index(b"<edXML:MessageHeader>")
    end = package.index(b"</edXML:MessageHeader>") + len(b"</edXML:MessageHeader>")
    return package[start:end]


def wrap(signed: bytes, forged_header: bytes) -> bytes:
    """Signature wrapping: the forged header in a `ds:Object` of the legitimate signature, and
    the signature moved in front of the real header, where a first-match reader meets it first.
    The enveloped transform removes the whole `Signature`, so the digest still matches. Done on
    the text, as an attacker would: lxml would rename prefixes when moving the element."""
    match = re.search(rb"<(\w+):Signature[ >]", signed)
    assert match is not None
    prefix = match.group(1)
    close = b"</%s:Signature>" % prefix
    end = signed.index(close)
    signature = (
        signed[match.start() : end]
        + b"<%s:Object>%s</%s:Object>" % (prefix, forged_header, prefix)
        + close
    )
    rest = signed[: match.start()] + signed[end + len(close) :]
    anchor = rest.index(b"<edXML:edXMLHeader>") + len(b"<edXML:edXMLHeader>")
    return rest[:anchor] + signature + rest[anchor:]


def test_a_header_hidden_in_the_signature_never_counts_as_verified(figures: Figures) -> None:
    pki = make_pki()
    legitimate = sign_edxml(build_document(number="700"), pki.signer)
    forged = [
        wrap(legitimate, _header_of(build_document(organ_id=ISSUER, number=f"70{n}")))
        for n in (1, 2, 3)
    ]
    # The oracle: one legitimately signed outgoing document, whatever is wrapped around it.
    counted, refused = verified_outgoing(pipeline(), [legitimate, *forged])
    figures(f"{len(forged)} forged packages from one signed package: {refused} refused")
    assert counted == 1
    assert refused == len(forged)


def test_a_forged_package_is_refused_with_its_reason() -> None:
    legitimate = sign_edxml(build_document(number="710"), make_pki().signer)
    forged = wrap(legitimate, _header_of(build_document(number="711")))
    with pytest.raises(EdxmlRefusedError) as refused:
        pipeline().normalise(envelope(forged, 0), now=NOW)
    assert refused.value.cause == "WrappedContentError"
    assert "MessageHeader" in str(refused.value)


def test_signers_that_may_not_sign_never_count_as_verified(figures: Figures) -> None:
    """An expired certificate with a back-dated SigningTime no reference covers, a TLS server
    certificate (serverAuth only) and a signer below a CA its issuer's pathLenConstraint (0)
    forbids: each is issued by the trusted root, and none may count."""
    pki, others = make_pki(), make_other_signers()
    back_dated = datetime(2020, 6, 1, tzinfo=UTC)
    packages = {
        "expired, back-dated unsigned time": sign_edxml(
            build_document(number="731"), pki.expired_signer, signing_time=back_dated
        ),
        "TLS server certificate": sign_edxml(build_document(number="732"), others.tls_server),
        "beyond pathLenConstraint": sign_edxml(
            build_document(number="733"), others.beyond_path_length
        ),
    }
    legitimate = sign_edxml(build_document(number="730"), pki.signer)
    documents = pipeline()
    counted, refused = verified_outgoing(documents, [legitimate, *packages.values()])
    verdicts = {name: record(documents, raw).signature for name, raw in packages.items()}
    figures(
        f"{len(packages)} signers that may not sign: "
        + ", ".join(f"{name} -> {info.verdict}/{info.reason}" for name, info in verdicts.items())
    )
    assert refused == 0
    assert counted == 1
    # The same signer's expired certificate verifies with a time the signature covers.
    signed_time = sign_xades(
        build_document(number="734"), pki.expired_signer, signing_time=back_dated
    )
    assert verified_outgoing(pipeline(), [signed_time]) == (1, 0)


def test_a_pdf_rewritten_after_signing_is_not_verified(figures: Figures) -> None:
    """An incremental update after the signature replaces the page's content: the signed bytes
    are intact, pyHanko's difference analysis calls the change suspicious, and so do we."""
    pki = make_pki()
    original = signed_pdf(pki.signer)
    rewritten = rewrite_page_after_signing(original)
    package = sign_edxml(
        build_document(
            number="740",
            attachments=(Attachment("qd.pdf", original), Attachment("qd-sua.pdf", rewritten)),
        ),
        pki.signer,
    )
    attachments = {a.name: a.signature for a in record(pipeline(), package).attachments}
    rewritten_info, original_info = attachments["qd-sua.pdf"], attachments["qd.pdf"]
    assert rewritten_info is not None
    assert original_info is not None
    figures(
        f"PDF with its page rewritten in an incremental update ({len(rewritten) - len(original)}"
        f" bytes appended): {rewritten_info.verdict}/{rewritten_info.reason}"
    )
    assert original_info.verdict is SignatureVerdict.VERIFIED
    assert rewritten_info.verdict is not SignatureVerdict.VERIFIED


def test_a_signer_not_bound_to_the_issuing_agency_never_counts_as_verified(
    figures: Figures,
) -> None:
    """A valid signer of another organisation, certified by the same trusted CA, signs packages
    that name our agency as the issuer (and a PDF in one of ours); a package of an agency with
    no binding at all: none may count as that agency's verified document."""
    pki, others = make_pki(), make_other_signers()
    impostor = others.other_agency
    foreign_pdf = signed_pdf(impostor)
    packages = [
        sign_edxml(build_document(organ_id=ISSUER, number=f"75{n}"), impostor) for n in (1, 2, 3)
    ]
    unbound_agency = sign_edxml(build_document(organ_id="000.00.99.K99", number="754"), pki.signer)
    own_with_foreign_pdf = sign_edxml(
        build_document(number="755", attachments=(Attachment("qd.pdf", foreign_pdf),)), pki.signer
    )
    legitimate = sign_edxml(build_document(number="750"), pki.signer)
    documents = pipeline()
    counted, refused = verified_outgoing(documents, [legitimate, *packages])
    impostor_info = record(documents, packages[0]).signature
    unbound_info = record(documents, unbound_agency).signature
    pdf = record(documents, own_with_foreign_pdf).attachments[0].signature
    figures(
        f"{len(packages)} packages signed for our agency by another agency's valid signer:"
        f" {counted - 1} counted verified ({impostor_info.verdict}/{impostor_info.reason});"
        f" an unbound agency's: {unbound_info.verdict}/{unbound_info.reason}"
    )
    assert (counted, refused) == (1, 0)
    assert (impostor_info.verdict, impostor_info.reason) == (
        SignatureVerdict.UNTRUSTED,
        UnverifiedReason.SIGNER_NOT_BOUND,
    )
    assert unbound_info.verdict is SignatureVerdict.UNTRUSTED
    assert pdf is not None
    assert pdf.verdict is SignatureVerdict.UNTRUSTED
    assert record(documents, own_with_foreign_pdf).signature.verdict is SignatureVerdict.VERIFIED
