"""The step gate with small fakes of our own protocols: no step before an accepted header."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from schemas.dossier import DossierRecord, DossierStatus, RecordKind, Timeliness
from schemas.facts import DossierFacts
from services.sync.acked import AckLedger, AckState
from services.sync.delivery import BackoffPolicy, CircuitBreaker, Dispatcher, StepGate, Work
from services.sync.errors import (
    DestinationUnavailableError,
    HeaderMissingError,
    HeaderRefusedError,
    PermanentError,
    RejectedError,
    TransientError,
)

AT = datetime(2025, 7, 1, tzinfo=UTC)
H, S = RecordKind.DOSSIER, RecordKind.PROGRESS


def rec(code: str, revision: int, kind: RecordKind, status: int = 2) -> DossierRecord:
    return DossierRecord(
        dossier_code=code,
        agency="000.00.10.H29",
        revision=revision,
        kind=kind,
        status=DossierStatus(status),
        timeliness=Timeliness.IN_PROGRESS,
        source="s",
        event_id=f"{code}{revision}",
        event_time=AT,
        ingested_at=AT,
        facts=DossierFacts(agency="000.00.10.H29", status=DossierStatus(status)),
    )


class Portal:
    """Holds what it accepted; refuses the headers of `refused` and steps it has no dossier for."""

    def __init__(
        self, refused: frozenset[str] = frozenset(), elsewhere: frozenset[str] = frozenset()
    ) -> None:
        self.refused = refused
        self.held: set[str] = set(elsewhere)
        self.sent: list[tuple[str, int, RecordKind]] = []
        self.lookups: list[str] = []
        self.failures: list[Exception] = []

    async def send(self, record: DossierRecord, *, known: bool) -> None:
        await asyncio.sleep(0.001)
        if record.kind is H and self.failures:
            raise self.failures.pop(0)
        code = record.dossier_code
        if record.kind is H and code in self.refused:
            raise RejectedError("DongBoHoSoMC: error_code 3", answer="Dữ liệu không hợp lệ")
        if record.kind is S and code not in self.held:
            raise RejectedError("CapNhatTienDoHoSoMC: orphan")
        self.held.add(code)
        self.sent.append((code, record.revision, record.kind))

    async def holds(self, record: DossierRecord) -> bool:
        self.lookups.append(record.dossier_code)
        return record.dossier_code in self.held


class Outcomes:
    def __init__(self) -> None:
        self.acked: list[tuple[str, int, AckState, list[int]]] = []
        self.dead: list[tuple[str, int, type[PermanentError], str]] = []
        self.stale: list[int] = []

    async def acknowledged(
        self,
        work: Work,
        before: AckState | None,
        after: AckState,
        *,
        released: Sequence[Work] = (),
    ) -> None:
        assert work.record is not None
        revisions = [w.record.revision for w in released if w.record is not None]
        self.acked.append((work.record.dossier_code, work.record.revision, after, revisions))

    async def dead_lettered(self, work: Work, error: PermanentError) -> None:
        assert work.record is not None
        self.dead.append(
            (work.record.dossier_code, work.record.revision, type(error), f"{error} {error.answer}")
        )

    def skipped(self, work: Work) -> None:
        self.stale.append(work.offset)

    def attempt_failed(self, work: Work, error: TransientError, delay: float) -> None:
        pass


def make(
    portal: Portal, *, wait: float = 5.0, ledger: AckLedger | None = None
) -> tuple[Dispatcher, Outcomes]:
    outcomes = Outcomes()
    dispatcher = Dispatcher(
        portal,
        outcomes,
        ledger or AckLedger(),
        policy=BackoffPolicy(0.001, 0.01, 0.05),
        breaker=CircuitBreaker(100, 0.01),
        max_in_flight=8,
        gate=StepGate(wait, portal.holds),
        rand=lambda: 0.5,
    )
    return dispatcher, outcomes


def submit(dispatcher: Dispatcher, records: list[DossierRecord]) -> None:
    for offset, record in enumerate(records):
        dispatcher.submit(Work(0, offset, record.dossier_code, record))


async def settle(dispatcher: Dispatcher, end: int, within: float = 5) -> None:
    async with asyncio.timeout(within):
        while dispatcher.committable([0]).get(0) != end:
            dispatcher.raise_if_failed()
            await asyncio.sleep(0.002)


async def test_steps_of_a_refused_header_are_never_sent_and_go_with_it() -> None:
    portal = Portal(refused=frozenset({"A"}))
    dispatcher, outcomes = make(portal)
    submit(dispatcher, [rec("A", 1, H, 1), rec("A", 2, S), rec("B", 1, H), rec("A", 3, S, 4)])
    await settle(dispatcher, 4)
    assert portal.sent == [("B", 1, H)]
    assert portal.lookups == []
    assert [(c, r, e) for c, r, e, _ in outcomes.dead] == [
        ("A", 1, RejectedError),
        ("A", 2, HeaderRefusedError),
        ("A", 3, HeaderRefusedError),
    ]
    assert all("Dữ liệu không hợp lệ" in why for *_, why in outcomes.dead)
    assert [(c, r, a.header) for c, r, a, _ in outcomes.acked] == [("B", 1, True)]


async def test_a_step_before_its_header_waits_and_follows_it_as_history() -> None:
    portal = Portal()
    dispatcher, outcomes = make(portal)
    submit(dispatcher, [rec("A", 1, S, 2), rec("A", 2, S, 4)])
    async with asyncio.timeout(5):
        while dispatcher.parked < 2:  # noqa: ASYNC110 - polling a fake, bounded
            await asyncio.sleep(0.002)
    assert portal.sent == []
    assert portal.lookups == ["A"]  # asked once: the second step joins the first
    assert dispatcher.committable([0]).get(0) is None  # nothing committed past a parked step
    dispatcher.submit(Work(0, 2, "A", rec("A", 3, H, 4)))
    await settle(dispatcher, 3)
    assert portal.sent == [("A", 3, H), ("A", 1, S), ("A", 2, S)]
    [(code, revision, after, released)] = outcomes.acked
    assert (code, revision, released) == ("A", 3, [1, 2])
    assert after == AckState(3, True, True, DossierStatus.IN_PROCESS, "000.00.10.H29")
    assert dispatcher.parked == 0


async def test_a_step_whose_header_never_comes_is_dead_lettered_after_the_wait() -> None:
    portal = Portal()
    dispatcher, outcomes = make(portal, wait=0.1)
    submit(dispatcher, [rec("A", 1, S), rec("B", 1, H)])
    await settle(dispatcher, 2)
    assert portal.sent == [("B", 1, H)]
    [(code, revision, error, why)] = outcomes.dead
    assert (code, revision, error) == ("A", 1, HeaderMissingError)
    assert "0.1 s" in why


async def test_a_parked_step_waits_for_a_header_that_is_being_retried() -> None:
    portal = Portal()
    portal.failures = [DestinationUnavailableError("down")] * 30
    dispatcher, outcomes = make(portal, wait=0.05)
    submit(dispatcher, [rec("A", 1, S), rec("A", 2, H)])
    await settle(dispatcher, 2)
    assert outcomes.dead == []
    assert portal.sent == [("A", 2, H), ("A", 1, S)]


async def test_a_dossier_created_elsewhere_takes_steps_at_once() -> None:
    portal = Portal(elsewhere=frozenset({"OLD"}))
    dispatcher, outcomes = make(portal)
    submit(dispatcher, [rec("OLD", 1, S, 4), rec("OLD", 2, S, 9)])
    await settle(dispatcher, 2)
    assert portal.sent == [("OLD", 1, S), ("OLD", 2, S)]
    assert portal.lookups == ["OLD"]
    assert [(r, a.header, a.synced) for _, r, a, _ in outcomes.acked] == [
        (1, True, True),
        (2, True, True),
    ]


async def test_a_restored_header_lets_steps_through_without_a_lookup() -> None:
    ledger = AckLedger()
    ledger.load(0, {"A": AckState(1, header=True)})
    portal = Portal(elsewhere=frozenset({"A"}))
    dispatcher, outcomes = make(portal, ledger=ledger)
    submit(dispatcher, [rec("A", 1, H), rec("A", 2, S)])
    await settle(dispatcher, 2)
    assert (portal.sent, portal.lookups, outcomes.stale) == ([("A", 2, S)], [], [0])


async def test_releasing_a_partition_leaves_parked_steps_uncommitted() -> None:
    portal = Portal()
    dispatcher, outcomes = make(portal)
    submit(dispatcher, [rec("B", 1, H), rec("A", 1, S), rec("C", 1, H)])
    async with asyncio.timeout(5):
        while dispatcher.parked < 1 or len(portal.sent) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
    offsets = await dispatcher.release([0], drain_seconds=0.1)
    assert offsets == {0: 1}  # B only: the parked step at offset 1 is read again by the next owner
    assert (dispatcher.parked, dispatcher.backlog, outcomes.dead) == (0, 0, [])


@pytest.mark.parametrize("refused_first", [True, False], ids=["refused", "parked-then-refused"])
async def test_a_later_accepted_header_lifts_the_refusal(refused_first: bool) -> None:
    portal = Portal(refused=frozenset({"A"}))
    dispatcher, outcomes = make(portal)
    first = (
        [rec("A", 1, H, 1), rec("A", 2, S)] if refused_first else [rec("A", 1, S), rec("A", 2, H)]
    )
    submit(dispatcher, first)
    await settle(dispatcher, 2)
    portal.refused = frozenset()  # the source corrected the header
    dispatcher.submit(Work(0, 2, "A", rec("A", 3, H, 4)))
    dispatcher.submit(Work(0, 3, "A", rec("A", 4, S, 9)))
    await settle(dispatcher, 4)
    assert portal.sent == [("A", 3, H), ("A", 4, S)]
    # The header's own refusal first, then the step that went with it.
    assert [e for _, _, e, _ in outcomes.dead] == [RejectedError, HeaderRefusedError]
