"""Reading the three inbound topics into store changes. Pure: bytes in, a change or an
`UndecodableRecordError` (with the reason) out.

- `govsync.dossier.normalized.v1`: `DossierRecord`s; only `dossier_code`, `revision` and `facts`
  are read (the rest of the record is ingest's and sync's business).
- `govsync.sync.portal.acked.v1` (compacted): `SyncAck` values keyed by dossier code; `header`
  means the portal holds the dossier. The sync's restore markers (keys starting with a NUL byte)
  and tombstones are not acknowledgements and are skipped.
- `govsync.edocument.normalized.v1`: `EDocumentRecord`s and `EDocumentStatusRecord`s, told
  apart by the `govsync-record-type` header.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.edocument import (
    BusinessType,
    Direction,
    EDocumentRecord,
    EDocumentState,
    EDocumentStatusRecord,
    SignatureVerdict,
)
from schemas.facts import DossierFacts, SyncAck
from services.common.dates import to_ms
from services.scores.errors import UndecodableRecordError
from services.scores.store import AckChange, DocumentChange, DossierChange


class _Scored(BaseModel):
    """What the scores read of a `DossierRecord`: the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    dossier_code: str = Field(min_length=1, max_length=100)
    revision: int = Field(ge=1)
    facts: DossierFacts


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:10]
    )


def dossier(value: bytes | None) -> DossierChange:
    try:
        record = _Scored.model_validate_json(value or b"")
    except ValidationError as exc:
        raise UndecodableRecordError(
            "not a DossierRecord with facts", detail=_problems(exc)
        ) from None
    return DossierChange(record.dossier_code, record.revision, record.facts)


def is_ack(key: bytes | None, value: bytes | None) -> bool:
    """A real acknowledgement: not a restore marker, not a tombstone."""
    return key is not None and key[:1] not in (b"", b"\x00") and value is not None


def ack(key: bytes, value: bytes) -> AckChange:
    try:
        acked = SyncAck.model_validate_json(value)
        code = key.decode()
    except (ValidationError, UnicodeDecodeError) as exc:
        detail = _problems(exc) if isinstance(exc, ValidationError) else "key is not UTF-8"
        raise UndecodableRecordError("not a SyncAck", detail=detail) from None
    return AckChange(code, acked.revision, acked.header)


def edocument(
    value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> DocumentChange | str | None:
    """A document's change, or the id of a document recalled (a status package 15), or None
    for a status package that changes nothing the scores read."""
    kind = dict(headers).get("govsync-record-type")
    try:
        if kind == b"edocument-status":
            return _status(EDocumentStatusRecord.model_validate_json(value or b""))
        if kind == b"edocument":
            return _document(EDocumentRecord.model_validate_json(value or b""))
        try:
            return _document(EDocumentRecord.model_validate_json(value or b""))
        except ValidationError:
            return _status(EDocumentStatusRecord.model_validate_json(value or b""))
    except ValidationError as exc:
        raise UndecodableRecordError(
            "not an EDocumentRecord or EDocumentStatusRecord", detail=_problems(exc)
        ) from None


def _document(record: EDocumentRecord) -> DocumentChange:
    revokes = record.business_type is BusinessType.REVOKED
    return DocumentChange(
        document_id=record.document_id,
        version=to_ms(record.event_time),
        agency=record.agency,
        promulgated=record.promulgation_date or record.event_time,
        outgoing=record.direction is Direction.OUTGOING,
        verified=record.signature.verdict is SignatureVerdict.VERIFIED,
        counts=not revokes,
        withdraws=record.replaces if record.business_type is not BusinessType.NEW else (),
    )


def _status(record: EDocumentStatusRecord) -> str | None:
    return record.document_id if record.state is EDocumentState.RECALL_ACCEPTED else None
