"""The traffic generator: its ground truth equals what ingest's own pure pipeline decides."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.edocument import SignatureVerdict
from services.common.indicators import parts_of
from services.ingest.dossiers.state import DossierState
from services.ingest.edocuments.binding import SignerBindings
from services.ingest.edocuments.pipeline import DocumentPipeline
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.envelope import decode_record
from services.ingest.errors import IngestError
from services.ingest.main import build_pipeline
from services.ingest.settings import EdxmlLimits, IngestSettings
from services.localrun.edocs import Packager, make_pki
from services.localrun.pipeline import DocumentOutput
from services.localrun.readings import COUNTED_FIELDS
from services.localrun.traffic.generator import SourceEvent, TrafficGenerator
from services.localrun.traffic.options import OTHER_AGENCIES, TrafficOptions
from services.localrun.traffic.truth import AgencyTally, Outcome

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
TOPIC = "govsync.dossier.v1"


@dataclass
class IngestView:
    """What ingest's pure pipeline makes of a stream: outcomes, figures, revisions, statuses."""

    outcomes: Counter[str] = field(default_factory=Counter)
    agencies: dict[str, AgencyTally] = field(default_factory=dict)
    revision_mismatches: int = 0
    wrong_outcomes: list[tuple[str, str]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


# What ingest's gauges count, read from the parts each held dossier counts in: the gauge's
# (indicator, part) to the truth's tally field, as the local run reads them.
FIELDS = COUNTED_FIELDS


def as_intake_writes(event: SourceEvent, now: datetime) -> bytes:
    """An item sent through `/dvcqg` as the structured CloudEvent the intake writes: the
    portal's service names the type, the arrival time is the event's time (its order)."""
    types = {
        "DongBoHoSoMC": "vn.gov.dvc.dossier.v1",
        "CapNhatTienDoHoSoMC": "vn.gov.dvc.dossier.progress.v1",
    }
    assert event.service in types
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"dvcqg-{event.dossier}-{event.sequence}",
            "source": "urn:govsync:local-run:vendor",
            "type": types[event.service],
            "time": now.isoformat(),
            "agency": event.madonvi,
            "datacontenttype": "application/json",
            "data": orjson.loads(event.value),
        }
    )


def run_through_ingest(events: list[tuple[datetime, SourceEvent]]) -> IngestView:
    pipeline = build_pipeline(IngestSettings())
    states: dict[str, bytes] = {}
    view = IngestView()
    for now, event in events:
        if event.refused:
            continue  # the intake refuses it: it never reaches ingest's worker
        value = as_intake_writes(event, now) if event.entry == "dvcqg" else event.value
        try:
            envelope = decode_record(value, list(event.headers), topic=TOPIC, max_bytes=2**20)
        except IngestError:
            outcome = "dead_lettered"
            result = None
        else:
            result = pipeline.handle(envelope, states=states, now=now)
            outcome = result.outcome.value
        view.outcomes[outcome] += 1
        if outcome != event.expected.value:
            view.wrong_outcomes.append((event.expected.value, outcome))
        if result is None or result.decision is None:
            continue
        record = result.decision.record
        if record is not None and event.sequence and record.revision != event.sequence:
            view.revision_mismatches += 1
    for code, packed in states.items():
        state = DossierState.from_bytes(packed)
        view.statuses[code] = state.status
        if state.agency is None:
            continue
        tally = view.agencies.setdefault(state.agency, AgencyTally())
        for part in parts_of(state.parts):
            name = FIELDS.get(part)
            if name is not None:
                setattr(tally, name, getattr(tally, name) + 1)
    return view


def generate(
    options: TrafficOptions, *, seed: int, ticks: int, step_ms: int = 50
) -> tuple[TrafficGenerator, list[tuple[datetime, SourceEvent]]]:
    generator = TrafficGenerator(options, random.Random(seed))
    events: list[tuple[datetime, SourceEvent]] = []
    now = START
    for _ in range(ticks):
        now += timedelta(milliseconds=step_ms)
        events.extend((now, e) for e in generator.tick(now))
    return generator, events


def scored(tally: AgencyTally) -> AgencyTally:
    """The tally without what ingest's pipeline does not count (sync, e-documents)."""
    kept = {f.name: getattr(tally, f.name) for f in fields(AgencyTally)}
    kept["synced"] = 0
    return AgencyTally(**{k: (0 if k.startswith("edoc_") else v) for k, v in kept.items()})


