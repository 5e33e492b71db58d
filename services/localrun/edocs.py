"""E-document packages for local runs: the run's throwaway PKI and its edXML packages.

The traffic plans (`services.localrun.traffic.plans.draw_document`) decide what to send
(`DocumentSpec`: issuer, recipient, number, the verdict ingest must reach); `Packager.render`
writes the QCVN 102:2016 package and signs it, with certificates and signatures from
`services.localrun.pki`. Keys live in memory for one run; only the CA certificate is written, as
the trust bundle ingest is given. EC P-256 keys keep the start fast (a few ms for all three).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import serialization

from schemas.edocument import SignatureVerdict
from services.ingest.settings import SignerBinding
from services.localrun.pki import Identity, KeyKind, issue, sign_enveloped, to_bytes
from services.localrun.traffic.plans import LOCAL_TZ, DocumentSpec

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
SUBJECT = "Về việc triển khai liên thông văn bản điện tử"
TAMPERED_SUBJECT = "Về việc khác"
ORGANISATION = "govsync local run"


@dataclass(frozen=True, slots=True)
class RunPki:
    """`ca` signs `signer` (→ verified); `stranger` signs itself (→ untrusted)."""

    ca: Identity
    signer: Identity
    stranger: Identity

    @property
    def bundle_pem(self) -> bytes:
        return self.ca.certificate.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, directory: Path) -> Path:
        path = directory / "trust-bundle.pem"
        path.write_bytes(self.bundle_pem)
        return path

    def signer_bindings(self, agencies: Iterable[str]) -> dict[str, tuple[SignerBinding, ...]]:
        """Ingest's `signer_bindings`: the run's signer (its organisation, under the run's CA)
        may sign for every agency of the run, own and others."""
        issuer = hashlib.sha256(self.ca.certificate.public_bytes(serialization.Encoding.DER))
        binding = SignerBinding(organisation=ORGANISATION, issuer_sha256=issuer.hexdigest())
        return dict.fromkeys(agencies, (binding,))


def _identity(common_name: str, issuer: Identity | None, *, ca: bool, now: datetime) -> Identity:
    return issue(
        common_name,
        issuer,
        ca=ca,
        key=KeyKind.EC_P256,
        organisation=ORGANISATION,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )


def make_pki(now: datetime | None = None) -> RunPki:
    moment = now or datetime.now(UTC)
    ca = _identity("govsync local run CA", None, ca=True, now=moment)
    return RunPki(
        ca=ca,
        signer=_identity("Văn thư chạy thử", ca, ca=False, now=moment),
        stranger=_identity("Người ký tự cấp", None, ca=False, now=moment),
    )


def _e(tag: str, value: str) -> str:
    return f"<edXML:{tag}>{escape(value)}</edXML:{tag}>"


def build_package(spec: DocumentSpec, subject: str = SUBJECT) -> bytes:
    """The minimal document package ingest accepts (QCVN 102:2016), unsigned."""
    date = spec.date.astimezone(LOCAL_TZ)
    day, stamp = f"{date:%Y/%m/%d}", f"{date:%Y/%m/%d %H:%M:%S}"
    header = (
        f"<edXML:MessageHeader><edXML:From>{_e('OrganId', spec.issuer)}"
        f"{_e('OrganName', 'Cơ quan gửi')}</edXML:From>"
        f"<edXML:To>{_e('OrganId', spec.recipient)}{_e('OrganName', 'Cơ quan nhận')}</edXML:To>"
        f"<edXML:Code>{_e('CodeNumber', spec.number)}{_e('CodeNotation', spec.notation)}"
        f"</edXML:Code><edXML:PromulgationInfo>{_e('Place', 'Hà Nội')}"
        f"{_e('PromulgationDate', day)}</edXML:PromulgationInfo>"
        f"<edXML:DocumentType>{_e('Type', '1')}{_e('TypeName', 'Công văn')}</edXML:DocumentType>"
        f"{_e('Subject', subject)}{_e('DocumentId', spec.document_id)}</edXML:MessageHeader>"
        f"<edXML:TraceHeaderList><edXML:TraceHeader>{_e('OrganId', spec.issuer)}"
        f"{_e('Timestamp', stamp)}</edXML:TraceHeader><edXML:Bussiness>"
        f"{_e('BussinessDocType', '0')}</edXML:Bussiness></edXML:TraceHeaderList>"
    )
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?><edXML:edXML xmlns:edXML="{EDXML_NS}">'
        f"<edXML:edXMLEnvelope><edXML:edXMLHeader>{header}</edXML:edXMLHeader>"
        "<edXML:edXMLBody><edXML:edXMLManifest/></edXML:edXMLBody>"
        "</edXML:edXMLEnvelope></edXML:edXML>"
    )
    return text.encode()


def sign(xml: bytes, identity: Identity) -> bytes:
    """Enveloped XML-DSig over the whole package, placed at the end of `edXMLHeader`."""
    return to_bytes(sign_enveloped(xml, identity, algorithm="ecdsa-sha256", digest="sha256"))


class Packager:
    """Writes each spec as the package that makes ingest reach the spec's verdict."""

    def __init__(self, pki: RunPki) -> None:
        self.pki = pki

    def render(self, spec: DocumentSpec) -> bytes:
        plain = build_package(spec)
        verdict = spec.verdict
        if verdict is SignatureVerdict.UNSIGNED:
            return plain
        if verdict is SignatureVerdict.UNTRUSTED:
            return sign(plain, self.pki.stranger)
        signed = sign(plain, self.pki.signer)
        if verdict is SignatureVerdict.INVALID:
            # Changed after signing, as a tamperer would: the digest no longer matches.
            return signed.replace(SUBJECT.encode(), TAMPERED_SUBJECT.encode(), 1)
        return signed
