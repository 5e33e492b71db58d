"""Reading the three inbound topics into store changes. Pure: bytes in, a change or an
`UndecodableRecordError` (with the reason) out.

- `govsync.dossier.normalized.v1`: `DossierRecord`s; only `dossier_code`, `revision` and `facts`
  are read (the rest of the record is ingest's and sync's business). Of several records of one
  dossier in a fetch only the newest is decoded in full (`newest_dossiers`).
- `govsync.sync.portal.acked.v1` (compacted): `SyncAck` values keyed by dossier code; `header`
  means the portal holds the dossier. The sync's restore markers (keys starting with a NUL byte)
  and tombstones are not acknowledgements and are skipped.
- `govsync.edocument.normalized.v1`: `EDocumentRecord`s and `EDocumentStatusRecord`s, told
  apart by the `govsync-record-type` header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
from services.scores.changes import AckChange, DocumentChange, DossierChange
from services.scores.errors import UndecodableRecordError


class _Scored(BaseModel):
    """What the scores read of a `DossierRecord`: the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    dossier_code: str = Field(min_length=1, max_length=100)
    revision: int = Field(ge=1)
    facts: DossierFacts


class _Revision(BaseModel):
    """A `DossierRecord`'s code and revision only: which of one dossier's records is newest."""

    model_config = ConfigDict(extra="ignore")

    dossier_code: str = Field(min_length=1, max_length=100)
    revision: int = Field(ge=1)


_NOT_A_RECORD = "not a DossierRecord with facts"


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:10]
    )


def dossier(value: bytes | None) -> DossierChange:
    try:
        record = _Scored.model_validate_json(value or b"")
    except ValidationError as exc:
        raise UndecodableRecordError(_NOT_A_RECORD, detail=_problems(exc)) from None
    return DossierChange(record.dossier_code, record.revision, record.facts)


@dataclass(slots=True)
class Newest:
    """A fetch's dossier records: the newest change of each dossier, how many older records
    of the same dossiers it supersedes, and the records that cannot be read (by position)."""

    changes: list[DossierChange] = field(default_factory=list)
    superseded: int = 0
    failed: list[tuple[int, UndecodableRecordError]] = field(default_factory=list)


def newest_dossiers(messages: Sequence[tuple[bytes | None, bytes | None]]) -> Newest:
    """Of a fetch's (key, value) records, each dossier's newest revision, decoded in full.

    Ingest keys the records by dossier code, so only records sharing a key can supersede each
    other: those are first read as far as their code and revision, and only the newest of a
    dossier is decoded in full (if it cannot be, the next newest is tried, as if the records had
    been applied one by one). The older ones could change nothing, since the store keeps only
    the newest revision of a dossier: they are counted as superseded. A record alone under its
    key is decoded straight away. A record that cannot be read is a failure with the reason.
    """
    out = Newest()
    by_key: dict[bytes | None, list[int]] = {}
    for i, (key, _) in enumerate(messages):
        by_key.setdefault(key, []).append(i)
    for positions in by_key.values():
        if len(positions) == 1:
            _decode_into(out, messages, positions[0])
            continue
        candidates: dict[str, list[tuple[int, int]]] = {}
        for i in positions:
            try:
                head = _Revision.model_validate_json(messages[i][1] or b"")
            except ValidationError as exc:
                out.failed.append((i, UndecodableRecordError(_NOT_A_RECORD, detail=_problems(exc))))
                continue
            candidates.setdefault(head.dossier_code, []).append((head.revision, i))
        for found in candidates.values():
            found.sort(reverse=True)  # the newest first; of equal revisions, the later record
            for n, (_, i) in enumerate(found):
                if _decode_into(out, messages, i):
                    out.superseded += len(found) - n - 1
                    break
    return out


def _decode_into(
    out: Newest, messages: Sequence[tuple[bytes | None, bytes | None]], i: int
) -> bool:
    try:
        out.changes.append(dossier(messages[i][1]))
    except UndecodableRecordError as exc:
        out.failed.append((i, exc))
        return False
    return True


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
