"""values.yaml and values.schema.json: every key documented, wrong values rejected."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest

from tests.deploy.support import CHART, production_values, render

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][\w.-]*):")


def _undocumented_keys(lines: list[str]) -> list[str]:
    """Keys with no comment right above them, unless inside a value documented whole by `# --`."""
    missing: list[str] = []
    # Indentation levels of enclosing keys, and whether each was documented with "# --".
    stack: list[tuple[int, bool]] = []
    previous = ""
    for number, line in enumerate(lines, start=1):
        match = KEY_LINE.match(line)
        if match and not line.lstrip().startswith("-"):
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            inside_documented_value = any(whole for _, whole in stack)
            commented = previous.lstrip().startswith("#")
            if not commented and not inside_documented_value:
                missing.append(f"line {number}: {match['key']}")
            stack.append((indent, previous.lstrip().startswith("# --")))
        if line.strip():
            previous = line
    return missing


def test_every_values_key_is_documented() -> None:
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    assert _undocumented_keys(lines) == []


def test_the_documentation_check_catches_a_bare_key() -> None:
    lines = ["# A section.", "section:", "  # -- Documented.", "  good: 1", "  bad: 2"]
    assert _undocumented_keys(lines) == ["line 5: bad"]


def test_schema_is_strict_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, path
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}/{index}")

    walk(schema, "#")


def test_default_and_production_values_pass_the_schema() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.merge_values(None))
        chart.validate_schema(chart.merge_values(production_values()))


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"ingest": {"replicaCount": "three"}}, id="replicas-as-string"),
        pytest.param({"ingest": {"port": 70000}}, id="port-out-of-range"),
        pytest.param({"sync": {"portal": {"enabled": "yes"}}}, id="enabled-as-string"),
        pytest.param({"kafka": {"securityProtocol": "TLS"}}, id="unknown-protocol"),
        pytest.param({"kafka": {"sasl": {"mechanism": "SCRAM-SHA-1"}}}, id="unknown-mechanism"),
        pytest.param({"kafka": {"topicPartitions": 0}}, id="no-partitions"),
        pytest.param({"image": {"tag": "latest"}}, id="latest-tag"),
        pytest.param({"image": {"digest": "sha256:abc"}}, id="short-digest"),
        pytest.param({"image": {"pullPolicy": "Sometimes"}}, id="pull-policy"),
        pytest.param({"config": {"logLevel": "LOUD"}}, id="log-level"),
        pytest.param({"config": {"ownAgencies": "000.00.10.H29"}}, id="agencies-not-a-list"),
        pytest.param({"config": {"ownAgencies": ["H29"]}}, id="agency-code-form"),
        pytest.param({"ingest": {"resources": {"limits": {"gpu": 1}}}}, id="unknown-resource"),
        pytest.param({"ingest": {"keda": {"lagThreshold": -1}}}, id="negative-lag"),
        pytest.param({"pod": {"securityContext": {"readOnlyRootFilesystem": False}}}, id="rw-root"),
        pytest.param({"pod": {"podSecurityContext": {"runAsNonRoot": False}}}, id="root"),
        pytest.param({"networkPolicy": {"kafka": {"peers": [{"cidr": "10.0.0.0/8"}]}}}, id="peer"),
        pytest.param({"metrics": {"serviceMonitor": {"interval": 30}}}, id="interval-number"),
        pytest.param({"sync": {"portal": {"url": "portal.gov.vn"}}}, id="url-without-scheme"),
        pytest.param({"sync": {"portal": {"password": "hunter2"}}}, id="password-in-values"),
        pytest.param({"replicaCount": 3}, id="unknown-top-level-key"),
    ],
)
def test_schema_rejects_wrong_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render(values)
