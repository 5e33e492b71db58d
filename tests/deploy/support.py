"""Rendering the chart offline with Helm's own library; where the deploy files are."""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "govsync"
PRODUCTION_VALUES = ROOT / "deploy" / "helm" / "values-production.yaml"
RULES = sorted((CHART / "files" / "rules").glob("*.yaml"))
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yaml"))
DASHBOARD = CHART / "files" / "dashboards" / "govsync.json"
RELEASE = "govsync"
NAMESPACE = "govsync"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """One rendering of the chart: its objects, and its notes for the operator."""

    objects: list[Manifest]
    notes: str

    def of_kind(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> Manifest:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def as_yaml(self) -> str:
        return yaml.safe_dump_all(self.objects, sort_keys=False)


def production_values() -> dict[str, Any]:
    return helm.values_from_yaml(PRODUCTION_VALUES.read_text(encoding="utf-8"))


def render(values: dict[str, Any] | None = None) -> Rendered:
    """Render as `helm template` would; raises HelmValuesError or HelmRenderError on bad values."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    objects: list[Manifest] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(objects=objects, notes=notes)


def tool(name: str) -> str | None:
    """A command from the project's virtual environment first, then from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


_RAW_METRIC = re.compile(r"(?<![\w:])(?:(?:govsync|process)_[a-z0-9_]+|up(?=\{))(?![\w:])")
_RECORDED_METRIC = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
_HISTOGRAM_SERIES = re.compile(r"_(?:bucket|sum|count)$")


def _expressions() -> list[str]:
    """Every PromQL expression the rule files and the dashboard evaluate."""
    expressions = [
        rule["expr"]
        for path in RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "definition") and isinstance(value, str):
                    expressions.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    return expressions


def dashboard_expressions() -> list[tuple[str, str]]:
    """Each dashboard panel's PromQL expressions, with the panel's title."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def metric_names_used() -> set[str]:
    """The metric families the rules and the dashboard read from the services (and `up`).

    Histogram series (`_bucket`, `_sum`, `_count`) are reported by their family name, as
    prometheus-client's exposition names them in `# TYPE` lines.
    """
    names = {name for expr in _expressions() for name in _RAW_METRIC.findall(expr)}
    return {_HISTOGRAM_SERIES.sub("", name) for name in names}


def recorded_names_used() -> set[str]:
    """The recording-rule outputs (level:metric:operation) the rules and the dashboard read."""
    return {name for expr in _expressions() for name in _RECORDED_METRIC.findall(expr)}


def recorded_names_defined() -> set[str]:
    return {
        rule["record"]
        for path in RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
