"""The scores API over HTTP on a real database: the contract's shapes, the downloads, the
crosswalk's roll-up, errors, the pages and the gauges."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx
import pytest
from openpyxl import load_workbook
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from schemas.dossier import DossierStatus
from services.scores import pages
from services.scores.api import create_app
from services.scores.changes import AckChange, Batch, DossierChange
from services.scores.crosswalk import Crosswalk, parse_crosswalk
from services.scores.database import make_engine, migrate
from services.scores.main import refresh_gauges
from services.scores.metrics import ScoresMetrics
from services.scores.scoreboard import Scoreboard
from services.scores.store import ScoreStore
from tests.support.scores_cases import (
    AGENCY,
    NOVEMBER,
    NOVEMBER_FIGURES,
    NOVEMBER_POINTS,
    NOW_AFTER,
    at,
    facts,
)

OLD = "000.00.09.H29"
CROSSWALK = f"old_code,new_code,valid_from\n{OLD},{AGENCY},2025-07-01\n"


@pytest.fixture
def store(database_url: str) -> Iterator[ScoreStore]:
    engine = make_engine(database_url)
    migrate(engine)
    store = ScoreStore(engine)
    store.prepare()
    store.apply(
        Batch(
            dossiers=[DossierChange(c.code, 1, c.facts) for c in NOVEMBER],
            acks=[AckChange(c.code, 1, c.portal_holds) for c in NOVEMBER],
        )
    )
    yield store
    engine.dispose()


def _scoreboard(store: ScoreStore, crosswalk: Crosswalk | None = None) -> Scoreboard:
    return Scoreboard(store, crosswalk or Crosswalk(), clock=lambda: NOW_AFTER)


@pytest.fixture
async def client(store: ScoreStore) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(_scoreboard(store)) as c:
        yield c


def _client(scoreboard: Scoreboard) -> httpx.AsyncClient:
    async def ready() -> dict[str, bool]:
        return {"database": True}

    app = create_app(scoreboard, registry=CollectorRegistry(), readiness=ready, page_size=3)
    app.include_router(pages.router(scoreboard, page_size=3))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scores")


async def test_one_agency_in_the_contract_shape(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/scores", params={"agency": AGENCY, "period": "2026-11"})
    assert answer.status_code == 200
    body = answer.json()
    assert {k: body[k] for k in ("agency", "period", "from", "to", "final")} == {
        "agency": AGENCY,
        "period": "2026-11",
        "from": "2026-11-01",
        "to": "2026-11-30",
        "final": True,
    }
    indicators = {i["id"]: i for i in body["indicators"]}
    assert list(indicators) == list(NOVEMBER_FIGURES)
    for indicator, (num, den, rate, score) in NOVEMBER_FIGURES.items():
        got = indicators[indicator]
        assert set(got) == {"id", "numerator", "denominator", "rate", "points", "max_points"}
        assert (got["numerator"], got["denominator"]) == (num, den)
        assert got["rate"] == pytest.approx(rate)
        assert got["points"] == pytest.approx(score)
    assert (body["points"], body["max_points"]) == pytest.approx(NOVEMBER_POINTS)


async def test_every_agency_is_a_list(store: ScoreStore, client: httpx.AsyncClient) -> None:
    other = facts(agency="000.00.02.H02", received_at=at(11, 4, 9), status=DossierStatus.ACCEPTED)
    store.apply(Batch(dossiers=[DossierChange("X1", 1, other)]))
    answer = await client.get("/v1/scores", params={"period": "2026-Q4"})
    assert answer.status_code == 200
    cards = answer.json()
    assert [c["agency"] for c in cards] == [AGENCY, "000.00.02.H02"]
    assert all(c["final"] is False for c in cards)  # Q4 runs until 31 Dec


async def test_drill_down_json_paged(client: httpx.AsyncClient) -> None:
    url = f"/v1/scores/{AGENCY}/2026-11/2.1/dossiers"
    first = (await client.get(url, params={"counted": "false"})).json()
    assert (first["total"], first["limit"], len(first["items"])) == (5, 3, 3)
    rest = (await client.get(url, params={"counted": "false", "offset": 3})).json()
    listed = {i["code"]: i["reason"] for i in first["items"] + rest["items"]}
    assert listed == {
        "D2": "late",
        "D3": "late",
        "D6": "overdue",
        "D8": "two_or_more_supplements",
        "D10": "no_due_date",
    }
    d2 = next(i for i in first["items"] + rest["items"] if i["code"] == "D2")
    assert datetime.fromisoformat(d2["received_at"]) == at(11, 5, 8)
    assert d2["reason_text"] == "Giải quyết quá hạn"


async def test_drill_down_csv_and_excel(client: httpx.AsyncClient) -> None:
    url = f"/v1/scores/{AGENCY}/2026-11/1.4/dossiers"
    csv = await client.get(url, headers={"Accept": "text/csv"})
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Mã hồ sơ,")
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(
        ["D5", "D6", "D8", "D9", "D10", "D11"]
    )  # every one, not a page of 3
    xlsx = await client.get(url, params={"format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Mã hồ sơ"
    assert len(rows) == 7
    assert {r[-1] for r in rows[1:]} == {"Chưa đồng bộ lên Cổng DVCQG"}


@pytest.mark.parametrize(
    ("url", "status"),
    [
        pytest.param("/v1/scores?period=2026-13", 400, id="bad-month"),
        pytest.param("/v1/scores?period=last-month", 400, id="bad-period"),
        pytest.param("/v1/scores", 422, id="no-period"),
        pytest.param(f"/v1/scores/{AGENCY}/2026-11/9.9/dossiers", 400, id="bad-indicator"),
        pytest.param(f"/v1/scores/{AGENCY}/2026-11/2.1/dossiers?format=pdf", 422, id="bad-format"),
    ],
)
async def test_bad_questions_get_a_reason(client: httpx.AsyncClient, url: str, status: int) -> None:
    answer = await client.get(url)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json().get("detail") or answer.json()["errors"]


async def test_old_codes_roll_into_the_new_agency(store: ScoreStore) -> None:
    # A dossier sent under the old code after the change counts for the new agency in
    # November 2026, keeps its code as sent, and the old code is no agency of its own.
    old = facts(agency=OLD, received_at=at(11, 6, 9), status=DossierStatus.ACCEPTED)
    before = facts(agency=OLD, received_at=at(6, 6, 9, year=2025), status=DossierStatus.ACCEPTED)
    store.apply(Batch(dossiers=[DossierChange("O1", 1, old), DossierChange("O2", 1, before)]))
    async with _client(_scoreboard(store, parse_crosswalk(CROSSWALK))) as client:
        card = (
            await client.get("/v1/scores", params={"agency": AGENCY, "period": "2026-11"})
        ).json()
        assert card["indicators"][0]["denominator"] == 11  # 10 + O1
        assert card["codes"] == [AGENCY, OLD]
        listed = await client.get(
            f"/v1/scores/{AGENCY}/2026-11/1.4/dossiers", params={"counted": "false", "limit": 50}
        )
        o1 = next(i for i in listed.json()["items"] if i["code"] == "O1")
        assert o1["agency"] == OLD
        everyone = (await client.get("/v1/scores", params={"period": "2026-11"})).json()
        assert [c["agency"] for c in everyone] == [AGENCY]
        june = (await client.get("/v1/scores", params={"agency": OLD, "period": "2025-06"})).json()
        assert june["indicators"][0]["denominator"] == 1  # before the change: its own


async def test_unknown_codes(store: ScoreStore) -> None:
    store.apply(
        Batch(
            dossiers=[
                DossierChange("U1", 1, facts(agency="000.00.77.H77", received_at=at(11, 2))),
                DossierChange("U2", 1, facts(agency="H77-typo", received_at=at(11, 2))),
                DossierChange("U3", 1, facts(agency=OLD, received_at=at(11, 2))),
            ]
        )
    )
    crosswalk = parse_crosswalk(CROSSWALK, current=[AGENCY])
    async with _client(_scoreboard(store, crosswalk)) as client:
        answer = await client.get("/v1/agencies/unknown")
        assert answer.json() == [
            {"code": "000.00.77.H77", "regular": True},
            {"code": "H77-typo", "regular": False},
        ]
        page = await client.get("/agencies/unknown")
        assert "H77-typo" in page.text


async def test_pages_render(client: httpx.AsyncClient) -> None:
    index = await client.get("/", params={"period": "2026-11"})
    assert index.status_code == 200
    assert AGENCY in index.text
    card = await client.get(f"/scores/{AGENCY}", params={"period": "2026-11"})
    assert "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn" in card.text
    assert "Chính thức" in card.text
    listed = await client.get(f"/scores/{AGENCY}/2026-11/2.1")  # D8 D3 D10, then D2 D6
    assert "Giải quyết quá hạn" in listed.text
    assert "Đang giải quyết, đã quá hạn" not in listed.text
    assert "format=xlsx" in listed.text
    second = await client.get(f"/scores/{AGENCY}/2026-11/2.1", params={"page": 2})
    assert "Đang giải quyết, đã quá hạn" in second.text


def _gauges(registry: CollectorRegistry, agency: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.name, s.labels["indicator"], s.labels["period"]): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name in ("govsync_score_rate", "govsync_score_points")
        and s.labels.get("agency") == agency
    }


def test_gauges_for_the_current_periods(store: ScoreStore) -> None:
    # On 15 Dec the current month is December (D15 only: received, not synced -> 1.4 = 0),
    # the quarter Q4 and the year 2026 (13 received, 4 synced).
    registry = CollectorRegistry()
    metrics = ScoresMetrics(registry)
    refresh_gauges(_scoreboard(store), metrics, agencies=frozenset({AGENCY}))

    samples = _gauges(registry, AGENCY)
    assert samples[("govsync_score_rate", "1.4", "month")] == 0.0
    assert samples[("govsync_score_rate", "1.4", "quarter")] == pytest.approx(4 / 13)
    assert samples[("govsync_score_points", "1.4", "year")] == pytest.approx(6 * 4 / 13)
    assert ("govsync_score_points", "3.3", "year") not in samples  # no points scale
    assert ("govsync_score_rate", "4.1", "year") not in samples  # no catalogue
    assert _gauges(registry, "other") == {}  # no other agency has dossiers


def test_agencies_not_configured_are_other_in_the_gauges(store: ScoreStore) -> None:
    # A sender's code never becomes a label: with no label agency configured, the same
    # dossiers are scored under `other`, and a code of their own has no series.
    store.apply(
        Batch(
            dossiers=[DossierChange("X9", 1, facts(agency="000.00.77.H77", received_at=at(12, 2)))]
        )
    )
    registry = CollectorRegistry()
    refresh_gauges(_scoreboard(store), ScoresMetrics(registry), agencies=frozenset())
    assert _gauges(registry, AGENCY) == {}
    assert _gauges(registry, "000.00.77.H77") == {}
    other = _gauges(registry, "other")
    # The year: 13 received of AGENCY and X9, 4 synced.
    assert other[("govsync_score_rate", "1.4", "year")] == pytest.approx(4 / 14)
