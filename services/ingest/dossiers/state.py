"""Per-dossier state: what ingest remembers of each dossier, its status history, its byte format.

Pure. A replica holds the state of every dossier of its partitions, open or recently finished,
and an archive entry for each dossier it evicted (see `services/ingest/worker.py`); both are the
same packed bytes, in memory and on the compacted state topic, so a held dossier costs about as
much as its bytes and a restore reads them back as they are. `decide.py` unpacks the state of
the dossier an event is about, and packs the state it decides on.

The byte format, version 2 (little-endian; `_FIXED`, then variable-length parts):

    B version (2) | B archived | B status | I revision | q header_ms | q progress_ms
    q touched_ms
    B counted | H parts | B channel | H flags | b paid_online | B listed_supplements
    q submitted_ms | q received_ms | q due_ms | q finished_ms | q returned_ms | q rejected_ms
    B n, n*8 recent | B n, header digest | B n, step digest | B n, n*(q ms, B status) history
    H n, agency (UTF-8) | H n, procedure (UTF-8) | H n, owner (UTF-8)

The owner (the source that first wrote the dossier) came last, later: a state written without it
reads as owned by nobody, and a reader from before it ignores it.

Version 1 (a JSON list, written before the facts and the history existed) is still read: its
status becomes a one-entry history, its other facts start unknown.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
import sys
from dataclasses import dataclass

import orjson

from services.common.indicators import is_end

RECENT = 4
"""Event ids remembered per dossier, for redeliveries."""
HISTORY_LIMIT = 64
"""Status changes kept per dossier (a dossier has a handful; a runaway one keeps its first)."""
_DIGEST = 8  # bytes
_VERSION = 2
_FIXED = struct.Struct("<BBBIqqqBHBHbB6q")
_ENTRY = struct.Struct("<qB")
_LENGTH = struct.Struct("<H")


class Flag:
    """Bits of `DossierState.flags`: the latest value each header sent of each yes/no fact."""

    DIGITISED_FLAG = 1
    """`HoSoCoThanhPhanSoHoa` = 1, as the latest header that sent it said."""
    ATTACHED = 2
    """The latest non-empty `TaiLieuNop` has a file not deleted."""
    ATTACHED_DIGITISED = 4
    """... one with `DuocSoHoa` = 1."""
    ATTACHED_NATIONAL = 8
    """... one with `DuocLayTuKhoDMQG` = 1."""
    VNEID = 16
    """`TaiKhoanDuocXacThucVoiVNeID` = 1, as the latest header that sent it said."""
    RESULT_FILE = 32
    """The latest non-empty `DanhSachGiayToKetQua` links a result file."""
    FEES_KNOWN = 64
    """A fee list (`DanhSachLePhi`) was sent."""
    FEE_BEARING = 128
    """The latest fee list has a fee over 0."""


def digest(*parts: bytes) -> bytes:
    """8 bytes of BLAKE2b over the parts, each after its length (4 bytes, big-endian)."""
    framed = b"".join([b for part in parts for b in (len(part).to_bytes(4, "big"), part)])
    return hashlib.blake2b(framed, digest_size=_DIGEST).digest()


def interned(text: str | None) -> str | None:
    """A few hundred agency and procedure codes are shared by every dossier held: one copy each."""
    return sys.intern(text) if text else None


def _digests(packed: bytes) -> list[bytes]:
    return [packed[i : i + _DIGEST] for i in range(0, len(packed), _DIGEST)]


# --- the status history ---------------------------------------------------------------------------


def history_entries(history: bytes) -> list[tuple[int, int]]:
    """(epoch ms, status) of each status change, oldest first."""
    return list(_ENTRY.iter_unpack(history))


def _same_moment(a_ms: int, b_ms: int) -> bool:
    """Equal, or one a whole second and the other within it."""
    if a_ms == b_ms:
        return True
    return a_ms // 1000 == b_ms // 1000 and (a_ms % 1000 == 0 or b_ms % 1000 == 0)


def with_change(history: bytes, at_ms: int, status: int) -> bytes:
    """The history with the dossier at `status` from `at_ms` on, wherever that falls in time.

    Only changes are kept: a status the dossier already had just before `at_ms` adds nothing,
    and the same status just after it becomes redundant. Equal times keep the order of arrival.
    The same status reported at a whole second and within that second (a header's time is to the
    millisecond, its step's date only to the second) is one change, reported twice.
    """
    entries = history_entries(history)
    if any(s == status and _same_moment(ms, at_ms) for ms, s in entries):
        return history
    i = bisect.bisect_right([ms for ms, _ in entries], at_ms)
    if i and entries[i - 1][1] == status:
        return history
    entries.insert(i, (at_ms, status))
    if i + 1 < len(entries) and entries[i + 1][1] == status:
        del entries[i + 1]
    if len(entries) > HISTORY_LIMIT:
        del entries[1]
    return b"".join(_ENTRY.pack(ms, s) for ms, s in entries)


def with_newest(history: bytes, at_ms: int, status: int) -> bytes:
    """The history with the dossier at `status` after every change it holds (at `at_ms`, or at
    the last change's time if that is later): the change of an item whose time is only a lower
    bound, accepted as the newest."""
    if not history:
        return _ENTRY.pack(at_ms, status)
    last_ms, last_status = _ENTRY.unpack_from(history, len(history) - _ENTRY.size)
    if last_status == status:
        return history
    history += _ENTRY.pack(max(at_ms, last_ms), status)
    if len(history) > HISTORY_LIMIT * _ENTRY.size:  # as `with_change`: the first change stays
        history = history[: _ENTRY.size] + history[2 * _ENTRY.size :]
    return history


# --- the state ------------------------------------------------------------------------------------


@dataclass(slots=True)
class DossierState:
    """Everything ingest remembers about one dossier, in integers (epoch milliseconds, 0: none)."""

    revision: int = 0
    header_ms: int = 0
    """Source time of the newest header accepted: an older header is stale."""
    progress_ms: int = 0
    """Source time (`ThoiDiemXuLy`) of the newest step accepted: an older step is stale."""
    touched_ms: int = 0
    """govsync's clock when it last accepted a change: eviction and archive expiry count from
    it, never from a source's time (a backfilled dossier is not evicted on arrival)."""
    recent: bytes = b""
    """Digests of the last few (source, event id) pairs accepted, 8 bytes each, end to end."""
    header_digest: bytes = b""
    step_digest: bytes = b""
    counted: int = 0
    """`indicators.CountedFlag` bits: which operational counters counted it."""
    parts: int = 0
    """`indicators.counted_parts` of its current facts: where it counts in the gauges."""
    history: bytes = b""
    """Its status changes, oldest first (`history_entries`): the status is the last one."""
    agency: str | None = None
    procedure: str | None = None
    channel: int = 0
    flags: int = 0
    """`Flag` bits."""
    paid_online: int = -1
    """`DuocThanhToanTrucTuyen` as last sent; -1: never sent."""
    listed_supplements: int = 0
    """The most supplement requests (`DanhSachHoSoBoSung`) any header listed."""
    submitted_ms: int = 0
    received_ms: int = 0
    """`NgayTiepNhan` as last sent (the history gives the time a received status was reached)."""
    due_ms: int = 0
    finished_ms: int = 0
    returned_ms: int = 0
    rejected_ms: int = 0
    archived: bool = False
    """Evicted: kept only so that a dossier coming back continues where it was."""
    owner: str | None = None
    """The CloudEvents source that first wrote it; another may write it only if configuration
    shares it (`services/ingest/binding.py`)."""

    @property
    def status(self) -> int:
        """The latest status in time; 0 before any."""
        # The last byte of the history is its last entry's status.
        return self.history[-1] if self.history else 0

    @property
    def finished(self) -> bool:
        return is_end(self.status)

    def remembers(self, event_key: bytes) -> bool:
        """`event_key` (a `digest`) is among the last `RECENT` accepted."""
        return event_key in _digests(self.recent)

    def remember(self, event_key: bytes) -> None:
        self.recent = self.recent[-(RECENT - 1) * _DIGEST :] + event_key

    def copy(self) -> DossierState:
        # Every field is immutable (bytes, str, int): a shallow copy is a full one.
        return DossierState(**{name: getattr(self, name) for name in DossierState.__slots__})

    def to_bytes(self) -> bytes:
        agency = (self.agency or "").encode()
        procedure = (self.procedure or "").encode()
        owner = (self.owner or "").encode()
        recent = b"" if self.archived else self.recent
        return b"".join(
            (
                _FIXED.pack(
                    _VERSION,
                    self.archived,
                    self.status,
                    self.revision,
                    self.header_ms,
                    self.progress_ms,
                    self.touched_ms,
                    self.counted,
                    self.parts,
                    self.channel,
                    self.flags,
                    self.paid_online,
                    min(self.listed_supplements, 255),
                    self.submitted_ms,
                    self.received_ms,
                    self.due_ms,
                    self.finished_ms,
                    self.returned_ms,
                    self.rejected_ms,
                ),
                bytes((len(recent) // _DIGEST,)),
                recent,
                bytes((len(self.header_digest),)),
                self.header_digest,
                bytes((len(self.step_digest),)),
                self.step_digest,
                bytes((len(self.history) // _ENTRY.size,)),
                self.history,
                _LENGTH.pack(len(agency)),
                agency,
                _LENGTH.pack(len(procedure)),
                procedure,
                _LENGTH.pack(len(owner)),
                owner,
            )
        )

    @classmethod
    def from_bytes(cls, value: bytes) -> DossierState:
        if value[:1] == b"[":
            return cls._from_version_1(value)
        fixed = _FIXED.unpack_from(value)
        if fixed[0] != _VERSION:
            raise ValueError(f"unknown state version {fixed[0]}")
        # Each variable part is its length (a count byte, or two bytes for text), then itself.
        pos = _FIXED.size
        end = pos + 1 + value[pos] * _DIGEST
        recent, pos = value[pos + 1 : end], end
        end = pos + 1 + value[pos]
        header_digest, pos = value[pos + 1 : end], end
        end = pos + 1 + value[pos]
        step_digest, pos = value[pos + 1 : end], end
        end = pos + 1 + value[pos] * _ENTRY.size
        history, pos = value[pos + 1 : end], end
        texts: list[str] = []
        for optional in (False, False, True):  # agency, procedure, owner (absent before it was)
            if optional and pos >= len(value):
                texts.append("")
                continue
            end = pos + 2 + _LENGTH.unpack_from(value, pos)[0]
            texts.append(value[pos + 2 : end].decode())
            pos = end
        agency, procedure, owner = texts
        return cls(
            revision=fixed[3],
            header_ms=fixed[4],
            progress_ms=fixed[5],
            touched_ms=fixed[6],
            recent=recent,
            header_digest=header_digest,
            step_digest=step_digest,
            counted=fixed[7],
            parts=fixed[8],
            history=history,
            agency=interned(agency),
            procedure=interned(procedure),
            channel=fixed[9],
            flags=fixed[10],
            paid_online=fixed[11],
            listed_supplements=fixed[12],
            submitted_ms=fixed[13],
            received_ms=fixed[14],
            due_ms=fixed[15],
            finished_ms=fixed[16],
            returned_ms=fixed[17],
            rejected_ms=fixed[18],
            archived=bool(fixed[1]),
            owner=interned(owner),
        )

    @classmethod
    def _from_version_1(cls, value: bytes) -> DossierState:
        """A state written by the version before the facts: what it knew, the rest unknown."""
        fields = orjson.loads(value)
        if fields[0] != 1:
            raise ValueError(f"unknown state version {fields[0]}")
        status, status_ms = fields[2], fields[3]
        return cls(
            revision=fields[1],
            header_ms=fields[4],
            progress_ms=fields[5],
            recent=b"".join(bytes.fromhex(d) for d in fields[6]),
            header_digest=bytes.fromhex(fields[7]),
            step_digest=bytes.fromhex(fields[8]),
            counted=fields[9],
            history=_ENTRY.pack(status_ms, status) if status else b"",
            listed_supplements=min(fields[10], 255),
            due_ms=fields[13],
            received_ms=fields[14],
            agency=interned(fields[16]),
            procedure=interned(fields[17]),
            channel=fields[18],
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """What the worker's eviction pass reads of packed state, without unpacking all of it."""

    archived: bool
    status: int
    touched_ms: int


def summary(packed: bytes) -> Summary:
    if packed[:1] == b"[":  # version 1: open or not, it was never touched by this version
        fields = orjson.loads(packed)
        return Summary(archived=False, status=fields[2], touched_ms=0)
    _, archived, status, _, _, _, touched_ms = _HEAD.unpack_from(packed)
    return Summary(archived=bool(archived), status=status, touched_ms=touched_ms)


_HEAD = struct.Struct("<BBBIqqq")
