"""The scores store on a real database (SQLite, then PostgreSQL): the hand-computed November
table through the counters and the 2.1 query, replays, corrections, backfills, lists."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from schemas.dossier import Channel, DossierStatus
from schemas.facts import DossierFacts
from services.scores.catalogue import Catalogue, Procedure
from services.scores.changes import AckChange, Batch, DocumentChange, DossierChange
from services.scores.database import current_revision, make_engine, migrate
from services.scores.formulas import Figure, Part, Reason, figures
from services.scores.periods import Period
from services.scores.store import ScoreStore
from services.scores.tables import dossiers, metadata
from tests.support.scores_cases import (
    AGENCY,
    NOVEMBER,
    NOVEMBER_FIGURES,
    NOW_AFTER,
    at,
    facts,
    finished,
)

NOVEMBER_2026 = Period.parse("2026-11")


@pytest.fixture
def store(database_url: str) -> Iterator[ScoreStore]:
    engine = make_engine(database_url)
    migrate(engine)
    store = ScoreStore(engine)
    store.prepare()
    yield store
    engine.dispose()


def _november(revision: int = 1) -> Batch:
    return Batch(
        dossiers=[DossierChange(c.code, revision, c.facts) for c in NOVEMBER],
        acks=[AckChange(c.code, 1, c.portal_holds) for c in NOVEMBER],
    )


def _figures(
    store: ScoreStore, period: Period = NOVEMBER_2026, now: datetime = NOW_AFTER
) -> dict[str, Figure]:
    sums = store.sums([AGENCY], period, now=now)
    return {f.id: f for f in figures(sums, catalogue_configured=store.catalogue.configured)}


def _assert_november(store: ScoreStore) -> None:
    got = _figures(store)
    for indicator, (num, den, rate, score) in NOVEMBER_FIGURES.items():
        assert (got[indicator].numerator, got[indicator].denominator) == (num, den), indicator
        assert got[indicator].rate == pytest.approx(rate), indicator
        assert got[indicator].points == pytest.approx(score), indicator


def _assert_counts_consistent(store: ScoreStore) -> None:
    with store.engine.connect() as conn:
        assert store.stored_counts(conn) == store.expected_counts(conn)


def test_migrations_create_exactly_the_tables(store: ScoreStore) -> None:
    assert current_revision(store.engine) == "0002"
    migrate(store.engine)  # again: nothing to do
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_november_through_the_database(store: ScoreStore) -> None:
    applied = store.apply(_november())
    assert (applied.dossiers, applied.acks, applied.stale) == (len(NOVEMBER), len(NOVEMBER), 0)
    _assert_november(store)
    _assert_counts_consistent(store)


def test_replays_change_nothing(store: ScoreStore) -> None:
    store.apply(_november())
    # The whole topic again, the same records in another order, then in one batch per record.
    again = store.apply(_november())
    assert (again.dossiers, again.acks, again.stale) == (0, 0, 2 * len(NOVEMBER))
    shuffled = list(_november().dossiers)
    random.Random(7).shuffle(shuffled)
    store.apply(Batch(dossiers=shuffled))
    for change in _november().dossiers:
        store.apply(Batch(dossiers=[change]))
    _assert_november(store)
    _assert_counts_consistent(store)


def test_any_order_and_batching_ends_at_the_newest_revisions(store: ScoreStore) -> None:
    """Older revisions carry other dossiers' facts (other days, statuses, agencies' flags) and
    other acknowledgements; whatever the order and the batches they come in, the figures are
    November's hand-computed ones, which only the newest revisions (4, and ack 3) give."""
    rng = random.Random(14)
    others = [c.facts for c in NOVEMBER]
    changes: list[DossierChange | AckChange] = []
    for case in NOVEMBER:
        changes += [DossierChange(case.code, r, rng.choice(others)) for r in (1, 2, 3)]
        changes.append(DossierChange(case.code, 4, case.facts))
        changes += [AckChange(case.code, r, rng.random() < 0.5) for r in (1, 2)]
        changes.append(AckChange(case.code, 3, case.portal_holds))
    for _ in range(3):  # the same records again: a replay of the topics
        rng.shuffle(changes)
        start = 0
        while start < len(changes):
            size = rng.randint(1, 25)
            part = changes[start : start + size]
            start += size
            store.apply(
                Batch(
                    dossiers=[c for c in part if isinstance(c, DossierChange)],
                    acks=[c for c in part if isinstance(c, AckChange)],
                )
            )
            _assert_counts_consistent(store)
    _assert_november(store)


