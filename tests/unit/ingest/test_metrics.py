"""Ingest's metrics: zeros exported up front, the scored counters count what they are given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from schemas.dossier import Channel, Timeliness
from services.common.indicators import Indicators
from services.ingest.metrics import ENTRY_HEADER, IngestMetrics, entry_of

AGENCY = "000.00.00.G22"


def test_zeros_are_exported_up_front() -> None:
    registry = CollectorRegistry()
    IngestMetrics(registry, agencies=["000.00.00.G22"])
    value = registry.get_sample_value(
        "govsync_dossiers_received_total", {"agency": "000.00.00.G22", "channel": "online"}
    )
    assert value == 0.0
    assert (
        registry.get_sample_value(
            "govsync_events_total", {"type": "vn.gov.dvc.dossier.v1", "outcome": "stale"}
        )
        == 0.0
    )


def test_count_indicators() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, agencies=[AGENCY])
    metrics.count(
        Indicators(
            agency=AGENCY,
            received=True,
            received_channel=Channel.POSTAL,
            finished=Timeliness.LATE,
            digitised=True,
            fee_bearing=True,
            paid_online=True,
        )
    )
    metrics.count(Indicators(agency=AGENCY, received=True, received_channel=None))
    get = registry.get_sample_value
    assert get("govsync_dossiers_received_total", {"agency": AGENCY, "channel": "postal"}) == 1
    assert get("govsync_dossiers_received_total", {"agency": AGENCY, "channel": "unknown"}) == 1
    assert get("govsync_dossiers_finished_total", {"agency": AGENCY, "timeliness": "late"}) == 1
    assert get("govsync_dossiers_digitised_total", {"agency": AGENCY}) == 1
    assert get("govsync_dossiers_fee_bearing_total", {"agency": AGENCY}) == 1
    assert get("govsync_dossiers_paid_online_total", {"agency": AGENCY}) == 1


def test_the_entry_point_comes_from_the_intakes_header_and_stays_a_closed_set() -> None:
    assert entry_of([]) == "kafka"
    assert entry_of([("content-type", b"application/json")]) == "kafka"
    assert entry_of([(ENTRY_HEADER, b"dvcqg")]) == "dvcqg"
    assert entry_of([(ENTRY_HEADER, b"http")]) == "http"
    # A producer naming something else (or nothing) counts as Kafka: three label values only.
    assert entry_of([(ENTRY_HEADER, b"made-up")]) == "kafka"
    assert entry_of([(ENTRY_HEADER, b"")]) == "kafka"
    assert entry_of([(ENTRY_HEADER, b"\xff\xfe")]) == "kafka"
