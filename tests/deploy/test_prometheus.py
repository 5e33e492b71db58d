"""The Prometheus rules: promtool checks and unit tests; the metrics rules and dashboard read."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.scores.formulas import BY_ID, INDICATORS
from tests.deploy.support import (
    RULE_TESTS,
    RULES,
    Rendered,
    metric_names_used,
    recorded_names_defined,
    recorded_names_used,
)

# The metric names the services promise (the contract of issue #5); histograms by family name.
CONTRACT_METRICS = {
    "govsync_dossiers_received_total",
    "govsync_dossiers_finished_total",
    "govsync_dossiers_digitised_total",
    "govsync_dossiers_paid_online_total",
    "govsync_dossiers_fee_bearing_total",
    "govsync_dossiers_counted",
    "govsync_edocuments_counted",
    "govsync_ingest_dossiers_tracked",
    "govsync_ingest_dossiers_archived",
    "govsync_events_total",
    "govsync_event_processing_seconds",
    "govsync_edocuments_total",
    "govsync_edocument_status_total",
    "govsync_ingest_ready",
    "govsync_ingest_consumer_lag",
    "govsync_reconcile_dossiers",
    "govsync_reconcile_remaining_dossiers",
    "govsync_sync_records_total",
    "govsync_sync_requests_total",
    "govsync_sync_request_seconds",
    "govsync_sync_latency_seconds",
    "govsync_portal_synced_dossiers",
    "govsync_sync_parked_steps",
    "govsync_sync_backlog",
    "govsync_sync_consumer_lag",
    "govsync_sync_circuit_state",
    "govsync_score_rate",
    "govsync_score_points",
    "govsync_scores_gauges_refreshed_timestamp_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; `make tools` adds it)")
    return found


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    # Each rule test replays at most a few hours of samples: well under a second of promtool.
    return subprocess.run(  # noqa: S603 - promtool on our own files
        command, capture_output=True, text=True, timeout=60, check=False
    )


def test_rule_files_pass_promtool_check(promtool: str) -> None:
    assert RULES, "no rule files found"
    result = _run([promtool, "check", "rules", *map(str, RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda path: path.stem)
@pytest.mark.timeout(60)
def test_rule_unit_tests_pass(promtool: str, tests: Path) -> None:
    result = _run([promtool, "test", "rules", str(tests)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_prometheus_rule_passes_promtool_check(
    promtool: str, production_render: Rendered, tmp_path: Path
) -> None:
    spec = production_render.named("PrometheusRule", "govsync")["spec"]
    rules = tmp_path / "rendered.yaml"
    rules.write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = _run([promtool, "check", "rules", str(rules)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_unit_tests() -> None:
    tested = {
        Path(name).name
        for path in RULE_TESTS
        for name in yaml.safe_load(path.read_text(encoding="utf-8"))["rule_files"]
    }
    assert tested == {path.name for path in RULES}


def test_rules_and_dashboard_read_only_contract_metrics() -> None:
    used = metric_names_used()
    assert used - CONTRACT_METRICS - {"up"} == set()
    # The scored figures are the scores service's gauges (no rule divides counters any more);
    # the exact held figures are ingest's gauges.
    assert {
        "govsync_score_rate",
        "govsync_score_points",
        "govsync_dossiers_counted",
        "govsync_edocuments_counted",
    } <= used


def test_rules_and_dashboard_read_only_recorded_series_that_exist() -> None:
    assert recorded_names_used() - recorded_names_defined() == set()


def _constants(record: str) -> dict[str, float]:
    """The `vector(N)` rules recording `record`, by their indicator label."""
    found: dict[str, float] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if rule.get("record") == record:
                    match = re.fullmatch(r"vector\(([0-9.]+)\)", rule["expr"].strip())
                    assert match, rule
                    found[rule["labels"]["indicator"]] = float(match.group(1))
    return found


def test_points_and_thresholds_match_the_scores_service() -> None:
    # A drift check, not an oracle: the dashboard's points lost and the alert's thresholds must
    # mean what the service scores (DOMAIN.md section 2).
    assert _constants("govsync:score_points:max") == {
        i.id: i.max_points for i in INDICATORS if i.max_points is not None
    }
    thresholds = _constants("govsync:score_threshold:rate")
    # Where the points stop growing; 1.4 is linear to 1, its 0.95 is govsync's own target.
    assert {k: v for k, v in thresholds.items() if k != "1.4"} == {
        i.id: i.full_at for i in INDICATORS if i.full_at < 1
    }
    assert BY_ID["1.4"].full_at == 1.0
    assert thresholds["1.4"] == 0.95
