"""Errors of the scores service, sorted by what happens next.

```
ScoresError
├── ConfigurationError          not retryable: a settings file (procedure catalogue, agency
│                               crosswalk) cannot be read; the process refuses to start
├── UndecodableRecordError      not retryable: a topic held something that is not a record of
│                               its contract; dead-lettered with the reason, the offset moves on
├── BadQueryError               not retryable: an API question that has no answer (an unknown
│                               indicator, a malformed period); answered 4xx with the reason
└── ShutdownTimeoutError        (also a RuntimeError) the worker did not stop within the budget
```

Database errors stay SQLAlchemy's own: they are not the record's fault, so they crash the
worker (nothing is committed to Kafka beyond what the database holds) and Kubernetes restarts it.
"""

from __future__ import annotations


class ScoresError(Exception):
    """Base of every error the scores service raises on purpose."""

    retryable: bool = False


class ConfigurationError(ScoresError, ValueError):
    """Not retryable: a configuration file is missing or malformed; the message says where."""


class UndecodableRecordError(ScoresError):
    """Not retryable: not a record of the topic's contract; goes to the dead letters."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class BadQueryError(ScoresError, ValueError):
    """Not retryable: the question cannot be answered as asked (HTTP 4xx)."""


class ShutdownTimeoutError(ScoresError, RuntimeError):
    """The worker did not finish and commit within the shutdown budget; the process exits 1."""