def test_acknowledgement_before_the_dossier(store: ScoreStore) -> None:
    batch = _november()
    store.apply(Batch(acks=batch.acks))
    assert _figures(store)["1.4"].denominator == 0
    store.apply(Batch(dossiers=batch.dossiers))
    _assert_november(store)


def test_records_in_one_batch_keep_only_the_newest(store: ScoreStore) -> None:
    d5 = next(c for c in NOVEMBER if c.code == "D5")
    paid = d5.facts.model_copy(update={"paid_online": 2})
    store.apply(Batch(dossiers=[DossierChange("D5", 2, paid), DossierChange("D5", 1, d5.facts)]))
    assert _figures(store)["3.6"].numerator == 1  # revision 2 (paid) wins over revision 1


def test_payment_flagged_late_and_other_corrections(store: ScoreStore) -> None:
    store.apply(_november())
    d5 = next(c for c in NOVEMBER if c.code == "D5")
    # Revision 2: the payment flag arrives on a later header: 3.6 goes from 1/2 to 2/2.
    store.apply(
        Batch(dossiers=[DossierChange("D5", 2, d5.facts.model_copy(update={"paid_online": 1}))])
    )
    assert (_figures(store)["3.6"].numerator, _figures(store)["3.6"].denominator) == (2, 2)
    # Revision 3: the reception date is corrected to October: D5 leaves November's
    # reception-dated indicators (10 -> 9) and its open part (11 -> 10); October gains it.
    moved = d5.facts.model_copy(update={"received_at": at(10, 15, 9), "paid_online": 1})
    store.apply(Batch(dossiers=[DossierChange("D5", 3, moved)]))
    november = _figures(store)
    assert november["1.4"].denominator == 9
    assert november["3.6"].denominator == 1
    # D5 is still open at 1 Nov and 1 Dec (due 5 Dec): in November's 2.1 still (received
    # before its end, not ended before its start) -> 6/11 unchanged.
    assert (november["2.1"].numerator, november["2.1"].denominator) == (6, 11)
    october = _figures(store, Period.parse("2026-10"))
    assert october["1.4"].denominator == 3  # D3, D4, D5
    # A stale revision of D5 (2) after revision 3: ignored.
    store.apply(Batch(dossiers=[DossierChange("D5", 2, d5.facts)]))
    assert _figures(store)["1.4"].denominator == 9
    # The portal's acknowledgement withdrawn (header false at a newer ack revision): 4 -> 3.
    store.apply(Batch(acks=[AckChange("D1", 2, header=False)]))
    assert _figures(store)["1.4"].numerator == 3
    _assert_counts_consistent(store)


def test_a_finish_moves_a_dossier_between_judgements(store: ScoreStore) -> None:
    store.apply(_november())
    d6 = next(c for c in NOVEMBER if c.code == "D6")
    # D6 (overdue at the end of November) finishes on 24 Nov, before its due date (25 Nov).
    done = finished(at(11, 10, 9), at(11, 24, 9), due_at=at(11, 25, 17))
    store.apply(Batch(dossiers=[DossierChange("D6", 2, done)]))
    got = _figures(store)
    assert (got["2.1"].numerator, got["2.1"].denominator) == (7, 11)
    assert got["2.2"].denominator == 7
    assert d6.facts.ended_at is None
    _assert_counts_consistent(store)


