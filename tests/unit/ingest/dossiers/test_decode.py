"""Decoding dossier data: field names in any spelling, the contract's field errors."""

from __future__ import annotations

import pytest

from schemas.dossier import DossierEvent
from services.ingest.dossiers.decode import canonical_keys, validate_data
from services.ingest.errors import ContractError


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("MaHoSo", id="portal-case"),
        pytest.param("mahoso", id="lower"),
        pytest.param("MAHOSO", id="upper"),
        pytest.param("  MaHoSo \t", id="whitespace"),
    ],
)
def test_field_names_in_any_case(key: str) -> None:
    event = validate_data({key: "H-1", "trangthaihoso": 2}, DossierEvent)
    assert event.dossier_code == "H-1"


def test_nested_field_names_in_any_case() -> None:
    event = validate_data(
        {
            "MaHoSo": "H-1",
            "TrangThaiHoSo": 2,
            "danhsachlephi": [{"GIA": "5000", "tenphilephi": "x"}],
        },
        DossierEvent,
    )
    assert event.fees[0].amount == 5000


def test_same_field_twice_with_different_values_is_refused() -> None:
    with pytest.raises(ContractError, match="sent twice"):
        canonical_keys({"MaHoSo": "A", "mahoso": "B"}, DossierEvent)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"TrangThaiHoSo": 2}, "MaHoSo", id="missing-code"),
        pytest.param({"MaHoSo": ["x"], "TrangThaiHoSo": 2}, "MaHoSo", id="list-as-code"),
        pytest.param({"MaHoSo": "x" * 101, "TrangThaiHoSo": 2}, "MaHoSo", id="code-too-long"),
        pytest.param(
            {"MaHoSo": "H", "TrangThaiHoSo": {"a": 1}}, "TrangThaiHoSo", id="object-status"
        ),
        pytest.param(
            {"MaHoSo": "H", "TrangThaiHoSo": 2, "DanhSachLePhi": "x"},
            "DanhSachLePhi",
            id="string-as-list",
        ),
    ],
)
def test_contract_errors_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ContractError) as info:
        validate_data(data, DossierEvent)
    assert any(path.startswith(field) for path, _ in info.value.errors)


def test_contract_requires_an_object() -> None:
    with pytest.raises(ContractError):
        validate_data(["MaHoSo"], DossierEvent)


def test_a_dialect_seen_again_is_renamed_with_its_own_values() -> None:
    """A source's key list is learnt once; every later item of it keeps its own values."""
    for code, fee in (("H-1", "5000"), ("H-2", "7000"), ("H-3", "0")):
        data = canonical_keys(
            {
                "mahoso": code,
                " TRANGTHAIHOSO ": 2,
                "SoHieuRieng": code,
                "danhsachlephi": [{"gia": fee}, "not an object"],
            },
            DossierEvent,
        )
        assert data == {
            "MaHoSo": code,
            "TrangThaiHoSo": 2,
            "SoHieuRieng": code,
            "DanhSachLePhi": [{"Gia": fee}, "not an object"],
        }


def test_two_spellings_of_one_field_with_the_same_value_are_one_field() -> None:
    for _ in range(2):  # the second time through the learnt key list
        data = canonical_keys({"MaHoSo": "A", "mahoso": "A", "TrangThaiHoSo": 2}, DossierEvent)
        assert data == {"MaHoSo": "A", "TrangThaiHoSo": 2}
    with pytest.raises(ContractError, match="sent twice"):
        canonical_keys({"MaHoSo": "A", "mahoso": "B", "TrangThaiHoSo": 2}, DossierEvent)


def test_key_lists_too_long_to_learn_are_renamed_all_the_same() -> None:
    extras = {f"khac{i}" * 20: i for i in range(100)}
    data = canonical_keys({"mahoso": "H-1", "trangthaihoso": 2, **extras}, DossierEvent)
    assert data == {"MaHoSo": "H-1", "TrangThaiHoSo": 2, **extras}
