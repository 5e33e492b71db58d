"""Errors of the reconciliation. Portal failures during a lookup are the sync client's own
(`services.sync.errors.TransientError` and below): they pause a sweep, never fail it.

```
ReconcileError
├── SweepBusyError        another sweep of the agency holds its lease: not now (retry later)
├── ConfigurationError    nothing to ask: no department id for the agency, a bad period
└── ReportingError        retryable: the reporting API did not answer with figures
```
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of every error the reconciliation raises on purpose."""

    retryable: bool = False


class SweepBusyError(ReconcileError):
    """Another sweep of the same agency is running (its lease has not expired)."""

    retryable = True


class ConfigurationError(ReconcileError, ValueError):
    """The question cannot be asked as configured."""


class ReportingError(ReconcileError):
    """The reporting API failed or answered something that is not its figures."""

    retryable = True