def test_backfill_lands_in_its_own_period(store: ScoreStore) -> None:
    store.apply(_november())
    old = finished(
        at(3, 2, 9, year=2025),
        at(3, 5, 9, year=2025),
        due_at=at(3, 9, 17, year=2025),
        channel=Channel.ONLINE,
    )
    store.apply(Batch(dossiers=[DossierChange("B1", 1, old)]))
    march = _figures(store, Period.parse("2025-03"))
    assert (march["2.1"].numerator, march["2.1"].denominator) == (1, 1)
    assert (march["3.3"].numerator, march["3.3"].denominator) == (1, 1)
    _assert_november(store)  # November untouched


def test_current_month_is_judged_now(store: ScoreStore) -> None:
    # On 20 Nov 12:00 with only the dossiers received by then (and not yet ended) as they
    # stood: D6 (due 25 Nov) is within its due date; D5 (received 20 Nov 09:00) too.
    now = at(11, 20, 12)
    store.apply(
        Batch(
            dossiers=[
                DossierChange("D5", 1, facts(received_at=at(11, 20, 9), due_at=at(12, 5, 17))),
                DossierChange("D6", 1, facts(received_at=at(11, 10, 9), due_at=at(11, 25, 17))),
                DossierChange("D16", 1, facts(received_at=at(11, 1, 9), due_at=at(11, 19, 17))),
            ]
        )
    )
    got = _figures(store, now=now)
    assert (got["2.1"].numerator, got["2.1"].denominator) == (2, 3)  # D16 overdue since 19th
    page = store.listed([AGENCY], NOVEMBER_2026, "2.1", counted=False, now=now)
    assert [(i.code, i.judgement.reason) for i in page.items] == [("D16", Reason.OVERDUE)]


def test_lists_of_dossiers_behind_an_indicator(store: ScoreStore) -> None:
    store.apply(_november())

    def listed(indicator: str, counted: bool) -> dict[str, Reason | None]:
        page = store.listed([AGENCY], NOVEMBER_2026, indicator, counted=counted, now=NOW_AFTER)
        assert page.total == len(page.items)
        return {i.code: i.judgement.reason for i in page.items}

    assert listed("2.1", counted=False) == {
        "D2": Reason.LATE,
        "D3": Reason.LATE,
        "D6": Reason.OVERDUE,
        "D8": Reason.SUPPLEMENTS,
        "D10": Reason.NO_DUE_DATE,
    }
    assert set(listed("2.1", counted=True)) == {"D1", "D5", "D7", "D9", "D11", "D14"}
    assert listed("1.4", counted=False) == dict.fromkeys(
        ["D5", "D6", "D8", "D9", "D10", "D11"], Reason.NOT_SYNCED
    )
    assert listed("3.6", counted=False) == {"D5": Reason.NOT_PAID}
    assert set(listed("2.2", counted=True)) == {"D1", "D2", "D7", "D8", "D9", "D10"}
    assert listed("2.2", counted=False) == {}
    # Paged, oldest reception first: D7 and D8 (2 Nov 09:00), then D1 (3 Nov).
    page = store.listed([AGENCY], NOVEMBER_2026, "1.4", counted=True, now=NOW_AFTER, limit=2)
    assert page.total == 4
    assert [i.code for i in page.items] == ["D7", "D1"]
    second = store.listed(
        [AGENCY], NOVEMBER_2026, "1.4", counted=True, now=NOW_AFTER, limit=2, offset=2
    )
    assert [i.code for i in second.items] == ["D2", "D14"]


def test_every_agency_and_codes_seen(store: ScoreStore) -> None:
    store.apply(_november())
    other = facts(agency="000.00.02.H02", received_at=at(11, 4, 9), status=DossierStatus.ACCEPTED)
    store.apply(Batch(dossiers=[DossierChange("X1", 1, other)]))
    by_agency = store.sums_by_agency(NOVEMBER_2026, now=NOW_AFTER)
    assert set(by_agency) == {AGENCY, "000.00.02.H02"}
    assert by_agency["000.00.02.H02"].parts[Part.RECEIVED] == 1
    assert store.agencies_seen() == [AGENCY, "000.00.02.H02"]


