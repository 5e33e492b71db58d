"""checkov's Kubernetes policies on the rendered manifests: every failure skipped with a reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import Rendered, tool

SKIP = re.compile(r"^(CKV2?_K8S_\d+)=(.+)$")


def _checkov(manifests: Path) -> list[dict[str, Any]]:
    checkov = tool("checkov")
    assert checkov is not None, "checkov is a dev dependency: run `uv sync`"
    result = subprocess.run(  # noqa: S603 - our own tool on our own file
        [
            checkov,
            "-f",
            str(manifests),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--skip-download",  # no network: the policies ship with checkov
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def test_checkov_finds_no_unexplained_failure(any_render: Rendered, tmp_path: Path) -> None:
    manifests = tmp_path / "govsync.yaml"
    manifests.write_text(any_render.as_yaml(), encoding="utf-8")
    reports = _checkov(manifests)
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len(any_render.objects)
    assert summary["passed"] > 200


def test_every_skip_says_why(any_render: Rendered) -> None:
    for manifest in any_render.objects:
        annotations: dict[str, str] = manifest["metadata"].get("annotations", {})
        for key, value in annotations.items():
            if key.startswith("checkov.io/skip"):
                match = SKIP.match(value)
                if match is None or len(match[2]) < 20:
                    pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {value!r}")
