"""Reading the three topics: records into changes, or an error with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.dossier import DossierStatus
from schemas.facts import SyncAck
from services.scores import decode
from services.scores.errors import UndecodableRecordError
from services.scores.store import AckChange, DocumentChange

NOW = datetime(2026, 11, 20, 3, tzinfo=UTC).isoformat()


def _document(business_type: str = "new", replaces: list[str] | None = None) -> bytes:
    return json.dumps(
        {
            "document_id": "000.00.10.H29,2026/11/20,12/QD",
            "issuer": {"organ_id": "000.00.10.H29", "code_valid": True},
            "business_type": business_type,
            "replaces": replaces or [],
            "direction": "outgoing",
            "signature": {"verdict": "verified"},
            "agency": "000.00.10.H29",
            "package_sha256": "a" * 64,
            "source": "s",
            "event_id": "e",
            "event_time": NOW,
            "ingested_at": NOW,
        }
    ).encode()


def test_a_record_with_facts() -> None:
    value = json.dumps(
        {"dossier_code": "H29-1", "revision": 3, "kind": "progress", "facts": {
            "agency": "000.00.10.H29", "status": 4, "received_at": NOW}}
    ).encode()  # fmt: skip
    change = decode.dossier(value)
    assert (change.code, change.revision, change.facts.status) == (
        "H29-1",
        3,
        DossierStatus.IN_PROCESS,
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b'{"dossier_code": "H29-1", "revision": 1}', id="no-facts"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(None, id="tombstone"),
        pytest.param(
            b'{"dossier_code": "H29-1", "revision": 0, "facts": {"agency": null, "status": 2}}',
            id="revision-0",
        ),
    ],
)
def test_bad_dossier_records_say_why(value: bytes | None) -> None:
    with pytest.raises(UndecodableRecordError) as caught:
        decode.dossier(value)
    assert caught.value.detail


def test_acknowledgements() -> None:
    value = SyncAck(revision=4, received=True, header=True).model_dump_json().encode()
    assert decode.ack(b"H29-1", value) == AckChange("H29-1", 4, True)
    legacy = b'{"revision": 2, "received": true, "at": null}'  # before `header` existed
    assert decode.ack(b"H29-1", legacy).header is False
    assert not decode.is_ack(b"\x00govsync-restore-marker", b"abc")
    assert not decode.is_ack(b"H29-1", None)
    assert not decode.is_ack(None, value)
    with pytest.raises(UndecodableRecordError):
        decode.ack(b"H29-1", b"{}")


def test_documents_and_their_status() -> None:
    headers = [("govsync-record-type", b"edocument")]
    new = decode.edocument(_document(), headers)
    assert isinstance(new, DocumentChange)
    assert (new.outgoing, new.verified, new.counts, new.withdraws) == (True, True, True, ())
    assert new.promulgated is not None  # no promulgation date: the event time
    revoking = decode.edocument(_document("revoked", ["OLD"]), headers)
    assert isinstance(revoking, DocumentChange)
    assert (revoking.counts, revoking.withdraws) == (False, ("OLD",))
    status = json.dumps(
        {"document_id": "OLD", "status_code": "15", "state": "recall_accepted",
         "responder": {"organ_id": "000.00.12.H29", "code_valid": True}, "timestamp": NOW,
         "source": "s", "event_id": "e2", "event_time": NOW, "ingested_at": NOW}
    ).encode()  # fmt: skip
    assert decode.edocument(status, [("govsync-record-type", b"edocument-status")]) == "OLD"
    delivered = status.replace(b'"15"', b'"01"').replace(b"recall_accepted", b"delivered")
    assert decode.edocument(delivered, []) is None  # told apart without the header too
    with pytest.raises(UndecodableRecordError):
        decode.edocument(b"{}", headers)
