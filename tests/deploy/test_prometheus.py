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
    dashboard_expressions,
    metric_names_used,
    recorded_names_defined,
    recorded_names_used,
)

_RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")

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


_RANGE = re.compile(r"\[(\d+)([smhdwy])(?::\d*[smhdwy]?)?\]|\boffset\s+(\d+)([smhdwy])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _longest_range_seconds(expressions: list[str]) -> int:
    longest = 0
    for expr in expressions:
        for match in _RANGE.finditer(expr):
            number, unit = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
            longest = max(longest, int(number) * _SECONDS[unit])
    return longest


def test_no_rule_needs_long_retention() -> None:
    # The scored figures are whole periods in each sample: no rule reaches back further than
    # the alerts' own windows (the removed year-to-date rules read 366 days).
    rules = [
        rule["expr"]
        for path in RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]
    assert 0 < _longest_range_seconds(rules) <= 3600
    assert _longest_range_seconds(["x[30d]", "y offset 1d", "z[10m:1m]"]) == 30 * 86400
    # The dashboard's operational panels look back a day at most.
    assert _longest_range_seconds([e for _, e in dashboard_expressions()]) <= 86400


def test_scored_panels_read_the_score_gauges() -> None:
    scored = [(title, expr) for title, expr in dashboard_expressions() if "(official)" in title]
    assert len({title for title, _ in scored}) >= 10
    for title, expr in scored:
        # Only the scores service's figures: no counter, no ingest gauge, no window.
        assert set(_RECORDED.findall(expr)) <= {
            "agency:govsync_score:rate",
            "agency:govsync_score:points",
            "agency:govsync_score:points_total",
            "agency:govsync_score:points_lost",
        }, title
        assert _RECORDED.findall(expr), title
        assert not re.search(r"\bgovsync_[a-z_]+", expr.replace("govsync_score", "")), title
    # Every indicator of DOMAIN.md section 2 the service exports has a rate panel.
    shown = {
        indicator
        for _, expr in scored
        if "agency:govsync_score:rate{" in expr
        for matched in re.findall(r'indicator=~?"([^"]+)"', expr)
        for indicator in matched.split("|")
    }
    assert shown >= {"1.4", "2.1", "2.2", "3.3", "3.6", "4.1", "4.2", "4.3", "4.4", "4.5b"}
    assert "signature" in shown
    assert any("agency:govsync_score:points_lost" in expr for _, expr in scored)