def test_signature_share(store: ScoreStore) -> None:
    def doc(
        doc_id: str, day: int, *, verified: bool, outgoing: bool = True, **kw: object
    ) -> DocumentChange:
        return DocumentChange(
            doc_id,
            version=1_000 + day,
            agency=AGENCY,
            promulgated=at(11, day),
            outgoing=outgoing,
            verified=verified,
            **kw,  # type: ignore[arg-type]
        )

    store.apply(
        Batch(
            documents=[
                doc("V1", 3, verified=True),
                doc("V2", 4, verified=False),
                doc("V3", 5, verified=True),
                doc("IN", 6, verified=False, outgoing=False),  # incoming: not counted
            ]
        )
    )
    assert (_figures(store)["signature"].numerator, _figures(store)["signature"].denominator) == (
        2,
        3,
    )
    # V4 replaces V2 (signed this time); V3 is recalled; a redelivery of V1 changes nothing.
    store.apply(
        Batch(
            documents=[doc("V4", 7, verified=True, withdraws=("V2",)), doc("V1", 3, verified=True)],
            withdrawn=["V3"],
        )
    )
    got = _figures(store)["signature"]
    assert (got.numerator, got.denominator) == (2, 2)  # V1, V4
    page = store.listed([AGENCY], NOVEMBER_2026, "signature", counted=True, now=NOW_AFTER)
    assert [i.code for i in page.items] == ["V1", "V4"]
    _assert_counts_consistent(store)


def test_a_new_catalogue_recomputes_the_parts(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    first = ScoreStore(engine)
    first.prepare()
    paper = finished(at(11, 3, 9), at(11, 5, 9), procedure_code="P-PAPER", channel=Channel.ONLINE)
    first.apply(Batch(dossiers=[DossierChange("P1", 1, paper)]))
    assert _figures(first)["3.3"].numerator == 1
    # The catalogue now says P-PAPER issues a paper result: P1 has no result file, so 4.1
    # counts it against and 3.3 no longer counts it online.
    second = ScoreStore(engine, Catalogue({"P-PAPER": Procedure(paper_result=True)}))
    assert second.prepare() is True
    got = _figures(second)
    assert (got["4.1"].numerator, got["4.1"].denominator) == (0, 1)
    assert got["3.3"].numerator == 0
    assert second.prepare() is False  # same catalogue again: nothing to do
    _assert_counts_consistent(second)
    engine.dispose()


def test_dates_are_utc_in_storage_and_local_in_days(store: ScoreStore) -> None:
    # 30 Nov 17:00 UTC is 1 Dec 00:00 in Hanoi: December.
    utc = facts(received_at=datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    store.apply(Batch(dossiers=[DossierChange("U1", 1, utc)]))
    assert _figures(store)["1.4"].denominator == 0
    assert _figures(store, Period.parse("2026-12"))["1.4"].denominator == 1


def test_rows_come_back_as_written(store: ScoreStore) -> None:
    # On PostgreSQL a batch's rows travel as one JSON parameter: text that JSON escapes, a
    # placeholder's look-alike and absent values must arrive as sent.
    code = 'Q"1\\%s'
    procedure = 'Thủ tục "cấp phép"\\\n%s 100%'
    received = at(11, 3, 9)
    sent = facts(received_at=received, procedure_code=procedure, due_at=None)
    store.apply(Batch(dossiers=[DossierChange(code, 3, sent)], acks=[AckChange(code, 2, True)]))
    with store.engine.connect() as conn:
        row = conn.execute(select(dossiers).where(dossiers.c.code == code)).one()
    assert (row.revision, row.ack_revision, row.portal_holds) == (3, 2, 1)
    assert row.procedure_code == procedure
    assert row.received_ms == int(received.timestamp()) * 1000
    assert row.end_ms is None
    assert row.deadline_ms is None
    assert DossierFacts.model_validate_json(row.facts) == sent
    _assert_counts_consistent(store)


def test_migrations_in_two_threads_at_once_each_reach_the_head(tmp_path: Path) -> None:
    engines = [make_engine(f"sqlite:///{tmp_path / f'{i}.sqlite3'}") for i in range(6)]
    try:
        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            list(pool.map(migrate, engines))
        assert [current_revision(engine) for engine in engines] == ["0002"] * len(engines)
    finally:
        for engine in engines:
            engine.dispose()
