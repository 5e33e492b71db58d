"""Every rendered object against the Kubernetes API schema of a pinned version.

Built-in kinds use kubernetes-validate's strict schemas (unknown fields are errors). The three
custom resources have no schema there, so they are checked against the fields of their CRDs that
the chart uses (monitoring.coreos.com/v1 ServiceMonitor and PrometheusRule, keda.sh/v1alpha1
ScaledObject); the PrometheusRule's groups are also checked by promtool in test_prometheus.py.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy.support import Rendered

KUBERNETES_VERSION = "1.35.0"

_STRING = {"type": "string"}
_LABELS = {"type": "object", "additionalProperties": _STRING}
_METADATA = {
    "type": "object",
    "required": ["name", "labels"],
    "additionalProperties": False,
    "properties": {"name": _STRING, "labels": _LABELS, "annotations": _LABELS},
}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


CUSTOM_RESOURCES: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _resource(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": _STRING,
                            "path": _STRING,
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "relabelings": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
    ),
    "PrometheusRule": _resource(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": _STRING,
                            "interval": _STRING,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "record": _STRING,
                                        "alert": _STRING,
                                        "expr": _STRING,
                                        "for": _STRING,
                                        "labels": _LABELS,
                                        "annotations": _LABELS,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    ),
    "ScaledObject": _resource(
        "keda.sh/v1alpha1",
        "ScaledObject",
        {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"apiVersion": _STRING, "kind": _STRING, "name": _STRING},
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "additionalProperties": False,
                    "properties": {
                        "failureThreshold": {"type": "integer"},
                        "replicas": {"type": "integer"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": _STRING,
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "metadata": {"type": "object", "additionalProperties": _STRING},
                            "authenticationRef": {"type": "object"},
                        },
                    },
                },
            },
        },
    ),
}


def test_built_in_kinds_match_the_kubernetes_api(any_render: Rendered) -> None:
    checked = 0
    for manifest in any_render.objects:
        if manifest["kind"] in CUSTOM_RESOURCES:
            continue
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name}: {error.message} at {'.'.join(map(str, error.path))}")
        checked += 1
    assert checked >= 17


def test_custom_resources_match_the_fields_of_their_crds(production_render: Rendered) -> None:
    seen = set()
    for manifest in production_render.objects:
        schema = CUSTOM_RESOURCES.get(manifest["kind"])
        if schema is not None:
            jsonschema.validate(manifest, schema)
            seen.add(manifest["kind"])
    assert seen == set(CUSTOM_RESOURCES)
