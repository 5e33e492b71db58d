"""Every error the ingest service raises on purpose; handlers branch on the class, not the message.

    IngestError                      root; `retryable` says whether trying again can help
    ├── EventRefusedError            one event can never be accepted as it is; not retryable: the
    │   │                            same bytes fail the same way, so they go to the dead-letter
    │   │                            topic (the HTTP intake answers 422); `stage` says where
    │   ├── DecodeError              decode: not a CloudEvent, not JSON, wrong encoding
    │   │   └── EventTooLargeError       over the topic's per-event limit (the intake answers 413)
    │   ├── UnsupportedTypeError     decode: a CloudEvents `type` govsync does not handle
    │   ├── ContractError            validate: breaks the contract in `schemas/` (field errors)
    │   ├── NormalisationError       normalise: valid shape, impossible content
    │   │   ├── InvalidDateError         a date that does not exist or is in no known format
    │   │   ├── InvalidCodeError         a status, channel or agency code that cannot be mapped
    │   │   └── InvalidUrlError          a file link the portal must not be sent (not http(s),
    │   │                                credentials in it, an internal or loopback host)
    │   ├── EdxmlRefusedError        parse: an edXML package refused; `cause` names the EdxmlError
    │   ├── AgencyNotAllowedError    authorise: the event names an agency its source is not bound
    │   │                            to (`binding.py`); the intake answers 403
    │   ├── NotOwnerError            authorise: a dossier or document another source wrote first,
    │   │                            with no shared group holding both (the worker's state knows)
    │   └── UnexpectedEventError     any other exception met while handling one event (a defect
    │                                the event's content triggers): dead-lettered with the stage
    │                                and the exception's class, never a crashed worker
    ├── EdxmlError                   raised by the edXML reader (`edocuments/edxml.py`); not
    │   │                            retryable; the e-document pipeline turns each into an
    │   │                            EdxmlRefusedError, so none reaches a handler itself
    │   ├── HostileXmlError          DOCTYPE, DTD or entity declarations
    │   ├── XmlTooLargeError         over `max_bytes`, or a node libxml2 refuses without huge_tree
    │   ├── XmlTooDeepError          element nesting over `max_depth`
    │   ├── AttachmentTooLargeError  an attachment over `max_attachment_bytes`, or too many
    │   ├── MalformedXmlError        not well-formed XML, or an attachment that is not base64
    │   ├── NotEdxmlError            well-formed, but neither a document nor a status package
    │   ├── WrappedContentError      a second MessageHeader, or package parts inside a Signature
    │   └── EdxmlFieldError          a required field missing or unreadable
    ├── RequestTooLargeError         an HTTP request over a budget its events share (PDF
    │                                signature checks): 413, the caller splits it; not an event's
    │                                fault, so never a dead letter
    ├── BrokerUnavailableError       retryable: the broker did not acknowledge an intake write
    │                                in time (the HTTP intake answers 503; the caller resends)
    ├── PortalCallRefusedError       a call of the portal-compatible intake (`dvcqg/`) refused as
    │   │                            a whole before any item is written; not retryable as sent
    │   ├── SessionRefusedError      the session token is missing, forged, expired or its
    │   │                            account's password changed (the adapter logs in again)
    │   ├── AccountAgencyNotAllowedError a `madonvi` (envelope or item) the account is not bound to
    │   └── MalformedCallError       not the portal's envelope, an unknown service, too many items
    └── TrustBundleError             configuration (also a ValueError): the trust bundle cannot
                                     be used; fix it and restart

A dead letter names its error by class (`govsync-dlq-error`) and its `stage`, so both are part of
the dead-letter contract. Messages are written for an operator and never contain personal data:
they name fields, elements and sizes, never values taken from the event (a value is quoted only
when it is a code).
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import ValidationError


class IngestError(Exception):
    """Base of every error ingest raises on purpose."""

    stage = "ingest"
    retryable: ClassVar[bool] = False


# --- refusals of one event ----------------------------------------------------------------------


class EventRefusedError(IngestError):
    """An event that can never be accepted as it is. Not retryable: it is dead-lettered."""


class DecodeError(EventRefusedError):
    """Not retryable."""

    stage = "decode"


class EventTooLargeError(DecodeError):
    """Over the per-event limit of its topic. Not retryable."""


class UnsupportedTypeError(EventRefusedError):
    """Not retryable."""

    stage = "decode"


class ContractError(EventRefusedError):
    """Breaks the contract; `errors` lists `(field path, problem)` pairs. Not retryable."""

    stage = "validate"

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)

    @classmethod
    def from_validation(cls, message: str, exc: ValidationError) -> ContractError:
        """Field paths and problems, never the offending values (they may be personal data)."""
        return cls(
            message,
            [
                (".".join(str(p) for p in e["loc"]) or "data", e["msg"])
                for e in exc.errors(include_input=False, include_url=False)
            ],
        )


class NormalisationError(EventRefusedError):
    """Not retryable."""

    stage = "normalise"


class InvalidDateError(NormalisationError):
    """Not retryable."""


class InvalidCodeError(NormalisationError):
    """Not retryable."""


class InvalidUrlError(NormalisationError):
    """Not retryable."""


class EdxmlRefusedError(EventRefusedError):
    """The package is hostile, too large, malformed or not edXML. Not retryable."""

    stage = "parse"

    def __init__(self, error: EdxmlError) -> None:
        super().__init__(str(error))
        self.cause = type(error).__name__


class AgencyNotAllowedError(EventRefusedError):
    """The source may not write this agency's dossiers or documents. Not retryable."""

    stage = "authorise"


