"""The dispatcher with small fakes of our own protocols: order, concurrency, outcomes, offsets."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from schemas.dossier import DossierRecord, DossierStatus, RecordKind, Timeliness
from schemas.facts import DossierFacts
from services.sync.acked import AckLedger, AckState
from services.sync.delivery import (
    BackoffPolicy,
    CircuitBreaker,
    Dispatcher,
    OffsetTracker,
    Work,
)
from services.sync.errors import (
    DestinationUnavailableError,
    PermanentError,
    RateLimitedError,
    RejectedError,
    TransientError,
)

AT = datetime(2025, 7, 1, tzinfo=UTC)


def rec(code: str, revision: int) -> DossierRecord:
    return DossierRecord(
        dossier_code=code,
        agency=None,
        revision=revision,
        kind=RecordKind.PROGRESS if revision > 1 else RecordKind.DOSSIER,
        status=DossierStatus.ACCEPTED,
        timeliness=Timeliness.IN_PROGRESS,
        source="s",
        event_id=f"{code}{revision}",
        event_time=AT,
        ingested_at=AT,
        facts=DossierFacts(agency=None, status=DossierStatus.ACCEPTED),
    )


class FakeDestination:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bool]] = []
        self.failures: dict[tuple[str, int], list[Exception]] = defaultdict(list)
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None

    async def send(self, record: DossierRecord, *, known: bool) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            if self.gate is not None:
                await self.gate.wait()
            pending = self.failures[(record.dossier_code, record.revision)]
            if pending:
                raise pending.pop(0)
            self.sent.append((record.dossier_code, record.revision, known))
        finally:
            self.in_flight -= 1


class FakeOutcomes:
    def __init__(self) -> None:
        self.acked: list[tuple[str, int, bool]] = []
        self.dead: list[tuple[int, str]] = []
        self.stale: list[int] = []
        self.retries: list[float] = []

    async def acknowledged(
        self,
        work: Work,
        before: AckState | None,
        after: AckState,
        *,
        released: Sequence[Work] = (),
    ) -> None:
        assert work.record is not None
        self.acked.append((work.record.dossier_code, work.record.revision, before is None))

    async def dead_lettered(self, work: Work, error: PermanentError) -> None:
        self.dead.append((work.offset, type(error).__name__))

    def skipped(self, work: Work) -> None:
        self.stale.append(work.offset)

    def attempt_failed(self, work: Work, error: TransientError, delay: float) -> None:
        self.retries.append(delay)


def make(
    max_in_flight: int = 8,
    ledger: AckLedger | None = None,
    *,
    destination: FakeDestination | None = None,
    outcomes: FakeOutcomes | None = None,
) -> tuple[Dispatcher, FakeDestination, FakeOutcomes]:
    destination = destination or FakeDestination()
    outcomes = outcomes or FakeOutcomes()
    dispatcher = Dispatcher(
        destination,
        outcomes,
        ledger or AckLedger(),
        policy=BackoffPolicy(0.001, 0.01, 0.05),
        breaker=CircuitBreaker(100, 0.01),
        max_in_flight=max_in_flight,
        rand=lambda: 0.5,
    )
    return dispatcher, destination, outcomes


async def settle(dispatcher: Dispatcher, partition: int, end: int) -> None:
    async with asyncio.timeout(5):
        while dispatcher.committable([partition]).get(partition) != end:
            dispatcher.raise_if_failed()
            await asyncio.sleep(0.002)


@pytest.mark.parametrize(
    ("offsets", "done", "expected"),
    [
        pytest.param([0, 1, 2], [1, 2], None, id="head-missing"),
        pytest.param([0, 1, 2], [0, 2], 1, id="gap-stops-watermark"),
        pytest.param([0, 1, 2], [2, 1, 0], 3, id="all-done-any-order"),
        pytest.param([5, 9, 12], [5, 9], 10, id="offsets-with-holes"),
    ],
)
def test_offset_tracker(offsets: list[int], done: list[int], expected: int | None) -> None:
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.add(offset)
    for offset in done:
        tracker.done(offset)
    assert tracker.committable == expected


async def test_each_dossier_in_revision_order_and_concurrency_bounded() -> None:
    dispatcher, destination, outcomes = make(max_in_flight=3)
    offset = 0
    for revision in range(1, 6):
        for code in ("A", "B", "C", "D", "E"):
            dispatcher.submit(Work(0, offset, code, rec(code, revision)))
            offset += 1
    await settle(dispatcher, 0, offset)
    for code in "ABCDE":
        assert [r for c, r, _ in destination.sent if c == code] == [1, 2, 3, 4, 5]
    assert destination.max_in_flight == 3
    assert [known for _, r, known in destination.sent if r == 1] == [False] * 5
    assert len(outcomes.acked) == 25


async def test_stale_and_duplicate_revisions_are_skipped() -> None:
    ledger = AckLedger()
    ledger.load(0, {"A": AckState(3)})
    dispatcher, destination, outcomes = make(ledger=ledger)
    for offset, revision in enumerate([2, 3, 4, 4]):
        dispatcher.submit(Work(0, offset, "A", rec("A", revision)))
    await settle(dispatcher, 0, 4)
    assert destination.sent == [("A", 4, True)]
    assert outcomes.stale == [0, 1, 3]
    assert outcomes.acked == [("A", 4, False)]


async def test_transient_failures_are_retried_and_permanent_ones_dead_lettered() -> None:
    dispatcher, destination, outcomes = make()
    destination.failures[("A", 1)] = [
        DestinationUnavailableError("down"),
        RateLimitedError("slow", retry_after=0.02),
    ]
    destination.failures[("B", 1)] = [RejectedError("no", answer="bad")]
    dispatcher.submit(Work(0, 0, "A", rec("A", 1)))
    dispatcher.submit(Work(0, 1, "B", rec("B", 1)))
    dispatcher.submit(Work(0, 2, "B", rec("B", 2)))
    dispatcher.submit(Work(0, 3, "?", None, PermanentError("undecodable")))
    await settle(dispatcher, 0, 4)
    assert ("A", 1, False) in destination.sent
    assert outcomes.retries == [pytest.approx(0.0005), pytest.approx(0.02)]
    assert sorted(outcomes.dead) == [(1, "RejectedError"), (3, "PermanentError")]
    # B's revision 1 was refused, so B is still unknown: revision 2 goes as "known" by revision.
    assert ("B", 2, True) in destination.sent


async def test_watermark_waits_for_a_slow_earlier_record() -> None:
    dispatcher, destination, _ = make()
    destination.failures[("A", 1)] = [DestinationUnavailableError("down")] * 3
    dispatcher.submit(Work(0, 0, "A", rec("A", 1)))
    dispatcher.submit(Work(0, 1, "B", rec("B", 1)))
    async with asyncio.timeout(5):
        while ("B", 1, False) not in destination.sent:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    assert dispatcher.committable([0]).get(0) is None
    await settle(dispatcher, 0, 2)


async def test_release_abandons_queued_work_and_reports_the_watermark() -> None:
    dispatcher, destination, outcomes = make()
    dispatcher.submit(Work(0, 0, "A", rec("A", 1)))
    await settle(dispatcher, 0, 1)
    destination.gate = asyncio.Event()
    dispatcher.submit(Work(0, 1, "A", rec("A", 2)))
    dispatcher.submit(Work(0, 2, "A", rec("A", 3)))
    offsets = await dispatcher.release([0], drain_seconds=0.05)
    assert offsets == {0: 1}
    assert dispatcher.backlog == 0
    assert [r for _, r, _ in outcomes.acked] == [1]


async def sent(dispatcher: Dispatcher, destination: FakeDestination, count: int) -> None:
    async with asyncio.timeout(5):
        while len(destination.sent) < count:
            dispatcher.raise_if_failed()
            await asyncio.sleep(0.002)


class HeldDestination(FakeDestination):
    """Holds chosen records until released, to see what the free slots do meanwhile."""

    def __init__(self, held: set[tuple[str, int]]) -> None:
        super().__init__()
        self.release = {key: asyncio.Event() for key in held}

    async def send(self, record: DossierRecord, *, known: bool) -> None:
        release = self.release.get((record.dossier_code, record.revision))
        if release is not None:
            await release.wait()
        await super().send(record, known=known)


async def test_a_waiting_dossier_leaves_the_other_slots_to_other_dossiers() -> None:
    destination = HeldDestination({("A", 1)})
    dispatcher, _, _ = make(2, destination=destination)
    for offset, (code, revision) in enumerate([("A", 1), ("A", 2), ("B", 1), ("C", 1)]):
        dispatcher.submit(Work(0, offset, code, rec(code, revision)))
    await sent(dispatcher, destination, 2)
    assert destination.sent == [("B", 1, False), ("C", 1, False)]  # A 2 waits for A 1
    destination.release[("A", 1)].set()
    await settle(dispatcher, 0, 4)
    assert [r for c, r, _ in destination.sent if c == "A"] == [1, 2]


class SlowAcks(FakeOutcomes):
    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    async def acknowledged(
        self,
        work: Work,
        before: AckState | None,
        after: AckState,
        *,
        released: Sequence[Work] = (),
    ) -> None:
        assert work.record is not None
        if work.record.dossier_code == "A":
            await self.written.wait()
        await super().acknowledged(work, before, after, released=released)


async def test_recording_an_acknowledgement_does_not_hold_a_slot() -> None:
    outcomes = SlowAcks()
    dispatcher, destination, _ = make(1, outcomes=outcomes)
    for offset, (code, revision) in enumerate([("A", 1), ("A", 2), ("B", 1), ("C", 1)]):
        dispatcher.submit(Work(0, offset, code, rec(code, revision)))
    await sent(dispatcher, destination, 3)
    # A 1 is sent but its acknowledgement is not durable yet: A 2 waits, B and C go ahead.
    assert destination.sent == [("A", 1, False), ("B", 1, False), ("C", 1, False)]
    outcomes.written.set()
    await settle(dispatcher, 0, 4)
    assert destination.sent[-1] == ("A", 2, True)
