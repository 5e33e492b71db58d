"""Signer bindings: who may sign for an agency, criterion by criterion."""

from __future__ import annotations

import pytest

from schemas.edocument import SignatureInfo, SignatureVerdict, UnverifiedReason
from services.ingest.edocuments.binding import SignerBindings
from services.ingest.edocuments.trust import SignerIdentity
from services.ingest.settings import SignerBinding

AGENCY = "000.00.00.G22"
ISSUER = "ab" * 32
SIGNER = SignerIdentity(
    organisations=frozenset({"UBND Tỉnh  Thử Nghiệm"}),
    organisation_identifiers=frozenset({"MST:0101234567"}),
    issuer_sha256=ISSUER,
)


@pytest.mark.parametrize(
    ("binding", "allowed"),
    [
        pytest.param(
            SignerBinding(organisation="ubnd tỉnh thử nghiệm"), True, id="organisation-folded"
        ),
        pytest.param(SignerBinding(organisation="UBND huyện Khác"), False, id="other-organisation"),
        pytest.param(
            SignerBinding(organisation_identifier="MST:0101234567"), True, id="identifier"
        ),
        pytest.param(
            SignerBinding(organisation_identifier="MST:0109999999"), False, id="other-identifier"
        ),
        pytest.param(
            SignerBinding(issuer_sha256=":".join(["AB"] * 32)), True, id="issuer-with-colons"
        ),
        pytest.param(SignerBinding(issuer_sha256="cd" * 32), False, id="other-issuer"),
        pytest.param(
            SignerBinding(organisation="UBND tỉnh Thử Nghiệm", issuer_sha256="cd" * 32),
            False,
            id="every-criterion-must-hold",
        ),
    ],
)
def test_a_binding_matches_each_criterion(binding: SignerBinding, allowed: bool) -> None:
    assert SignerBindings({AGENCY: [binding]}).allows(AGENCY, SIGNER) is allowed


def test_any_binding_of_the_agency_suffices() -> None:
    bindings = SignerBindings(
        {AGENCY: [SignerBinding(organisation="khác"), SignerBinding(issuer_sha256=ISSUER)]}
    )
    assert bindings.allows(AGENCY, SIGNER)


@pytest.mark.parametrize("agency", [None, "000.00.10.H29"], ids=["no-agency", "unbound-agency"])
def test_no_binding_no_signer(agency: str | None) -> None:
    assert not SignerBindings({AGENCY: [SignerBinding(issuer_sha256=ISSUER)]}).allows(
        agency, SIGNER
    )


def test_bind_turns_only_verified_into_untrusted() -> None:
    verified = SignatureInfo(verdict=SignatureVerdict.VERIFIED)
    invalid = SignatureInfo(
        verdict=SignatureVerdict.INVALID, reason=UnverifiedReason.DIGEST_MISMATCH
    )
    empty = SignerBindings()
    assert empty.bind(invalid, [SIGNER], AGENCY) == invalid
    unbound = empty.bind(verified, [SIGNER], AGENCY)
    assert (unbound.verdict, unbound.reason) == (
        SignatureVerdict.UNTRUSTED,
        UnverifiedReason.SIGNER_NOT_BOUND,
    )
    bound = SignerBindings({AGENCY: [SignerBinding(issuer_sha256=ISSUER)]})
    assert bound.bind(verified, [SIGNER], AGENCY) == verified
    assert bound.bind(verified, [], AGENCY).verdict is SignatureVerdict.UNTRUSTED
