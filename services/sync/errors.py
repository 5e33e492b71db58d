"""Errors of the sync service: what a destination answered, sorted by what the worker does next,
and the few that stop the process.

```
SyncError
├── TransientError                retryable: try again later with backoff; never dead-lettered
│   ├── DestinationUnavailableError   connection refused/reset, timeouts, 5xx, retryable error codes
│   │   └── RateLimitedError          429; carries the destination's Retry-After
│   └── AuthenticationError           login or token refused (credentials, IP allow-list):
│                                     not the record's fault, so the backlog waits for an operator
├── PermanentError                not retryable: dead-lettered, and the partition moves on
│   ├── RejectedError                 the destination validated the record and refused it
│   ├── UndecodableRecordError        the normalised record is not a valid `DossierRecord`
│   ├── HeaderRefusedError            a step of a dossier whose header the portal refused: never
│   │                                 sent, dead-lettered with the header's answer
│   └── HeaderMissingError            a step that waited `step_wait_seconds` and no header of
│                                     its dossier was accepted: never sent
├── SessionExpiredError           handled in the portal client (below)
├── DossierExistsError            handled in the portal client (below)
├── DossierMissingError           handled in the portal client (below)
├── UnmappableRecordError         not retryable (also a ValueError): a valid record the mapping
│                                 cannot translate (kind dossier without a header, progress
│                                 without a step); it escapes the delivery
├── DestinationConfigError        configuration (also a ValueError): a destination URL that is
│                                 not https (unless allowed), or an empty password or secret; at
│                                 start
├── TopicLayoutError              configuration (also a RuntimeError): the acknowledged-revisions
│                                 topic is not co-partitioned with the normalised topic; at start
└── ShutdownTimeoutError          (also a RuntimeError) the worker did not stop within the budget
```

Three answers are part of the protocol rather than failures and are handled inside the portal
client: `DossierExistsError` ("đã tồn tại" on a create: send it again as an update),
`DossierMissingError` (an update of a dossier the portal does not have: send it as a create) and
`SessionExpiredError` (log in again once).

Programming errors stay Python's own (`ValueError` for an impossible constructor argument,
`AssertionError` for an unreachable branch) and are not part of the tree.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error the sync service raises on purpose."""

    retryable: bool = False


class TransientError(SyncError):
    """Retryable: the same request may succeed later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DestinationUnavailableError(TransientError):
    """Retryable: no useful answer (network, timeout, 5xx, a retryable error code)."""


class RateLimitedError(DestinationUnavailableError):
    """Retryable: 429 Too Many Requests; `retry_after` says when to come back."""


class AuthenticationError(TransientError):
    """Retryable: credentials refused; waits (with back-pressure) instead of dead-lettering."""


class SessionExpiredError(SyncError):
    """Handled in the portal client: the session was rejected; log in again once and resend."""

    retryable = True


class DossierExistsError(SyncError):
    """Handled in the portal client: a create met "đã tồn tại"; resend as an update."""

    retryable = True


class DossierMissingError(SyncError):
    """Handled in the portal client: an update of an unknown dossier; resend as a create."""

    retryable = True


class PermanentError(SyncError):
    """Not retryable: the record goes to the dead-letter topic with the destination's answer."""

    def __init__(self, message: str, *, answer: str = "") -> None:
        super().__init__(message)
        self.answer = answer


class RejectedError(PermanentError):
    """Not retryable: the destination refused the record's content (validation)."""


class UndecodableRecordError(PermanentError):
    """Not retryable: the normalised topic held something that is not a `DossierRecord`."""


class HeaderRefusedError(PermanentError):
    """Not retryable: the portal refused the dossier's header, so it holds nothing to step on."""


class HeaderMissingError(PermanentError):
    """Not retryable: no header of the dossier was accepted while the step waited for one."""


class UnmappableRecordError(SyncError, ValueError):
    """Not retryable: a record the portal mapping cannot translate (`mapping.py`)."""


class DestinationConfigError(SyncError, ValueError):
    """Not retryable, a configuration error: the worker will not start against this destination."""


class TopicLayoutError(SyncError, RuntimeError):
    """Not retryable, a configuration error: topics that must be co-partitioned are not."""


class ShutdownTimeoutError(SyncError, RuntimeError):
    """The worker did not finish and commit within the shutdown budget; the process exits 1."""