class NotOwnerError(EventRefusedError):
    """Another source owns this dossier or document. Not retryable."""

    stage = "authorise"


class UnexpectedEventError(EventRefusedError):
    """An exception nobody foresaw, raised while handling one event. Not retryable as it is: the
    same bytes meet the same defect, so the event is dead-lettered (kept for replay once the
    defect is fixed) and the worker moves on.

    The message names the stage, the exception's class and where it was raised, never the
    exception's own text: that may quote the event (pydantic quotes input values).
    """

    def __init__(self, stage: str, error: Exception) -> None:
        self.stage = stage
        self.error_class = type(error).__name__
        frames = traceback.extract_tb(error.__traceback__)
        self.where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        super().__init__(
            f"unexpected {self.error_class} at stage {stage} ({self.where}): a defect met by"
            " this event, kept for replay once fixed"
        )


class at_stage:  # noqa: N801 - used as the function it replaced
    """Name the stage of any exception that is not already one of ours.

    `IngestError`s pass unchanged (they carry their own stage, and an inner `at_stage` names its
    own); anything else becomes an `UnexpectedEventError` of this stage. A class, not a
    generator: it sits on every event's path, where `@contextmanager` cost microseconds.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, IngestError):
            raise UnexpectedEventError(self.name, exc) from exc


def describe(error: EventRefusedError) -> str:
    """The dead letter's reason: the message and, for contract errors, the fields at fault."""
    if isinstance(error, ContractError) and error.errors:
        fields = "; ".join(f"{path}: {problem}" for path, problem in error.errors[:10])
        return f"{error}: {fields}"
    return str(error)


# --- the edXML reader ---------------------------------------------------------------------------


class EdxmlError(IngestError):
    """A package govsync will never accept as it is. Not retryable."""

    stage = "parse"
    reason: ClassVar[str] = "edxml_error"


class HostileXmlError(EdxmlError):
    """DOCTYPE, DTD or entity declarations (billion laughs, XXE). Not retryable."""

    reason = "hostile_xml"


class XmlTooLargeError(EdxmlError):
    """The package is over the configured size. Not retryable."""

    reason = "too_large"


class XmlTooDeepError(EdxmlError):
    """Elements nest deeper than the configured depth. Not retryable."""

    reason = "too_deep"


class AttachmentTooLargeError(EdxmlError):
    """An attachment is over the configured size, or there are too many. Not retryable."""

    reason = "attachment_too_large"


class MalformedXmlError(EdxmlError):
    """Not well-formed XML, or an attachment that is not base64. Not retryable."""

    reason = "malformed_xml"


class NotEdxmlError(EdxmlError):
    """Well-formed XML with neither a MessageHeader nor a Status. Not retryable."""

    reason = "not_edxml"


class WrappedContentError(EdxmlError):
    """Signature wrapping: content a signature cannot cover where a reader would find it. Not
    retryable."""

    reason = "wrapped_content"


class EdxmlFieldError(EdxmlError):
    """A required field is missing or unreadable. Not retryable."""

    reason = "invalid_field"


# --- the service, not the event -----------------------------------------------------------------


class RequestTooLargeError(IngestError):
    """An HTTP request asks for more work than one request may. Not retryable as it is."""

    stage = "intake"


class BrokerUnavailableError(IngestError):
    """The broker did not acknowledge the write in time. Retryable: the caller may resend."""

    retryable = True


class PortalCallRefusedError(IngestError):
    """A portal-compatible call refused as a whole; nothing of it was written. Not retryable."""

    stage = "dvcqg"


class SessionRefusedError(PortalCallRefusedError):
    """Missing, forged or expired session token. Not retryable with the same session."""


class AccountAgencyNotAllowedError(PortalCallRefusedError):
    """An agency code the account may not write. Not retryable."""


class MalformedCallError(PortalCallRefusedError):
    """Not the portal's envelope, an unsupported service or too many items. Not retryable."""


class TrustBundleError(IngestError, ValueError):
    """The configured trust bundle cannot be used. A configuration error: fix it and restart."""
