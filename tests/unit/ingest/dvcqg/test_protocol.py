"""The portal envelope read, its items named, TraCuuHoSo's code found and its row written."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from services.cli import main as cli
from services.ingest.dossiers.state import DossierState, with_newest
from services.ingest.dvcqg import protocol
from services.ingest.dvcqg.accounts import Account, verify_password
from services.ingest.errors import AccountAgencyNotAllowedError, MalformedCallError
from services.ingest.settings import IngestSettings

HUE = "000.00.20.H57"
ACCOUNT = Account("opencps", frozenset({HUE}), "urn:x", "f")


def envelope(**fields: Any) -> dict[str, Any]:
    return {"session": "s", "madonvi": HUE, "service": "DongBoHoSoMC", "data": [{}], **fields}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param([], "envelope", id="not-an-object"),
        pytest.param(envelope(service=None), "service is missing", id="no-service"),
        pytest.param(envelope(madonvi=" "), "madonvi is missing", id="blank-madonvi"),
    ],
)
def test_malformed_envelopes(body: object, message: str) -> None:
    with pytest.raises(MalformedCallError, match=message):
        protocol.read_call(body)


@pytest.mark.parametrize(
    ("value", "updating"),
    [("True", True), ("true", True), (True, True), ("False", False), (None, False), ("1", True)],
)
def test_is_updating(value: object, updating: bool) -> None:
    assert protocol.read_call(envelope(isUpdating=value)).updating is updating


def test_madonvi_is_normalised_and_checked() -> None:
    call = protocol.read_call(envelope(madonvi=" 000.00.20.h57 "))
    assert call.madonvi == HUE
    protocol.check_agency(ACCOUNT, call.madonvi)
    with pytest.raises(AccountAgencyNotAllowedError, match=r"000\.00\.10\.H29"):
        protocol.check_agency(ACCOUNT, "000.00.10.H29")
    with pytest.raises(MalformedCallError, match="form"):
        protocol.check_agency(ACCOUNT, "H57")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "non-empty list", id="empty"),
        pytest.param({"MaHoSo": "x"}, "non-empty list", id="object"),
        pytest.param([{}] * 4, "holds 4 items, at most 3", id="too-many"),
    ],
)
def test_write_items_refusals(data: object, message: str) -> None:
    with pytest.raises(MalformedCallError, match=message):
        protocol.write_items(protocol.read_call(envelope(data=data)), max_items=3)


def test_lookup_is_not_a_write() -> None:
    with pytest.raises(MalformedCallError, match="TraCuuHoSo"):
        protocol.write_items(protocol.read_call(envelope(service="TraCuuHoSo")), max_items=3)


@pytest.mark.parametrize(
    ("index", "item", "label"),
    [
        (0, {"MaHoSo": "H57-1"}, "data[0] (MaHoSo H57-1)"),
        (2, {" mahoso ": " H57-2 "}, "data[2] (MaHoSo H57-2)"),
        (1, {"MaHoSo": ["x"]}, "data[1]"),
        (1, "text", "data[1]"),
        (3, {"MaHoSo": "x" * 101}, "data[3]"),
    ],
)
def test_item_label_quotes_only_a_code(index: int, item: object, label: str) -> None:
    assert protocol.item_label(index, item) == label


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        pytest.param({"mahoso": "A"}, "A", id="top-level"),
        pytest.param({"data": {"mahoso": "B"}}, "B", id="in-data"),
        pytest.param({"data": [{"MaHoSo": "C"}]}, "C", id="one-item-list"),
    ],
)
def test_lookup_code(fields: dict[str, Any], code: str) -> None:
    assert (
        protocol.lookup_code(protocol.read_call(envelope(service="TraCuuHoSo", **fields))) == code
    )


def test_lookup_code_missing() -> None:
    with pytest.raises(MalformedCallError, match="mahoso"):
        protocol.lookup_code(protocol.read_call(envelope(service="TraCuuHoSo", data={})))


def test_lookup_row_in_portal_fields() -> None:
    # 2026-11-02 08:30 and 2026-11-09 17:00 in Asia/Ho_Chi_Minh (UTC+7), as epoch milliseconds.
    state = DossierState(
        history=with_newest(b"", 1793583000000, 4),
        agency=HUE,
        procedure="1.004567",
        channel=2,
        received_ms=1793583000000,
        due_ms=1794218400000,
    )
    assert protocol.lookup_row("H57-1", state) == {
        "MaHoSo": "H57-1",
        "MaDonVi": HUE,
        "TrangThaiHoSo": 4,
        "MaTTHC": "1.004567",
        "KenhThucHien": 2,
        "NgayTiepNhan": "20261102083000",
        "NgayHenTra": "20261109170000",
    }
    assert protocol.lookup_row("H57-2", DossierState()) == {"MaHoSo": "H57-2"}


def test_the_printed_account_entry_is_what_the_setting_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert cli(["dvcqg-account", "opencps", "--agency", "000.00.20.h57", "--agency", HUE]) == 0
    printed = capsys.readouterr().out
    assert "s3cret" not in printed
    monkeypatch.setenv("GOVSYNC_DVCQG_ACCOUNTS", printed)
    account = IngestSettings().dvcqg_accounts["opencps"]
    assert account.agencies == {HUE}
    assert verify_password("s3cret", account.password_hash)
    assert json.loads(printed)["opencps"]["agencies"] == [HUE]


def test_account_command_refuses_bad_agency_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert cli(["dvcqg-account", "opencps", "--agency", "H57"]) == 2
    assert capsys.readouterr().out == ""