ONLY = {
    "bare_life_share": 0.0,
    "sparse_header_share": 0.0,
    "late_facts_share": 0.0,
    "backfill_share": 0.0,
    "reexport_share": 0.0,
    "recode_share": 0.0,
}


def only(pattern: str, **options: Any) -> TrafficOptions:
    """Traffic whose every dossier follows one pattern."""
    return TrafficOptions(dossiers_per_second=40, **(ONLY | {pattern: 1.0} | options))


@pytest.mark.parametrize(
    ("seed", "options"),
    [
        pytest.param(1, TrafficOptions(dossiers_per_second=40), id="default-shape"),
        pytest.param(
            2,
            TrafficOptions(
                dossiers_per_second=40,
                duplicate_rate=0.3,
                out_of_order_rate=0.3,
                malformed_rate=0.2,
                dialect_share=1.0,
                binary_share=0.5,
                bare_share=0.5,
                supplement_share=0.6,
            ),
            id="hostile-shape",
        ),
        pytest.param(
            3, TrafficOptions(dossiers_per_second=40, step_seconds=0.2), id="fast-dossiers"
        ),
        pytest.param(
            4, only("bare_life_share", supplement_share=0.6, out_of_order_rate=0.3), id="bare-life"
        ),
        pytest.param(5, only("sparse_header_share", supplement_share=0.6), id="sparse-headers"),
        pytest.param(6, only("late_facts_share"), id="late-facts"),
        pytest.param(7, only("backfill_share"), id="backfill"),
        pytest.param(8, only("reexport_share", reexport_after_seconds=0.5), id="reexport"),
        pytest.param(9, only("recode_share"), id="recode-at-reception"),
        pytest.param(10, only("recode_share", recode_at_reception=False), id="recode-mid-life"),
    ],
)
def test_ground_truth_equals_what_ingest_decides(seed: int, options: TrafficOptions) -> None:
    generator, events = generate(options, seed=seed, ticks=500)
    view = run_through_ingest(events)

    assert view.wrong_outcomes == []
    assert view.revision_mismatches == 0
    truth = generator.truth
    # Events an intake refuses never reach the topic; the rest are counted per entry point.
    refused = Counter(e.entry for _, e in events if e.refused)
    assert truth.sent == len(events) - sum(refused.values())
    assert {e: n for e, n in truth.refused.items() if n} == dict(refused)
    by_entry = Counter((e.entry, e.expected) for _, e in events if not e.refused)
    assert {
        (entry, outcome): n
        for entry, counts in truth.entry_outcomes.items()
        for outcome, n in counts.items()
        if n
    } == dict(by_entry)
    assert dict(view.outcomes) == {o.value: n for o, n in truth.outcomes.items() if n}
    expected = {a: scored(t) for a, t in truth.agencies.items() if scored(t) != AgencyTally()}
    assert {a: t for a, t in view.agencies.items() if t != AgencyTally()} == expected
    assert view.statuses == truth.statuses
    # The traffic holds what it should: accepted events, late and on-time finishes, channels.
    everything = AgencyTally()
    for tally in truth.agencies.values():
        everything.add(tally)
    assert truth.outcomes[Outcome.ACCEPTED] > 0
    assert everything.received_online
    assert everything.finished_late
    assert everything.finished_on_time
    assert everything.digitised
    assert everything.national
    assert everything.vneid


def test_same_seed_same_traffic() -> None:
    _, first = generate(TrafficOptions(), seed=9, ticks=200)
    _, second = generate(TrafficOptions(), seed=9, ticks=200)
    assert [e.value for _, e in first] == [e.value for _, e in second]


def test_every_dialect_appears() -> None:
    _, events = generate(
        TrafficOptions(dossiers_per_second=40, dialect_share=0.8), seed=4, ticks=600
    )
    modes: Counter[str] = Counter()
    keys: set[str] = set()
    statuses: set[type] = set()
    for _, event in events:
        if any(name == "ce_specversion" for name, _ in event.headers):
            modes["binary"] += 1
            continue
        try:
            parsed = orjson.loads(event.value)
        except orjson.JSONDecodeError:
            modes["broken"] += 1
            continue
        if "specversion" in parsed:
            modes["structured"] += 1
            data = parsed["data"]
        else:
            modes["bare"] += 1
            data = parsed
        keys.update(k for k in data if k.lower() == "mahoso")
        status = next((v for k, v in data.items() if k.lower() == "trangthaihoso"), None)
        if status is not None:
            statuses.add(type(status))
    assert set(modes) == {"binary", "structured", "bare", "broken"}
    assert keys == {"MaHoSo", "mahoso", "MAHOSO"}
    assert statuses == {int, str}


