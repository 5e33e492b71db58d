"""The portal's codes every dossier contract shares: status, channel, and 2.1's timeliness.

Their own module so that `schemas.dossier` (the events and the record) and `schemas.facts` (the
facts the record carries) both import them without importing each other in a circle.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class DossierStatus(IntEnum):
    """`TrangThaiHoSo` codes (DOMAIN.md §1)."""

    SUBMITTED = 1
    ACCEPTED = 2
    REJECTED = 3
    IN_PROCESS = 4
    SUPPLEMENT_REQUESTED = 5
    PAYMENT_REQUESTED = 6
    WITHDRAWN = 7
    STOPPED = 8
    FINISHED = 9
    RETURNED = 10


RECEIVED_STATUSES = frozenset(DossierStatus) - {DossierStatus.SUBMITTED, DossierStatus.REJECTED}
FINISHED_STATUSES = frozenset(
    {DossierStatus.WITHDRAWN, DossierStatus.FINISHED, DossierStatus.RETURNED}
)


class Channel(IntEnum):
    """`KenhThucHien`."""

    IN_PERSON = 1
    ONLINE = 2
    POSTAL = 3


class Timeliness(StrEnum):
    """Indicator 2.1 as far as the record shows it."""

    ON_TIME = "on_time"
    LATE = "late"
    IN_PROGRESS = "in_progress"
    OVERDUE = "overdue"
    NO_DUE_DATE = "no_due_date"
    """Ended, with neither a due date (`NgayHenTra`) nor a configured legal limit to judge it by:
    not on time, because nothing says it was."""
