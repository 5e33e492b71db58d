"""Why an event is refused. Handlers branch on the class, never on the message.

    IngestError                     every refusal of one event; none is retryable: the same
    │                               bytes fail the same way, so they go to the dead-letter topic
    ├── DecodeError                 not a CloudEvent, not JSON, wrong encoding, too large
    ├── UnsupportedTypeError        a CloudEvents `type` govsync does not handle
    ├── ContractError               the data breaks the contract in `schemas/` (field errors)
    └── NormalisationError          valid shape, impossible content
        ├── InvalidDateError        a date that does not exist or is in no known format
        └── InvalidCodeError        a status, channel or agency code that cannot be mapped

Messages are written for an operator and never contain personal data: they name fields,
never values taken from the event (a value is quoted only when it is a code).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class IngestError(Exception):
    """An event that can never be accepted as it is. Not retryable."""

    stage = "ingest"


class DecodeError(IngestError):
    stage = "decode"


class UnsupportedTypeError(IngestError):
    stage = "decode"


class ContractError(IngestError):
    """The event breaks the contract; `errors` lists `(field path, problem)` pairs."""

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


class NormalisationError(IngestError):
    stage = "normalise"


class InvalidDateError(NormalisationError):
    pass


class InvalidCodeError(NormalisationError):
    pass
