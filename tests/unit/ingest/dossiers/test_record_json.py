"""The published record's JSON, written by ingest without the contract's models, reads back as
the contract: the header's bytes as `DossierHeader` writes them, the facts and the record as
`DossierFacts` and `DossierRecord` validate them, over every dialect and pattern of the traffic.
"""

from __future__ import annotations

import random
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from schemas.dossier import DossierEvent, DossierHeader, DossierRecord
from schemas.facts import DossierFacts
from services.ingest.dossiers.decode import validate_data
from services.ingest.dossiers.facts import CurrentFacts
from services.ingest.dossiers.normalise import Vocabularies, normalise_dossier
from services.ingest.envelope import decode_record
from services.ingest.errors import IngestError
from services.ingest.main import build_pipeline
from services.ingest.settings import (
    DEFAULT_CHANNEL_VOCABULARY,
    DEFAULT_STATUS_VOCABULARY,
    IngestSettings,
)
from services.localrun.traffic.generator import TrafficGenerator
from services.localrun.traffic.options import TrafficOptions

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
VOCAB = Vocabularies(status=DEFAULT_STATUS_VOCABULARY, channel=DEFAULT_CHANNEL_VOCABULARY)


def test_the_facts_read_out_has_the_contracts_fields_in_its_order() -> None:
    assert [f.name for f in fields(CurrentFacts)] == list(DossierFacts.model_fields)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(TrafficOptions(dossiers_per_second=40), id="default-shape"),
        pytest.param(
            TrafficOptions(
                dossiers_per_second=40,
                bare_share=0.3,
                bare_life_share=0.2,
                late_facts_share=0.2,
                sparse_header_share=0.2,
                recode_share=0.2,
                dialect_share=0.6,
                duplicate_rate=0.2,
                out_of_order_rate=0.3,
            ),
            id="bare-late-recoded",
        ),
    ],
)
def test_published_records_read_back_as_the_contract(options: TrafficOptions) -> None:
    generator = TrafficGenerator(options, random.Random(7))
    pipeline = build_pipeline(IngestSettings())
    states: dict[str, bytes] = {}
    now, checked = START, 0
    kinds: set[str] = set()
    for _ in range(300):
        now += timedelta(milliseconds=50)
        for event in generator.tick(now):
            try:
                envelope = decode_record(event.value, event.headers, topic="t", max_bytes=1 << 20)
            except IngestError:
                continue
            decision = pipeline.handle(envelope, states=states, now=now).decision
            if decision is None or decision.accepted is None:
                continue
            published = decision.record_bytes()
            record = decision.record
            assert record is not None
            assert DossierRecord.model_validate_json(published) == record
            assert orjson.loads(published) == orjson.loads(record.model_dump_json())
            if record.header is not None:
                assert decision.accepted.header_json == record.header.model_dump_json().encode()
            kinds.add(record.kind)
            checked += 1
    assert checked > 500
    assert len(kinds) == 2


def test_header_json_matches_the_model_for_every_value_type() -> None:
    """Fees as decimals, dates with their offset and fraction, lists of every nested model."""
    event = validate_data(
        {
            "MaHoSo": "H-1",
            "TrangThaiHoSo": 2,
            "KenhThucHien": 2,
            "TrichYeuHoSo": 'Đơn "xin" cấp\tphép \\ / 😀',
            "NgayTiepNhan": "2026-11-02T08:00:00.125+07:00",
            "NgayHenTra": "20261110170000",
            "DuocThanhToanTrucTuyen": "1",
            "LoaiDoiTuong": 2,
            "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": " 001 "}],
            "TaiLieuNop": [
                {"TepDinhKemId": 12, "DuongDanTaiTepTin": "https://x.vn/a.pdf", "DuocSoHoa": 1}
            ],
            "DanhSachLePhi": [
                {"Gia": "150000.50"},
                {"Gia": 0},
                {"Gia": "1E+5"},
                {"TenPhiLePhi": "no amount"},
            ],
            "DanhSachHoSoBoSung": [{}, {}],
            "DanhSachGiayToKetQua": [{"TenGiayTo": "GP", "GiayToId": "g-1"}],
        },
        DossierEvent,
    )
    dossier = normalise_dossier(event, vocabularies=VOCAB, agency_hint=None, max_chars=1000)
    assert dossier.header_json == dossier.header.model_dump_json().encode()
    assert DossierHeader.model_validate_json(dossier.header_json) == dossier.header
    assert [f.amount for f in dossier.header.fees] == [
        Decimal("150000.50"),
        Decimal(0),
        Decimal("1E+5"),
        Decimal(0),
    ]
