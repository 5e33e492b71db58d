"""CloudEvents 1.0 envelope (structured mode) and the event types govsync understands."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


class EventType(StrEnum):
    DOSSIER = "vn.gov.dvc.dossier.v1"
    PROGRESS = "vn.gov.dvc.dossier.progress.v1"
    EDXML = "vn.gov.edoc.edxml.v1"
    EDOC_STATUS = "vn.gov.edoc.status.v1"


class CloudEvent(BaseModel):
    """A CloudEvent in structured mode.

    Extension attributes are allowed (`extra="allow"`); `agency` (or `madonvi`) names the
    agency code the event belongs to when the data does not carry it.
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    specversion: str = Field(pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=1024)
    type: str = Field(min_length=1, max_length=256)
    time: AwareDatetime | None = Field(
        default=None, description="When the change happened at the source; with a UTC offset."
    )
    """RFC 3339, so with its offset: a time without one names no moment and is refused."""
    datacontenttype: str | None = Field(default=None, max_length=256)
    subject: str | None = Field(default=None, max_length=1024)
    data: Any = None
    data_base64: str | None = None