def test_rates_follow_the_options() -> None:
    generator, _ = generate(
        TrafficOptions(dossiers_per_second=100, online_share=0.8, postal_share=0.0),
        seed=5,
        ticks=1000,
    )
    received = online = 0
    for tally in generator.truth.agencies.values():
        received += tally.received
        online += tally.received_online
    assert 0.75 < online / received < 0.85


def test_edocument_truth_equals_what_ingest_counts() -> None:
    """Each package, signed with the run's own PKI, reaches the verdict the tally expects."""
    pki = make_pki()
    options = TrafficOptions(edocuments_per_second=40, edocument_duplicate_rate=0.2)
    generator = TrafficGenerator(options, random.Random(7))
    output = DocumentOutput("govsync.edocument.v1", Packager(pki))
    documents = DocumentPipeline(
        own_agencies=frozenset(options.agencies),
        trust=TrustBundle.from_pem(pki.bundle_pem),
        limits=EdxmlLimits(),
        bindings=SignerBindings(pki.signer_bindings((*options.agencies, *OTHER_AGENCIES))),
    )
    counted: dict[str, AgencyTally] = {}
    outcomes: Counter[str] = Counter()
    ids: list[str] = []
    now = datetime.now(UTC)  # the certificates are valid around the real clock
    for _ in range(120):
        now += timedelta(milliseconds=50)
        specs = generator.tick_documents(now)
        ids.extend(s.document_id for s in specs)
        for event in output.render(specs):
            envelope = decode_record(event.value, [], topic=output.topic, max_bytes=2**22)
            result = documents.decide(documents.normalise(envelope, now=now))
            outcomes[result.outcome.value] += 1
            assert result.outcome.value == event.expected.value
            if result.counted is not None:
                agency = result.counted.agency
                assert agency is not None
                tally = counted.setdefault(agency, AgencyTally())
                tally.add_edocument(result.counted.direction, result.counted.signature)

    truth = generator.truth
    assert len(ids) == len(set(ids)) > 150
    assert dict(outcomes) == {o.value: n for o, n in truth.edocument_outcomes.items() if n}
    assert outcomes["duplicate"] > 0
    assert sum(outcomes.values()) == truth.edocument_sent
    assert {a: t for a, t in truth.agencies.items() if t != AgencyTally()} == counted
    everything = AgencyTally()
    for tally in counted.values():
        for name in (f.name for f in fields(AgencyTally) if f.name.startswith("edoc_")):
            setattr(everything, name, getattr(everything, name) + getattr(tally, name))
    assert all(getattr(everything, f"edoc_outgoing_{v}") for v in SignatureVerdict)
    assert everything.edoc_incoming_verified
    assert set(counted) - set(options.agencies)  # incoming documents from other agencies
    assert truth.sent == 0  # no dossier traffic was asked for by this test's ticks


def test_adapter_dossiers_send_only_statuses_their_items_date() -> None:
    """`/dvcqg` stamps an item with its arrival; a withdrawal (7) or a supplement request (5)
    has no date of its own in DongBoHoSoMC, so the run's truth could not place it."""
    drawn: dict[str, Any] = {"dvcqg_share": 0.5, "supplement_share": 0.6, "withdraw_share": 0.2}
    options = TrafficOptions(dossiers_per_second=40, **(ONLY | drawn))
    _, events = generate(options, seed=12, ticks=1200)
    statuses: dict[str, set[int]] = {"dvcqg": set(), "other": set()}
    for _, event in events:
        try:
            data = orjson.loads(event.value)
        except orjson.JSONDecodeError:
            continue  # broken on purpose
        if not isinstance(data, dict):
            continue
        data = data.get("data", data) if "specversion" in data else data
        status = data.get("TrangThaiHoSo", data.get("TrangThai"))
        if isinstance(status, int):
            statuses["dvcqg" if event.entry == "dvcqg" else "other"].add(status)
    assert {2, 4, 9, 10} <= statuses["dvcqg"]
    assert not statuses["dvcqg"] & {5, 7}
    assert {5, 7} <= statuses["other"]  # the same options do draw them for other sources
