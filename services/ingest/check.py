"""`govsync check FILE...`: a vendor's self-test. What ingest would do with sample events, without
a broker or a service: accepted (with the normalised record), duplicate, stale, or refused with
the reason, per event; exit status 1 if anything is refused.

Files (directories are read recursively, in name order; events in the order given):
- `.json`: a CloudEvent, a bare DongBoHoSoMC / CapNhatTienDoHoSoMC item, a list of either, or a
  captured portal envelope (`{session, madonvi, service, data}`: each item as `/dvcqg` takes it);
- `.jsonl` / `.ndjson`: one CloudEvent or bare item per line, as Kafka record values;
- `.xml`: one edXML package (document or status), as a bare Kafka record value.
Every event goes through the worker's own handling (`EventHandler.handle`: decoding, limits,
normalisation, source binding, decision), against the state the earlier events built, so a
redelivery shows as a duplicate and an older change as stale. Settings come from the same
`GOVSYNC_*` variables as `govsync ingest` (status vocabularies, trust bundle, own agencies).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.ingest.dossiers.pipeline import UNKNOWN_TYPE
from services.ingest.dvcqg import protocol
from services.ingest.errors import (
    PortalCallRefusedError,
    describe,
)
from services.ingest.handling import EventHandler, HandlerTopics

SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".xml"})
REFUSED = "refused"
SOURCE = "urn:govsync:check"


@dataclass(frozen=True, slots=True)
class Sample:
    """One event as read from a file, before ingest's decoding."""

    where: str
    """`FILE`, `FILE:LINE` or `FILE#INDEX`."""
    value: bytes | None = None
    """A Kafka record value (decoded as the worker decodes one); a portal envelope's item is the
    CloudEvent `/dvcqg` would write for it."""
    error: str | None = None
    """Why the file or line could not even be read."""


@dataclass(frozen=True, slots=True)
class Verdict:
    where: str
    outcome: str
    """accepted, duplicate, stale or refused."""
    type: str | None = None
    key: str | None = None
    reason: str | None = None
    stage: str | None = None
    record: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "where": self.where,
                "outcome": self.outcome,
                "type": self.type,
                "key": self.key,
                "stage": self.stage,
                "reason": self.reason,
                "record": self.record,
            }.items()
            if v is not None
        }


# --- reading ---------------------------------------------------------------------------------


def files(paths: Sequence[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        else:
            yield path


def _portal_envelope(where: str, body: Mapping[str, Any], now: datetime) -> Iterator[Sample]:
    try:
        call = protocol.read_call(body)
        event_type, items = protocol.write_items(call, max_items=sys.maxsize)
    except PortalCallRefusedError as exc:
        yield Sample(where, error=f"portal envelope: {exc}")
        return
    for index, item in enumerate(items):
        event = protocol.cloudevent(
            item,
            event_id=f"check-{where}#{index}",
            source=SOURCE,
            event_type=event_type,
            agency=call.madonvi,
            now=now,
        )
        label = f"{where}#{index} {protocol.item_label(index, item)}"
        yield Sample(label, value=orjson.dumps(event))


def read(path: Path, now: datetime) -> Iterator[Sample]:
    """The events of one file, in order."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        yield Sample(where, error=f"cannot read the file: {exc.strerror}")
        return
    if path.suffix == ".xml":
        yield Sample(where, value=raw)
        return
    if path.suffix in {".jsonl", ".ndjson"}:
        for number, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                yield Sample(f"{where}:{number}", value=line)
        return
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        yield Sample(where, error="the file is not valid JSON (JSON lines need .jsonl)")
        return
    if isinstance(parsed, dict) and "service" in parsed and "data" in parsed:
        yield from _portal_envelope(where, parsed, now)
    elif isinstance(parsed, list):
        for index, value in enumerate(parsed):
            yield Sample(f"{where}#{index}", value=orjson.dumps(value))
    else:
        yield Sample(where, value=raw)


# --- deciding --------------------------------------------------------------------------------


class Checker:
    """The worker's own handling (`EventHandler.handle`) over a sequence of samples, keeping the
    dossier states they build up as the worker keeps them."""

    def __init__(self, handler: EventHandler, topics: HandlerTopics, *, now: datetime) -> None:
        self._handler = handler
        self._topics = topics
        self._now = now
        self._states: dict[str, bytes] = {}

    async def check(self, sample: Sample) -> Verdict:
        if sample.error is not None:
            return Verdict(sample.where, REFUSED, reason=sample.error, stage="read")
        value = sample.value or b""
        is_xml = value.lstrip().startswith(b"<")
        topic = self._topics.edocument if is_xml else self._topics.dossier
        handled = await self._handler.handle(topic, value, [], states=self._states, now=self._now)
        kind = None if handled.event_type == UNKNOWN_TYPE else handled.event_type
        if handled.refusal is not None:
            error = handled.refusal.error
            return Verdict(sample.where, REFUSED, kind, reason=describe(error), stage=error.stage)
        if handled.state is not None:
            self._states[handled.state.code] = handled.state.packed
        output = handled.output
        record = orjson.loads(output.value) if output is not None else None
        key = output.key.decode() if output is not None else None
        return Verdict(sample.where, handled.outcome.value, kind, key, record=record)


# --- the command -----------------------------------------------------------------------------


def _text(verdict: Verdict) -> str:
    head = f"{verdict.where}: {verdict.outcome}"
    details = [part for part in (verdict.type, verdict.key) if part]
    if details:
        head += f" ({', '.join(details)})"
    if verdict.reason:
        head += f"\n    reason [{verdict.stage}]: {verdict.reason}"
    if verdict.record is not None:
        head += "\n    " + orjson.dumps(verdict.record).decode()
    return head


def main(paths: Sequence[str], *, output: str = "text") -> int:
    """Print each event's verdict; 1 if any was refused, 0 otherwise."""
    from services.ingest.main import build_documents, build_handler, build_pipeline, handler_topics
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    now = datetime.now(UTC)
    handler = build_handler(settings, build_pipeline(settings), build_documents(settings))
    checker = Checker(handler, handler_topics(settings), now=now)

    async def run() -> list[Verdict]:
        return [await checker.check(sample) for path in files(paths) for sample in read(path, now)]

    verdicts = asyncio.run(run())
    refused = sum(1 for v in verdicts if v.outcome == REFUSED)
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.outcome] = counts.get(verdict.outcome, 0) + 1
    if output == "json":
        document = {"events": [v.view() for v in verdicts], "summary": counts}
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for verdict in verdicts:
            sys.stdout.write(_text(verdict) + "\n")
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        sys.stdout.write(f"{len(verdicts)} events: {summary or 'none'}\n")
    return 1 if refused or not verdicts else 0
