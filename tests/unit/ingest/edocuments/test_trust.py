"""Chain checks by pyhanko-certvalidator, and the paths kept between documents."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import Encoding

from services.ingest.edocuments.trust import ChainVerdict, TrustBundle, check_chain
from tests.support.edxml_corpus import NOW
from tests.support.pki import EXPIRED_NOT_AFTER, make_other_signers, make_pki


def test_a_kept_path_holds_only_inside_its_certificates_validity() -> None:
    pki = make_pki()
    bundle = TrustBundle.from_pem(pki.bundle_pem)
    signer = pki.expired_signer
    before = datetime(2020, 6, 1, tzinfo=UTC)
    assert (
        check_chain(signer.certificate, signer.chain, bundle, before).verdict
        is ChainVerdict.TRUSTED
    )
    assert NOW > EXPIRED_NOT_AFTER
    # The same certificates again, after the signer's expiry: validated again, not taken as kept.
    assert (
        check_chain(signer.certificate, signer.chain, bundle, NOW).verdict is ChainVerdict.INVALID
    )
    assert (
        check_chain(signer.certificate, signer.chain, bundle, before).verdict
        is ChainVerdict.TRUSTED
    )


def test_a_kept_path_is_the_bundles_own() -> None:
    pki = make_pki()
    signer = pki.signer
    trusted = TrustBundle.from_pem(pki.bundle_pem)
    assert (
        check_chain(signer.certificate, signer.chain, trusted, NOW).verdict is ChainVerdict.TRUSTED
    )
    stranger = TrustBundle.from_pem(pki.stranger_root.certificate.public_bytes(Encoding.PEM))
    assert (
        check_chain(signer.certificate, signer.chain, stranger, NOW).verdict
        is ChainVerdict.NOT_TRUSTED
    )


def test_failures_are_not_kept() -> None:
    pki = make_pki()
    bundle = TrustBundle.from_pem(pki.bundle_pem)
    deep = make_other_signers().beyond_path_length
    for _ in range(2):
        assert (
            check_chain(deep.certificate, deep.chain, bundle, NOW).verdict is ChainVerdict.INVALID
        )
