"""Which agencies each source may write, and whose dossiers and documents: the binding of a
CloudEvents `source` (and so of the API keys that may publish it) to agency codes, and the
groups of sources that share what they write.

An event names its agency in the dossier's `MaDonVi`, in the envelope's `agency` attribute, or
as an edXML package's `From/OrganId` (and its `DocumentId`'s first part); each code it names
must be bound to its source. A code bound to several sources may be written by each of them;
but a dossier or a document keeps the source that first wrote it (its owner), and another source
may write it only if a shared group holds both. With no binding configured every source may
write every agency and every dossier (the service warns at start). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.edocument import is_regular_organ_id
from services.ingest.errors import AgencyNotAllowedError, NotOwnerError


def _code(value: str) -> str:
    return value.strip().upper()


class SourceBinding:
    """Source to the agency codes it may write; built once from `GOVSYNC_SOURCE_AGENCIES`."""

    def __init__(
        self,
        table: Mapping[str, Iterable[str]],
        shared: Iterable[Iterable[str]] = (),
    ) -> None:
        bound: dict[str, frozenset[str]] = {}
        for source, codes in table.items():
            cleaned = frozenset(_code(c) for c in codes)
            malformed = sorted(c for c in cleaned if not is_regular_organ_id(c))
            if malformed:
                raise ValueError(
                    f"source_agencies[{source!r}]: not agency codes of the form 000.00.00.G22:"
                    f" {malformed}"
                )
            bound[source.strip()] = cleaned
        self._bound = bound
        self._groups = [frozenset(s.strip() for s in group) for group in shared]

    @property
    def enabled(self) -> bool:
        return bool(self._bound)

    def allows(self, source: str, agency: str) -> bool:
        if not self._bound:
            return True
        return _code(agency) in self._bound.get(source, frozenset())

    def check(self, source: str, named: Iterable[tuple[str, str | None]]) -> None:
        """Every `(field, code)` the event names must be bound to `source`; None is no code.

        Raises `AgencyNotAllowedError`. A value that is not a well-formed code is never quoted:
        it may be anything a sender typed, a name or a phone number included.
        """
        if not self._bound:
            return
        for field, value in named:
            if value is None or not value.strip():
                continue
            code = _code(value)
            if not is_regular_organ_id(code):
                raise AgencyNotAllowedError(
                    f"{field} is not a well-formed agency code, and this source may write only"
                    " the agencies bound to it"
                )
            if code not in self._bound.get(source, frozenset()):
                raise AgencyNotAllowedError(f"this source may not write agency {code} ({field})")

    def check_owner(self, owner: str | None, source: str, *, what: str) -> None:
        """`source` may write what `owner` wrote: the same source, a shared group holding both,
        or nothing owned (written before owners were kept) or no binding configured.

        Raises `NotOwnerError`; neither source is quoted (the owner is another caller's).
        """
        if not self._bound or owner is None or owner == source:
            return
        if any(owner in group and source in group for group in self._groups):
            return
        raise NotOwnerError(
            f"this {what} belongs to another source, and no shared group holds both"
        )
