"""Whether a signer may sign for the agency a document says issued it (`GOVSYNC_SIGNER_BINDINGS`).

A certificate that chains to the trust bundle proves who signed, not for whom: any agency's
signer (or anyone a trusted CA certified) could put another agency's code in `From/OrganId`.
So a signature counts as `verified` only when its signer matches one of the bindings configured
for the issuing agency (`settings.SignerBinding`); otherwise it is `untrusted` with reason
`signer_not_bound`. An agency with no bindings has no verified documents. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from schemas.edocument import SignatureInfo, SignatureVerdict, UnverifiedReason
from services.ingest.edocuments.trust import SignerIdentity
from services.ingest.settings import SignerBinding

_SPACES = re.compile(r"\s+")


def _name(value: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip().casefold()


def _fingerprint(value: str) -> str:
    return value.replace(":", "").lower()


class SignerBindings:
    """The configured bindings, normalised once for comparison."""

    def __init__(self, bindings: Mapping[str, Iterable[SignerBinding]] | None = None) -> None:
        self._rules: dict[str, tuple[tuple[str | None, str | None, str | None], ...]] = {
            agency: tuple(
                (
                    _name(b.organisation) if b.organisation is not None else None,
                    b.organisation_identifier.strip() if b.organisation_identifier else None,
                    _fingerprint(b.issuer_sha256) if b.issuer_sha256 is not None else None,
                )
                for b in rules
            )
            for agency, rules in (bindings or {}).items()
        }

    def __len__(self) -> int:
        return len(self._rules)

    def allows(self, agency: str | None, signer: SignerIdentity) -> bool:
        """Whether `signer` matches one of `agency`'s bindings (each of its criteria)."""
        if agency is None:
            return False
        organisations = {_name(o) for o in signer.organisations}
        for organisation, identifier, issuer in self._rules.get(agency, ()):
            if organisation is not None and organisation not in organisations:
                continue
            if identifier is not None and identifier not in signer.organisation_identifiers:
                continue
            if issuer is not None and issuer != signer.issuer_sha256:
                continue
            return True
        return False

    def bind(
        self, info: SignatureInfo, signers: Iterable[SignerIdentity], agency: str | None
    ) -> SignatureInfo:
        """`info` unchanged unless it is `verified` by a signer not bound to `agency`."""
        if info.verdict is not SignatureVerdict.VERIFIED:
            return info
        signers = tuple(signers)
        if signers and all(self.allows(agency, signer) for signer in signers):
            return info
        return info.model_copy(
            update={
                "verdict": SignatureVerdict.UNTRUSTED,
                "reason": UnverifiedReason.SIGNER_NOT_BOUND,
            }
        )
