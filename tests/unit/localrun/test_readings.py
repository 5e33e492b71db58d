"""Reading the services' metrics: exposition text to flow counts, tallies, rates and quantiles."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from schemas.dossier import Channel
from schemas.edocument import Direction, SignatureVerdict
from services.common.indicators import Counted, Indicators
from services.ingest.metrics import IngestMetrics
from services.ingest.outcome import Outcome
from services.localrun.readings import (
    Rate,
    Snapshot,
    differences,
    drained,
    histogram_quantile,
    rates,
    read_ingest,
    read_sync,
)
from services.localrun.scrape import parse
from services.localrun.traffic.options import TrafficOptions
from services.localrun.traffic.plans import draw_plan, draw_request
from services.localrun.traffic.truth import AgencyTally, GroundTruth
from services.localrun.traffic.truth import Outcome as Expected
from services.localrun.view import Endpoints, ViewState, shown_agencies
from services.sync.acked import AckState
from services.sync.metrics import SyncMetrics

AGENCY = "000.00.20.H57"


def ingest_text() -> str:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, agencies=[AGENCY])
    for (indicator, part), value in {
        ("3.3", "denominator"): 2,
        ("3.3", "numerator"): 1,
        ("4.3", "denominator"): 2,
        ("4.3", "numerator"): 1,
        ("3.6", "denominator"): 1,
        ("3.6", "numerator"): 1,
        ("2.1", "denominator"): 2,
        ("2.1", "numerator"): 1,
    }.items():
        metrics.counted.labels(AGENCY, indicator, part).set(value)
    # The operational counters are not what the tallies read.
    metrics.count(Indicators(AGENCY, Channel.ONLINE, received=True, digitised=True))
    for outcome, n in ((Outcome.ACCEPTED, 5), (Outcome.DUPLICATE, 2), (Outcome.DEAD_LETTERED, 1)):
        metrics.events.labels("vn.gov.dvc.dossier.v1", outcome.value).inc(n)
    metrics.events.labels("unknown", Outcome.DEAD_LETTERED.value).inc()
    return generate_latest(registry).decode()


def sync_text(target: str) -> str:
    registry = CollectorRegistry()
    metrics = SyncMetrics(registry, target, agencies=[AGENCY])
    for _ in range(4):
        metrics.record("acknowledged")
    metrics.record("skipped_stale")
    for seconds in (0.05, 0.2, 0.3, 0.7):
        metrics.latency.labels(target).observe(seconds)
    held = AckState(2, header=True, received=True, agency=AGENCY)
    metrics.synced_moved(None, held)
    metrics.synced_moved(None, held)
    metrics.synced_moved(None, AckState(1, header=False, received=True, agency=AGENCY))
    return generate_latest(registry).decode()


def test_metrics_text_becomes_a_snapshot() -> None:
    snapshot = Snapshot()
    read_ingest(snapshot, parse(ingest_text()))
    read_sync(snapshot, "portal", parse(sync_text("portal")))
    read_sync(snapshot, "ndxp", parse(sync_text("ndxp")))

    assert snapshot.outcomes == {"accepted": 5, "duplicate": 2, "stale": 0, "dead_lettered": 2}
    tally = snapshot.agencies[AGENCY]
    assert (tally.received_online, tally.received) == (1, 2)
    assert (tally.finished_on_time, tally.finished_late) == (1, 1)
    assert (tally.digitised, tally.fee_bearing, tally.paid_online) == (1, 1, 1)
    assert tally.synced == 2  # from the portal worker only
    assert snapshot.acknowledged("portal") == 4
    assert snapshot.finished("ndxp") == 5
    median = snapshot.quantile("portal", 0.5)
    assert median is not None
    assert 0.1 <= median <= 0.25


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        pytest.param(0.5, [], None, id="no-histogram"),
        pytest.param(0.5, [(1.0, 0.0), (float("inf"), 0.0)], None, id="no-observations"),
        pytest.param(0.5, [(1.0, 10.0), (float("inf"), 10.0)], 0.5, id="interpolates-from-zero"),
        pytest.param(
            0.75, [(0.1, 0.0), (0.5, 4.0), (1.0, 8.0), (float("inf"), 8.0)], 0.75, id="mid-bucket"
        ),
        pytest.param(0.99, [(1.0, 1.0), (float("inf"), 10.0)], 1.0, id="in-the-inf-bucket"),
    ],
)
def test_histogram_quantile(
    q: float, buckets: list[tuple[float, float]], expected: float | None
) -> None:
    assert histogram_quantile(q, buckets) == expected


def test_rates_follow_the_formulas() -> None:
    tally = AgencyTally(
        received=4,
        received_online=3,
        finished_on_time=1,
        finished=2,
        digitised=2,
        fee_bearing=4,
        paid_online=1,
        synced=5,
    )
    assert rates(tally)["sig"].value is None  # no outgoing e-documents
    tally.edoc_outgoing_verified = 3
    tally.edoc_outgoing_untrusted = 1
    tally.edoc_outgoing_invalid = 1
    tally.edoc_outgoing_unsigned = 1
    tally.edoc_incoming_verified = 5  # incoming documents are not the agency's own
    found = rates(tally)
    assert found["3.3"] == Rate(3, 4)
    assert found["2.1"].value == 0.5
    assert found["4.3"].value == 0.5
    assert found["3.6"].value == 0.25
    assert found["1.4"] == Rate(5, 4)
    assert found["sig"] == Rate(3, 6)


def test_edocument_metrics_become_tallies_apart_from_the_dossier_flow() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, agencies=[AGENCY])
    for direction, verdict, n in (
        (Direction.OUTGOING, SignatureVerdict.VERIFIED, 3),
        (Direction.OUTGOING, SignatureVerdict.INVALID, 1),
        (Direction.INCOMING, SignatureVerdict.VERIFIED, 2),
    ):
        metrics.edocuments_counted.labels(AGENCY, direction.value, verdict.value).set(n)
        metrics.count_document(Counted(AGENCY, direction, verdict))  # not what is read
    metrics.events.labels("vn.gov.edoc.edxml.v1", Outcome.ACCEPTED.value).inc(6)
    metrics.events.labels("vn.gov.edoc.edxml.v1", Outcome.DUPLICATE.value).inc(1)
    metrics.events.labels("vn.gov.dvc.dossier.v1", Outcome.ACCEPTED.value).inc(2)
    snapshot = Snapshot()
    read_ingest(snapshot, parse(generate_latest(registry).decode()))

    assert snapshot.outcomes["accepted"] == 2  # what the sync workers must finish
    assert snapshot.edocument_outcomes == {
        "accepted": 6,
        "duplicate": 1,
        "stale": 0,
        "dead_lettered": 0,
    }
    tally = snapshot.agencies[AGENCY]
    assert (tally.edoc_outgoing_verified, tally.edoc_outgoing_invalid) == (3, 1)
    assert tally.edoc_incoming_verified == 2
    assert rates(tally)["sig"] == Rate(3, 4)

    truth = GroundTruth(sent=2, edocument_sent=7)
    truth.outcomes[Expected.ACCEPTED] = 2
    truth.edocument_outcomes[Expected.ACCEPTED] = 6
    truth.edocument_outcomes[Expected.DUPLICATE] = 1
    truth.documents[AGENCY] = AgencyTally(
        edoc_outgoing_verified=3, edoc_outgoing_invalid=1, edoc_incoming_verified=2
    )
    assert differences(snapshot, truth) == []
    for target in ("portal", "ndxp"):
        snapshot.sync[target]["acknowledged"] = 2
    assert drained(snapshot, truth)
    truth.edocument_sent += 1  # one package still in flight
    assert not drained(snapshot, truth)


def test_differences_and_drain() -> None:
    truth = GroundTruth(sent=3)
    truth.outcomes[Expected.ACCEPTED] = 2
    truth.outcomes[Expected.DEAD_LETTERED] = 1
    truth.documents[AGENCY] = AgencyTally(received_online=1)  # a count the metrics lack
    snapshot = Snapshot()
    assert not drained(snapshot, truth)
    assert {d.where for d in differences(snapshot, truth)} == {
        "events accepted",
        "events dead_lettered",
        f"{AGENCY} received_online",
    }
    snapshot.outcomes.update(accepted=2, dead_lettered=1)
    snapshot.agency(AGENCY).received_online = 1
    assert differences(snapshot, truth) == []
    assert not drained(snapshot, truth)  # the sync workers have not finished the records yet
    snapshot.sync["portal"]["acknowledged"] = 2
    snapshot.sync["ndxp"]["acknowledged"] = 1
    snapshot.sync["ndxp"]["skipped_stale"] = 1
    assert drained(snapshot, truth)


def test_agencies_without_a_rate_get_no_row_unless_they_disagree() -> None:
    outsider = "000.00.30.H01"
    truth = GroundTruth()
    truth.documents_of(AGENCY).edoc_outgoing_verified = 1
    truth.documents_of(outsider).edoc_incoming_verified = 1
    state = ViewState(endpoints=Endpoints("b", "i", {}, "s"), truth=truth)
    assert shown_agencies(state) == [AGENCY, outsider]  # the metrics have not caught up yet
    state.snapshot.agency(outsider).edoc_incoming_verified = 1
    assert shown_agencies(state) == [AGENCY]


def test_a_step_parked_for_a_header_never_sent_does_not_hold_up_the_drain() -> None:
    """The portal parks a step of a dossier it holds no header of (the sync's step gate)."""
    options = TrafficOptions()
    rng = random.Random(7)
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    plan = draw_plan(rng, options, draw_request(rng, options), code="D-1", start=start)
    late = replace(plan, headers=frozenset(range(1, len(plan.steps))))  # change 0 a step only
    truth = GroundTruth(sent=1)
    truth.outcomes[Expected.ACCEPTED] = 1
    truth.reached(late, 0)
    snapshot = Snapshot()
    snapshot.outcomes.update(accepted=1)
    snapshot.sync["ndxp"]["acknowledged"] = 1
    assert not drained(snapshot, truth)  # the portal has neither finished nor parked it
    snapshot.parked["portal"] = 1
    assert drained(snapshot, truth)  # its header was never sent: it waits out the step wait
    truth.reached(late, 1)  # the header is sent now: the parked step must follow it
    truth.sent += 2
    truth.outcomes[Expected.ACCEPTED] += 2
    snapshot.outcomes.update(accepted=3)
    snapshot.sync["ndxp"]["acknowledged"] = 3
    snapshot.sync["portal"]["acknowledged"] = 2
    assert not drained(snapshot, truth)
    snapshot.parked["portal"] = 0
    snapshot.sync["portal"]["acknowledged"] = 3
    assert drained(snapshot, truth)
