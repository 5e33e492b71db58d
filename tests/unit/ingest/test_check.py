"""`govsync check` on `schemas/examples/`: every file's events end as the examples say they do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main as cli

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"

# Written by hand from the examples (and the order `check` reads them: by path, then by line).
EXPECTED = {
    "edxml/outgoing-document.xml": "accepted",
    "edxml/status-delivered.json": "accepted",
    "invalid/edxml/doctype-entity.xml": "refused",
    "invalid/impossible-date.json": "refused",
    "invalid/malformed-agency.json": "refused",
    "invalid/missing-dossier-code.json": "refused",
    "invalid/portal/item-without-date.json#0 data[0] (MaHoSo H57.20-261104-0300)": "refused",
    "invalid/portal/unknown-service.json": "refused",
    "invalid/progress-without-date.json": "refused",
    "invalid/streams/broken-lines.jsonl:1": "refused",
    "invalid/streams/broken-lines.jsonl:2": "refused",
    "invalid/unknown-status.json": "refused",
    "invalid/unknown-type.json": "refused",
    "invalid/wrong-types.json": "refused",
    "portal/capnhattiendohosomc.json#0 data[0] (MaHoSo H57.20-261104-0200)": "accepted",
    "portal/capnhattiendohosomc.json#1 data[1] (MaHoSo H57.20-261104-0200)": "accepted",
    "portal/dongbohosomc.json#0 data[0] (MaHoSo H57.20-261104-0200)": "accepted",
    "portal/dongbohosomc.json#1 data[1] (MaHoSo H57.20-261104-0201)": "accepted",
    # The same event twice, then a change older than the first one, then a bare step.
    "streams/redelivery-and-late.jsonl:1": "accepted",
    "streams/redelivery-and-late.jsonl:2": "duplicate",
    "streams/redelivery-and-late.jsonl:3": "stale",
    "streams/redelivery-and-late.jsonl:4": "accepted",
    "valid/dossier-dialect.json": "accepted",
    "valid/dossier-finished.json": "accepted",
    # The same dossier as dossier-finished, which was read first and is newer.
    "valid/dossier-online-received.json": "stale",
    "valid/dossier-progress-step.json": "accepted",
}
REASONS = {
    "invalid/impossible-date.json": "NgayTiepNhan",
    "invalid/missing-dossier-code.json": "MaHoSo",
    "invalid/edxml/doctype-entity.xml": "DOCTYPE",
    "invalid/portal/unknown-service.json": "DongBoDanhGia",
    "invalid/portal/item-without-date.json#0 data[0] (MaHoSo H57.20-261104-0300)": "ThoiDiemXuLy",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = cli(["check", *args])
    return status, capsys.readouterr().out


def test_every_example_ends_as_expected(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "--format", "json", str(EXAMPLES))
    events = json.loads(out)["events"]
    prefix = f"{EXAMPLES}/"
    outcomes = {e["where"].removeprefix(prefix): e["outcome"] for e in events}
    assert outcomes == EXPECTED
    assert status == 1  # some are refused
    by_where = {e["where"].removeprefix(prefix): e for e in events}
    for where, text in REASONS.items():
        assert text in by_where[where]["reason"], where
    accepted = by_where["valid/dossier-finished.json"]["record"]
    assert (accepted["dossier_code"], accepted["status"], accepted["revision"]) == (
        "H57.20-261102-0001",
        10,
        1,
    )
    assert json.loads(out)["summary"] == {
        outcome: list(EXPECTED.values()).count(outcome) for outcome in set(EXPECTED.values())
    }


@pytest.mark.parametrize("folder", ["valid", "portal", "streams", "edxml"])
def test_folders_without_refusals_exit_0(capsys: pytest.CaptureFixture[str], folder: str) -> None:
    status, out = run(capsys, str(EXAMPLES / folder))
    assert status == 0, out
    assert "refused" not in out


def test_text_output_names_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, str(EXAMPLES / "invalid" / "impossible-date.json"))
    assert status == 1
    assert "impossible-date.json: refused" in out
    assert "NgayTiepNhan is not a valid date" in out
    assert out.rstrip().endswith("1 events: 1 refused")


def test_a_missing_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out = run(capsys, str(tmp_path / "nothing.json"))
    assert status == 1
    assert "cannot read the file" in out
