"""Reading the three topics: records into changes, or an error with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.dossier import DossierStatus
from schemas.facts import SyncAck
from services.scores import decode
from services.scores.changes import AckChange, DocumentChange
from services.scores.errors import UndecodableRecordError

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


def _record(code: str, revision: int, status: int = 4) -> bytes:
    return json.dumps(
        {"dossier_code": code, "revision": revision, "facts": {
            "agency": "000.00.10.H29", "status": status, "received_at": NOW}}
    ).encode()  # fmt: skip


def test_only_the_newest_of_a_dossier_in_a_fetch_is_kept() -> None:
    messages = [
        (b"H29-1", _record("H29-1", 1)),
        (b"H29-2", _record("H29-2", 5)),
        (b"H29-1", _record("H29-1", 3, status=9)),
        (b"H29-1", _record("H29-1", 2)),  # older than 3, arriving after it (a replay)
    ]
    newest = decode.newest_dossiers(messages)
    got = sorted((c.code, c.revision, int(c.facts.status)) for c in newest.changes)
    assert got == [("H29-1", 3, 9), ("H29-2", 5, 4)]
    assert (newest.superseded, newest.failed) == (2, [])


def test_a_newest_record_that_cannot_be_read_falls_back_to_the_one_before() -> None:
    broken = b'{"dossier_code": "H29-1", "revision": 3, "facts": {"status": 99}}'
    messages = [
        (b"H29-1", _record("H29-1", 1)),
        (b"H29-1", _record("H29-1", 2)),
        (b"H29-1", broken),
        (b"H29-1", b"not json"),
        (b"H29-3", b'{"revision": 1}'),  # alone under its key: decoded straight away
    ]
    newest = decode.newest_dossiers(messages)
    assert [(c.code, c.revision) for c in newest.changes] == [("H29-1", 2)]
    assert newest.superseded == 1  # revision 1
    assert sorted(i for i, _ in newest.failed) == [2, 3, 4]
    assert all(error.detail for _, error in newest.failed)


def test_records_of_other_dossiers_under_one_key_are_each_kept() -> None:
    messages = [(None, _record("H29-1", 1)), (None, _record("H29-2", 1))]
    newest = decode.newest_dossiers(messages)
    assert sorted(c.code for c in newest.changes) == ["H29-1", "H29-2"]
    assert newest.superseded == 0
