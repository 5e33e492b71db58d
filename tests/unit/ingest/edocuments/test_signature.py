"""Signature verdicts: XML-DSig over edXML packages and pyHanko-signed PDF attachments."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.edocument import BusinessType, SignatureAlgorithm, SignatureVerdict, UnverifiedReason
from services.ingest.edocuments.edxml import (
    find_signature,
    parse_document,
    parse_xml,
    read_document,
)
from services.ingest.edocuments.signature import (
    check_xml_signature,
    verify_pdf,
    verify_xml_signature,
)
from services.ingest.edocuments.trust import TrustBundle, load_trust_bundle
from services.ingest.errors import TrustBundleError
from services.ingest.settings import EdxmlLimits
from services.localrun.pki import Identity
from tests.support.edxml_corpus import (
    NOW,
    build_document,
    move_signature_namespace,
    truncate_certificate,
    with_subject,
)
from tests.support.pki import (
    EXPIRED_NOT_AFTER,
    OtherSigners,
    Pki,
    make_other_signers,
    make_pki,
    rewrite_page_after_signing,
    sign_edxml,
    sign_xades,
    signed_pdf,
    tamper_pdf,
    unsigned_pdf,
)

V = SignatureVerdict
R = UnverifiedReason


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def bundle(pki: Pki) -> TrustBundle:
    return TrustBundle.from_pem(pki.bundle_pem)


def _check(raw: bytes, trust: TrustBundle | None, now: datetime = NOW) -> object:
    document = parse_document(raw, EdxmlLimits())
    return verify_xml_signature(raw, document.signature, trust=trust, now=now)


Maker = Callable[[Pki], bytes]

CASES: list[tuple[str, Maker, V, R | None, V, bool]] = [
    # (id, make package, verdict with bundle, reason with bundle, verdict without, legacy)
    (
        "sha256",
        lambda p: sign_edxml(build_document(), p.signer),
        V.VERIFIED,
        None,
        V.UNTRUSTED,
        False,
    ),
    (
        "rsa-sha1-and-sha1-digest",
        lambda p: sign_edxml(build_document(), p.signer, algorithm="rsa-sha1", digest="sha1"),
        V.VERIFIED,
        None,
        V.UNTRUSTED,
        True,
    ),
    (
        "rsa-sha256-with-sha1-digest",
        lambda p: sign_edxml(build_document(), p.signer, digest="sha1"),
        V.VERIFIED,
        None,
        V.UNTRUSTED,
        True,
    ),
    (
        "tampered-subject",
        lambda p: with_subject(sign_edxml(build_document(), p.signer), "Quyết định khác"),
        V.INVALID,
        R.DIGEST_MISMATCH,
        V.INVALID,
        False,
    ),
    (
        "key-does-not-match-embedded-certificate",
        lambda p: sign_edxml(build_document(), p.signer, embed=p.stranger_signer),
        V.INVALID,
        R.SIGNATURE_MISMATCH,
        V.INVALID,
        False,
    ),
    (
        "certificate-expired-at-signing-time",
        lambda p: sign_edxml(build_document(), p.expired_signer),
        V.INVALID,
        R.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME,
        V.INVALID,
        False,
    ),
    (
        "truncated-certificate",
        lambda p: truncate_certificate(sign_edxml(build_document(), p.signer)),
        V.INVALID,
        R.CERTIFICATE_UNPARSEABLE,
        V.INVALID,
        False,
    ),
    (
        "signature-in-wrong-namespace",
        lambda p: move_signature_namespace(sign_edxml(build_document(), p.signer)),
        V.INVALID,
        R.WRONG_NAMESPACE,
        V.INVALID,
        False,
    ),
    (
        "chain-outside-bundle",
        lambda p: sign_edxml(build_document(), p.stranger_signer),
        V.UNTRUSTED,
        R.CHAIN_NOT_TRUSTED,
        V.UNTRUSTED,
        False,
    ),
    ("unsigned", lambda p: build_document(), V.UNSIGNED, None, V.UNSIGNED, False),
]


@pytest.mark.parametrize(
    ("make", "with_bundle", "reason", "without_bundle", "legacy"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_xml_signature_verdicts(
    pki: Pki,
    bundle: TrustBundle,
    make: Maker,
    with_bundle: V,
    reason: R | None,
    without_bundle: V,
    legacy: bool,
) -> None:
    raw = make(pki)
    checked = _check(raw, bundle)
    assert checked.verdict is with_bundle  # type: ignore[attr-defined]
    assert checked.reason is reason  # type: ignore[attr-defined]
    assert checked.legacy_algorithm is legacy  # type: ignore[attr-defined]
    assert _check(raw, None).verdict is without_bundle  # type: ignore[attr-defined]


def test_verified_details_carry_no_personal_data(pki: Pki, bundle: TrustBundle) -> None:
    info = _check(sign_edxml(build_document(), pki.signer), bundle)
    assert info.algorithm is SignatureAlgorithm.RSA_SHA256  # type: ignore[attr-defined]
    # The test signer's CN ends in a citizen ID number; it must not leave the service.
    assert info.signer_cn == "Văn thư Sở Thử Nghiệm <number>"  # type: ignore[attr-defined]
    assert info.signing_time == NOW  # type: ignore[attr-defined]


def test_an_unsigned_signing_time_is_ignored(pki: Pki, bundle: TrustBundle) -> None:
    """A SigningTime no reference covers is anyone's claim: the clock decides, and the expired
    certificate does not verify."""
    raw = sign_edxml(
        build_document(), pki.expired_signer, signing_time=datetime(2020, 6, 1, tzinfo=UTC)
    )
    info = _check(raw, bundle)
    assert (info.verdict, info.reason) == (V.INVALID, R.CERTIFICATE_NOT_VALID_AT_SIGNING_TIME)  # type: ignore[attr-defined]
    assert info.signing_time == NOW  # type: ignore[attr-defined]


def test_a_signed_signing_time_is_used(pki: Pki, bundle: TrustBundle) -> None:
    """Signed while valid, checked after expiry: the XAdES SigningTime the signature covers."""
    signed_at = datetime(2020, 6, 1, tzinfo=UTC)
    raw = sign_xades(build_document(), pki.expired_signer, signing_time=signed_at)
    assert NOW > EXPIRED_NOT_AFTER
    info = _check(raw, bundle)
    assert info.verdict is V.VERIFIED  # type: ignore[attr-defined]
    assert info.signing_time == signed_at  # type: ignore[attr-defined]


def test_a_signed_signing_time_changed_after_signing_is_invalid(
    pki: Pki, bundle: TrustBundle
) -> None:
    raw = sign_xades(build_document(), pki.signer, signing_time=datetime(2026, 3, 1, tzinfo=UTC))
    forged = raw.replace(b"2026-03-01T00:00:00+00:00", b"2020-03-01T00:00:00+00:00")
    assert forged != raw
    assert _check(forged, bundle).verdict is V.INVALID  # type: ignore[attr-defined]


OUT_OF_RANGE = "0001-01-01T00:00:00+14:00"


def test_a_signing_time_out_of_range_is_a_verdict_not_an_error(
    pki: Pki, bundle: TrustBundle
) -> None:
    """Year 1 at +14:00 is before datetime's first moment in UTC (issue 13's poison pill),
    signed or not: the clock is the signing time."""
    signed = sign_xades(build_document(), pki.signer, signing_time=OUT_OF_RANGE)
    unsigned = sign_edxml(build_document(), pki.signer, signing_time=NOW).replace(
        b"2026-03-02T08:00:00Z", OUT_OF_RANGE.encode()
    )
    for raw in (signed, unsigned):
        assert OUT_OF_RANGE.encode() in raw
        info = _check(raw, bundle)
        assert (info.verdict, info.signing_time) == (V.VERIFIED, NOW)  # type: ignore[attr-defined]


def test_signing_time_in_the_future_is_capped_at_the_clock(pki: Pki, bundle: TrustBundle) -> None:
    raw = sign_xades(build_document(), pki.signer, signing_time=datetime(2040, 1, 1, tzinfo=UTC))
    assert _check(raw, bundle).signing_time == NOW  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pick", "reason"),
    [
        pytest.param(lambda m: m.tls_server, R.KEY_NOT_FOR_SIGNING, id="tls-server-certificate"),
        pytest.param(lambda m: m.encipherment_only, R.KEY_NOT_FOR_SIGNING, id="encipherment-only"),
        pytest.param(lambda m: m.beyond_path_length, R.CHAIN_INVALID, id="beyond-path-length"),
    ],
)
def test_others_signers_are_invalid(
    bundle: TrustBundle, pick: Callable[[OtherSigners], Identity], reason: R
) -> None:
    info = _check(sign_edxml(build_document(), pick(make_other_signers())), bundle)
    assert (info.verdict, info.reason) == (V.INVALID, reason)  # type: ignore[attr-defined]


def test_signature_over_part_of_the_package_is_invalid(pki: Pki, bundle: TrustBundle) -> None:
    raw = sign_edxml(build_document(), pki.signer).replace(b'URI=""', b'URI="#part"')
    info = _check(raw, bundle)
    assert (info.verdict, info.reason) == (V.INVALID, R.REFERENCE_NOT_WHOLE_DOCUMENT)  # type: ignore[attr-defined]


def test_garbage_signature_value_is_a_verdict_not_an_error(pki: Pki, bundle: TrustBundle) -> None:
    raw = sign_edxml(build_document(), pki.signer)
    start = raw.index(b"SignatureValue>") + len(b"SignatureValue>")
    raw = raw[:start] + b"!!!" + raw[start + 3 :]
    assert _check(raw, bundle).verdict is V.INVALID  # type: ignore[attr-defined]


# --- PDFs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "with_bundle", "without_bundle"),
    [
        pytest.param(lambda p: signed_pdf(p.signer), V.VERIFIED, V.UNTRUSTED, id="signed"),
        pytest.param(
            lambda p: tamper_pdf(signed_pdf(p.signer)), V.INVALID, V.INVALID, id="tampered"
        ),
        pytest.param(
            lambda p: signed_pdf(p.stranger_signer), V.UNTRUSTED, V.UNTRUSTED, id="stranger-ca"
        ),
        pytest.param(
            lambda p: rewrite_page_after_signing(signed_pdf(p.signer)),
            V.INVALID,
            V.INVALID,
            id="page-rewritten-after-signing",
        ),
        pytest.param(
            lambda p: signed_pdf(make_other_signers().tls_server),
            V.INVALID,
            V.INVALID,
            id="tls-server-certificate",
        ),
        pytest.param(lambda p: unsigned_pdf(), None, None, id="unsigned"),
        pytest.param(lambda p: b"%PDF-1.7 broken", V.INVALID, V.INVALID, id="not-a-pdf"),
    ],
)
def test_pdf_verdicts(
    pki: Pki, bundle: TrustBundle, make: Maker, with_bundle: V | None, without_bundle: V | None
) -> None:
    pdf = make(pki)
    checked = verify_pdf(pdf, trust=bundle, now=NOW)
    assert (checked.verdict if checked else None) is with_bundle
    unbundled = verify_pdf(pdf, trust=None, now=NOW)
    assert (unbundled.verdict if unbundled else None) is without_bundle


def test_a_page_rewritten_after_signing_is_named(pki: Pki, bundle: TrustBundle) -> None:
    checked = verify_pdf(rewrite_page_after_signing(signed_pdf(pki.signer)), trust=bundle, now=NOW)
    assert checked is not None
    assert checked.reason is R.MODIFIED_AFTER_SIGNING


@pytest.fixture(scope="module")
def good_pdf(pki: Pki) -> bytes:
    # Made outside the test's event loop: pyHanko's synchronous signer starts a loop of its own.
    return signed_pdf(pki.signer)


async def test_pdf_check_works_inside_a_running_event_loop(
    good_pdf: bytes, bundle: TrustBundle
) -> None:
    assert asyncio.get_running_loop() is not None
    checked = verify_pdf(good_pdf, trust=bundle, now=NOW)
    assert checked is not None
    assert checked.verdict is V.VERIFIED


# --- the bundle -----------------------------------------------------------------------------


def test_load_trust_bundle(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(pki.bundle_pem)
    assert len(load_trust_bundle(path)) == 1


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"", id="empty"), pytest.param(b"not a certificate", id="not-pem")],
)
def test_unusable_trust_bundle(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(content)
    with pytest.raises(TrustBundleError):
        load_trust_bundle(path)


def test_missing_trust_bundle(tmp_path: Path) -> None:
    with pytest.raises(TrustBundleError):
        load_trust_bundle(tmp_path / "absent.pem")


# --- what the signature covers --------------------------------------------------------------


def test_fields_are_read_from_what_the_signature_covers(pki: Pki, bundle: TrustBundle) -> None:
    """A revocation hidden in a `ds:Object` (outside the digest) and met first by a reader of
    the whole package is not in the signed root, so the record reads the signed business type."""
    signed = sign_edxml(build_document(), pki.signer)
    # Moved as text: lxml would rename the signature's prefixes and break it.
    start = signed.index(b"<ns0:Signature")
    end = signed.index(b"</ns0:Signature>")
    revocation = (
        b"<ns0:Object><Bussiness><BussinessDocType>1</BussinessDocType>"
        b"<DocumentId>000.00.00.G22,2026/01/01,1/QD</DocumentId></Bussiness></ns0:Object>"
    )
    rest = signed[:start] + signed[end + len(b"</ns0:Signature>") :]
    anchor = rest.index(b"<edXML:edXMLHeader>") + len(b"<edXML:edXMLHeader>")
    forged = rest[:anchor] + signed[start:end] + revocation + b"</ns0:Signature>" + rest[anchor:]

    whole = parse_xml(forged, EdxmlLimits())
    found = find_signature(whole)
    assert read_document(whole, EdxmlLimits(), found).business_type is BusinessType.REVOKED
    check = check_xml_signature(forged, found, trust=bundle, now=NOW)
    assert check.info.verdict is V.VERIFIED
    assert check.signed_root is not None
    assert next(check.signed_root.iter("{*}Signature"), None) is None
    covered = read_document(check.signed_root, EdxmlLimits(), found)
    assert covered.business_type is BusinessType.NEW
    assert covered.replaces == ()


def test_no_signed_root_when_the_cryptography_fails(pki: Pki, bundle: TrustBundle) -> None:
    raw = with_subject(sign_edxml(build_document(), pki.signer), "Quyết định khác")
    check = check_xml_signature(
        raw, find_signature(parse_xml(raw, EdxmlLimits())), trust=bundle, now=NOW
    )
    assert check.info.verdict is V.INVALID
    assert check.signed_root is None
