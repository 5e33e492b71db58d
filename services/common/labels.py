"""Bounded metric label values: the agency label is an agency the deployment is configured to
serve (`GOVSYNC_LABEL_AGENCIES`), or `other`.

Agency codes arrive from the outside (a dossier's `MaDonVi`, an edXML `From/OrganId`) and
`/metrics` needs no credential. So a label never carries what a sender wrote: only a configured,
well-formed code (`000.00.00.G22`, DOMAIN.md §3) is its own label, everything else is `other`.
The slots are fixed at start, never filled first-come: a sender cannot use them up and push a
real agency into `other`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from schemas.edocument import is_regular_organ_id

OTHER = "other"
"""Every agency that is not configured, and anything that is not an agency code."""
UNKNOWN = "unknown"
"""The default label of a value that is missing (ingest's agency and channel labels)."""


def parse_agency_list(value: object) -> frozenset[str]:
    """Comma-separated agency codes (spaces ignored), or a list of them, as a set."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(part).strip() for part in value if str(part).strip())
    raise ValueError("expected a comma-separated list of agency codes")


AgencyList = Annotated[frozenset[str], NoDecode, BeforeValidator(parse_agency_list)]
"""Settings field type for agency lists: `NoDecode` stops pydantic-settings reading it as JSON."""


def _well_formed(codes: frozenset[str]) -> frozenset[str]:
    if bad := sorted(c for c in codes if not is_regular_organ_id(c)):
        raise ValueError(f"{len(bad)} label agencies are not codes of the form 000.00.00.G22")
    return codes


LabelAgencies = Annotated[AgencyList, AfterValidator(_well_formed)]
"""`GOVSYNC_LABEL_AGENCIES`: the agencies that get a label of their own, each well-formed."""


class AgencyLabels:
    """The agency label: a configured agency keeps its code, any other value is `other`.

    An agency that is missing (None or empty) is labelled `missing`: ingest says `unknown`,
    sync says `other` (each as its metrics always have).
    """

    def __init__(self, agencies: Iterable[str], *, missing: str = UNKNOWN) -> None:
        self.agencies: frozenset[str] = frozenset(a for a in agencies if is_regular_organ_id(a))
        self._missing = missing

    def __call__(self, agency: str | None) -> str:
        if not agency:
            return self._missing
        return agency if agency in self.agencies else OTHER
