"""Normalisation rules of dossier values, one table per rule."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.dossier import Channel, DossierEvent, DossierStatus, ProgressEvent
from services.common.dates import LOCAL_TZ
from services.ingest.dossiers.decode import validate_data
from services.ingest.dossiers.normalise import (
    Vocabularies,
    clean_text,
    normalise_dossier,
    normalise_progress,
    parse_code,
    parse_datetime,
    parse_flag,
    validate_agency_code,
)
from services.ingest.errors import InvalidCodeError, InvalidDateError
from services.ingest.settings import DEFAULT_CHANNEL_VOCABULARY, DEFAULT_STATUS_VOCABULARY

VOCAB = Vocabularies(status=DEFAULT_STATUS_VOCABULARY, channel=DEFAULT_CHANNEL_VOCABULARY)
LOCAL_10AM = datetime(2026, 11, 2, 10, 0, 0, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("20261102100000", LOCAL_10AM, id="portal-yyyyMMddHHmmss"),
        pytest.param(20261102100000, LOCAL_10AM, id="portal-format-as-number"),
        pytest.param("20261102", LOCAL_10AM.replace(hour=0), id="yyyyMMdd"),
        pytest.param("2026-11-02T10:00:00+07:00", LOCAL_10AM, id="iso-with-offset"),
        pytest.param("2026-11-02T03:00:00Z", LOCAL_10AM, id="iso-utc-z"),
        pytest.param("2026-11-02T10:00:00", LOCAL_10AM, id="iso-local-no-offset"),
        pytest.param("2026-11-02 10:00:00", LOCAL_10AM, id="iso-with-space"),
        pytest.param("02/11/2026 10:00:00", LOCAL_10AM, id="dd/MM/yyyy-HH:mm:ss"),
        pytest.param("2/11/2026 10:00", LOCAL_10AM, id="d/MM/yyyy-HH:mm"),
        pytest.param("02/11/2026", LOCAL_10AM.replace(hour=0), id="dd/MM/yyyy"),
        pytest.param("2026/11/02 10:00:00", LOCAL_10AM, id="yyyy/MM/dd-HH:mm:ss"),
        pytest.param(1793588400000, LOCAL_10AM, id="epoch-ms-number"),
        pytest.param("1793588400000", LOCAL_10AM, id="epoch-ms-string"),
        pytest.param(" 20261102100000 ", LOCAL_10AM, id="surrounding-whitespace"),
    ],
)
def test_dates_in_every_dialect_become_aware_local_times(
    value: str | int, expected: datetime
) -> None:
    parsed = parse_datetime(value, field="NgayTiepNhan")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(hours=7)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("20261345100000", id="month-13"),
        pytest.param("20260230100000", id="february-30"),
        pytest.param("20261102250000", id="hour-25"),
        pytest.param("31/04/2026 10:00:00", id="april-31"),
        pytest.param("2026-13-01T00:00:00", id="iso-month-13"),
        pytest.param("yesterday", id="words"),
        pytest.param("", id="empty"),
        pytest.param("19000101000000", id="before-1990"),
        pytest.param("99991231235959", id="year-9999"),
        pytest.param(10**13 * 9, id="epoch-far-future"),
        pytest.param("2026-11-02T10:00:00+25:00", id="offset-out-of-range"),
    ],
)
def test_impossible_dates_are_errors_not_guesses(value: str | int) -> None:
    with pytest.raises(InvalidDateError):
        parse_datetime(value, field="NgayTiepNhan")


def test_date_error_names_the_field_not_the_value() -> None:
    with pytest.raises(InvalidDateError, match="NgayHenTra") as info:
        parse_datetime("20261345100000", field="NgayHenTra")
    assert "20261345" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(4, DossierStatus.IN_PROCESS, id="number"),
        pytest.param("4", DossierStatus.IN_PROCESS, id="numeric-string"),
        pytest.param(" 10 ", DossierStatus.RETURNED, id="padded-string"),
        pytest.param("processing", DossierStatus.IN_PROCESS, id="vocabulary-word"),
        pytest.param("Done", DossierStatus.RETURNED, id="vocabulary-any-case"),
        pytest.param("receiving", DossierStatus.SUBMITTED, id="vocabulary-receiving"),
    ],
)
def test_status_codes(value: str | int, expected: DossierStatus) -> None:
    code = parse_code(value, field="TrangThaiHoSo", allowed=DossierStatus, vocabulary=VOCAB.status)
    assert code == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(11, id="eleven"),
        pytest.param("pending-review", id="unknown-word"),
        pytest.param(True, id="boolean"),
        pytest.param("-3", id="negative"),
    ],
)
def test_unknown_status_codes_are_errors(value: str | int) -> None:
    with pytest.raises(InvalidCodeError):
        parse_code(value, field="TrangThaiHoSo", allowed=DossierStatus, vocabulary=VOCAB.status)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(2, Channel.ONLINE, id="number"),
        pytest.param("1", Channel.IN_PERSON, id="string"),
        pytest.param("online", Channel.ONLINE, id="word"),
        pytest.param("Truc tuyen", Channel.ONLINE, id="vietnamese-word-with-space"),
        pytest.param("buu_chinh", Channel.POSTAL, id="postal-word"),
    ],
)
def test_channel_codes(value: str | int, expected: Channel) -> None:
    code = parse_code(value, field="KenhThucHien", allowed=Channel, vocabulary=VOCAB.channel)
    assert code == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            unicodedata.normalize("NFD", "Nguyễn Văn An"), "Nguyễn Văn An", id="nfd-to-nfc"
        ),
        pytest.param("  Hồ sơ\x00 hợp\x07 lệ \x1b ", "Hồ sơ hợp lệ", id="control-characters"),
        pytest.param("a\u200bb\u202ec", "abc", id="zero-width-and-bidi"),
        pytest.param("dòng 1\ndòng 2", "dòng 1\ndòng 2", id="newline-kept"),
        pytest.param("   ", None, id="blank-is-none"),
        pytest.param("x" * 50, "x" * 10, id="bounded"),
    ],
)
def test_clean_text(value: str, expected: str | None) -> None:
    assert clean_text(value, max_chars=10 if len(value) == 50 else 100) == expected


_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_PRINTABLE = st.text(
    st.one_of(
        st.sampled_from("aăâđêôơưAĐ ̣́̀̉̃ "),
        st.characters(categories=["L", "M", "N", "P", "S"]),
    ),
    max_size=40,
)
_UNSEEN = "\t\n\r\x00\x1b\x7f\x85\xa0\u200b\u200e\u202e\u2066\ufeff\u3000\u2028"


@given(
    printable=_PRINTABLE,
    inserted=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(_UNSEEN)), max_size=3),
    nfd=st.booleans(),
    limit=st.integers(1, 50),
)
def test_clean_text_as_its_definition(
    printable: str, inserted: list[tuple[int, str]], nfd: bool, limit: int
) -> None:
    """Controls and hidden marks removed, NFC, trimmed, bounded, empty as None; whichever path
    the text takes (most text is printable, some is decomposed, some carries controls)."""
    value = unicodedata.normalize("NFD", printable) if nfd else printable
    for at, char in inserted:
        value = value[:at] + char + value[at:]
    cleaned = unicodedata.normalize("NFC", _HIDDEN.sub("", value)).strip()[:limit]
    assert clean_text(value, max_chars=limit) == (cleaned or None)


def test_nfc_output_is_stable_for_precomposed_input() -> None:
    text = "Đăng ký khai sinh"
    assert clean_text(unicodedata.normalize("NFD", text), max_chars=100) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("000.00.00.G22", "000.00.00.G22", id="ministry"),
        pytest.param(" 000.00.10.h29 ", "000.00.10.H29", id="lowercase-padded"),
        pytest.param("999.99.99.Z99", "999.99.99.Z99", id="unknown-but-well-formed-kept"),
    ],
)
def test_agency_codes_valid(value: str, expected: str) -> None:
    assert validate_agency_code(value, field="madonvi") == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("H29", id="short"),
        pytest.param("000.00.00.G2", id="one-digit-suffix"),
        pytest.param("000.00.00.22G", id="suffix-reversed"),
        pytest.param("000-00-00-G22", id="dashes"),
        pytest.param("000.00.00.00.G22", id="five-groups"),
    ],
)
def test_agency_codes_invalid(value: str) -> None:
    with pytest.raises(InvalidCodeError):
        validate_agency_code(value, field="madonvi")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1, True, id="one"),
        pytest.param("1", True, id="string-one"),
        pytest.param("True", True, id="True"),
        pytest.param(True, True, id="bool"),
        pytest.param(0, False, id="zero"),
        pytest.param("0", False, id="string-zero"),
        pytest.param(None, False, id="missing"),
    ],
)
def test_flags(value: int | str | bool | None, expected: bool) -> None:
    assert parse_flag(value) is expected


def test_normalise_dossier_full_item() -> None:
    event = validate_data(
        {
            "MaHoSo": "H-1",
            "MaDonVi": "000.00.20.h57",
            "TrangThaiHoSo": "waiting",
            "KenhThucHien": "2",
            "NgayTiepNhan": "02/11/2026 10:00:00",
            "NgayHenTra": "20261110170000",
            "TenTTHC": unicodedata.normalize("NFD", "Cấp phép"),
            "DonViXuLy": "000.00.20.H57",
            "HoSoCoThanhPhanSoHoa": "1",
            "DuocThanhToanTrucTuyen": 2,
            "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "001203004567"}],
            "DanhSachLePhi": [{"Gia": 10000}],
            "DanhSachHoSoBoSung": [{"x": 1}],
        },
        DossierEvent,
    )
    result = normalise_dossier(event, vocabularies=VOCAB, agency_hint=None, max_chars=1000)
    assert result.agency == "000.00.20.H57"
    assert result.status == DossierStatus.SUPPLEMENT_REQUESTED
    assert result.header.channel == Channel.ONLINE
    assert result.header.received_at == LOCAL_10AM
    assert result.header.procedure_name == "Cấp phép"
    assert result.header.handling_unit == "000.00.20.H57"
    assert result.header.has_digitised_components is True
    assert result.header.paid_online == 2
    assert result.header.applicant.identities[0].number == "001203004567"
    assert result.header.supplement_requests == 1
    assert result.header.due_at == datetime(2026, 11, 10, 17, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("data_agency", "hint", "expected"),
    [
        pytest.param(None, "000.00.00.G22", "000.00.00.G22", id="from-envelope"),
        pytest.param("000.00.10.H29", "000.00.00.G22", "000.00.10.H29", id="data-wins"),
        pytest.param(None, None, None, id="none"),
    ],
)
def test_agency_resolution(data_agency: str | None, hint: str | None, expected: str | None) -> None:
    data: dict[str, object] = {"MaHoSo": "H", "TrangThaiHoSo": 2}
    if data_agency:
        data["MaDonVi"] = data_agency
    event = validate_data(data, DossierEvent)
    result = normalise_dossier(event, vocabularies=VOCAB, agency_hint=hint, max_chars=100)
    assert result.agency == expected


def test_handling_unit_that_looks_like_a_code_must_be_one() -> None:
    event = validate_data(
        {"MaHoSo": "H", "TrangThaiHoSo": 2, "DonViXuLy": "000.00.G2"}, DossierEvent
    )
    with pytest.raises(InvalidCodeError, match="DonViXuLy"):
        normalise_dossier(event, vocabularies=VOCAB, agency_hint=None, max_chars=100)


def test_handling_unit_as_a_name_is_kept_as_text() -> None:
    event = validate_data(
        {"MaHoSo": "H", "TrangThaiHoSo": 2, "DonViXuLy": "UBND phường Thuận Hóa"}, DossierEvent
    )
    result = normalise_dossier(event, vocabularies=VOCAB, agency_hint=None, max_chars=100)
    assert result.header.handling_unit == "UBND phường Thuận Hóa"


def test_normalise_progress_bounds_handler_and_parses_dates() -> None:
    event = validate_data(
        {
            "mahoso": "H",
            "ThoiDiemXuLy": "2026-11-02T03:00:00Z",
            "NguoiXuLy": "x" * 80,
            "TrangThai": "4",
        },
        ProgressEvent,
    )
    result = normalise_progress(event, vocabularies=VOCAB, agency_hint=None, max_chars=100)
    assert result.step.handled_at == LOCAL_10AM
    assert result.step.handler == "x" * 50
    assert result.step.status == DossierStatus.IN_PROCESS


def test_utc_and_local_inputs_denote_the_same_instant() -> None:
    utc = parse_datetime("2026-11-02T03:00:00+00:00", field="d")
    local = parse_datetime("20261102100000", field="d")
    assert utc == local
    assert utc.astimezone(UTC).tzinfo is UTC
    assert local.astimezone(UTC) == datetime(2026, 11, 2, 3, tzinfo=UTC)
