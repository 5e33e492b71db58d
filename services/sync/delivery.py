"""Delivery rules without Kafka or HTTP: per-dossier order, concurrency, retries, commit watermarks.

The consumer hands every fetched record to a `Dispatcher` as a `Work` item. Records of one dossier
run one after another in offset (= revision) order; different dossiers run concurrently up to
`max_in_flight`. A record ends in exactly one outcome: acknowledged, dead-lettered or skipped as
stale. Transient failures are retried forever with exponential backoff and full jitter (or the
destination's `Retry-After`), paced by a circuit breaker; the consumer pauses fetching meanwhile,
so an outage becomes back-pressure rather than a pile of dead letters. Each partition's
`OffsetTracker` says how far the offsets may be committed: up to the first record not finished.

With a `StepGate` (the portal), no step is sent for a dossier the portal does not hold: as
existing adapters do, a step goes only after a header of its dossier was accepted. A step that
comes first is parked (after one `TraCuuHoSo`, in case the dossier was created elsewhere) and
the dossier's later records go on; a header accepted meanwhile is followed by the parked steps,
in order, as history; a header refused takes them to the dead letters with its answer, and
the dossier's later steps follow them there; a step still parked after `wait_seconds`, with no
header of its dossier on its way, goes to the dead letters as well. A parked step is not
finished, so the committed offset stays before it: after a restart or a rebalance it is read
again and parked again, and what was acknowledged meanwhile is in the acked topic.

A copy the reconciliation re-sent for this destination (`govsync-resend`, `services/reconcile/`)
is delivered even though its revision was acknowledged (the destination lost or never applied
it), unless a revision newer than the copy's `govsync-resend-upto` was acknowledged since; a copy
re-sent for another destination is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from schemas.dossier import DossierRecord, RecordKind
from services.sync.acked import AckLedger, AckState, advance
from services.sync.errors import (
    AuthenticationError,
    DestinationUnavailableError,
    HeaderMissingError,
    HeaderRefusedError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

Clock = Callable[[], float]


# --- backoff ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter; a longer `Retry-After` from the destination wins."""

    initial: float = 0.2
    maximum: float = 30.0
    retry_after_max: float = 120.0

    def ceiling(self, attempt: int) -> float:
        return min(self.maximum, self.initial * float(2 ** min(attempt, 62)))

    def delay(self, attempt: int, rand: float, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1`; `rand` is uniform in [0, 1)."""
        jittered = rand * self.ceiling(attempt)
        if retry_after is None:
            return jittered
        return min(max(retry_after, jittered), self.retry_after_max)


# --- circuit breaker -------------------------------------------------------------------------


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `reset_seconds` lets one probe through.

    A successful probe closes it; a failed one opens it again for twice as long (up to
    `max_reset_seconds`), so a long outage costs a probe now and then, not a retry storm.
    """

    def __init__(
        self,
        threshold: int,
        reset_seconds: float,
        *,
        clock: Clock = time.monotonic,
        max_reset_seconds: float = 60.0,
        poll_seconds: float = 0.05,
    ) -> None:
        self._threshold = threshold
        self._base_reset = reset_seconds
        self._reset = reset_seconds
        self._max_reset = max(max_reset_seconds, reset_seconds)
        self._clock = clock
        self._poll = poll_seconds
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._probing or self._clock() >= self._opened_at + self._reset:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def acquire(self) -> float:
        """0 if the caller may send now (as the probe, when half-open); else seconds to wait."""
        state = self.state
        if state is CircuitState.CLOSED:
            return 0.0
        if state is CircuitState.OPEN:
            assert self._opened_at is not None  # noqa: S101 - implied by the state
            return max(self._opened_at + self._reset - self._clock(), self._poll)
        if self._probing:
            return self._poll
        self._probing = True
        return 0.0

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False
        self._reset = self._base_reset

    def failure(self) -> None:
        self._failures += 1
        if self._probing:
            self._probing = False
            self._reset = min(self._reset * 2, self._max_reset)
            self._opened_at = self._clock()
        elif self._opened_at is None and self._failures >= self._threshold:
            self._opened_at = self._clock()

    def abandon(self) -> None:
        """The caller gave up without an answer (cancelled): let another caller probe."""
        self._probing = False


# --- offsets ---------------------------------------------------------------------------------


class OffsetTracker:
    """Offsets of one partition in fetch order; the committable offset is one past the last
    offset before which every record is finished (a contiguous watermark)."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._done: set[int] = set()
        self._committable: int | None = None

    def add(self, offset: int) -> None:
        self._pending.append(offset)

    def done(self, offset: int) -> None:
        self._done.add(offset)
        while self._pending and self._pending[0] in self._done:
            finished = self._pending.popleft()
            self._done.discard(finished)
            self._committable = finished + 1

    @property
    def committable(self) -> int | None:
        return self._committable

    def __len__(self) -> int:
        return len(self._pending)


# --- dispatcher ------------------------------------------------------------------------------


@dataclass(slots=True)
class Work:
    """One fetched record: decoded, or with the reason it could not be."""

    partition: int
    offset: int
    key: str
    record: DossierRecord | None
    error: PermanentError | None = None
    origin: object = None
    """Whatever the consumer needs to dead-letter it (the raw Kafka record)."""
    fetched_at: float = field(default_factory=time.monotonic)
    resend_upto: int | None = None
    """A copy the reconciliation re-sent for this destination: delivered although its revision
    was acknowledged, unless a revision newer than this one was (the dossier moved on)."""
    foreign: bool = False
    """A copy re-sent for another destination: skipped."""


class Destination(Protocol):
    """Sends one record to a destination; raises `TransientError` or `PermanentError`."""

    async def send(self, record: DossierRecord, *, known: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class StepGate:
    """Steps wait for their dossier's header (the portal); see the module docstring."""

    wait_seconds: float
    holds: Callable[[DossierRecord], Awaitable[bool]]
    """Whether the destination already holds the record's dossier (`TraCuuHoSo`)."""


class Outcomes(Protocol):
    """What happens once a record's fate is known; each must be durable when it returns."""

    async def acknowledged(
        self,
        work: Work,
        before: AckState | None,
        after: AckState,
        *,
        released: Sequence[Work] = (),
    ) -> None:
        """`work`, and the parked steps `released` after it, were accepted: record `after`."""

    async def dead_lettered(self, work: Work, error: PermanentError) -> None: ...

    def skipped(self, work: Work) -> None: ...

    def attempt_failed(self, work: Work, error: TransientError, delay: float) -> None: ...


def _trips_breaker(error: TransientError) -> bool:
    # 429 is pacing, not an outage; its Retry-After already spaces the retries.
    if isinstance(error, RateLimitedError):
        return False
    return isinstance(error, DestinationUnavailableError | AuthenticationError)


def _reason(error: PermanentError) -> str:
    return f"{error}: {error.answer}" if error.answer else str(error)


@dataclass(slots=True)
class _Parked:
    work: Work
    deadline: float


Slot = tuple[int, str]
"""(partition, dossier code): the unit of ordering."""


class Dispatcher:
    """Runs `Work` items with the delivery rules; see the module docstring."""

    def __init__(
        self,
        destination: Destination,
        outcomes: Outcomes,
        ledger: AckLedger,
        *,
        policy: BackoffPolicy,
        breaker: CircuitBreaker,
        max_in_flight: int,
        gate: StepGate | None = None,
        rand: Callable[[], float] = random.random,
        clock: Clock = time.monotonic,
    ) -> None:
        self._destination = destination
        self._outcomes = outcomes
        self._ledger = ledger
        self._policy = policy
        self._breaker = breaker
        self._slots = asyncio.Semaphore(max_in_flight)
        self._gate = gate
        self._rand = rand
        self._clock = clock
        self._trackers: dict[int, OffsetTracker] = {}
        self._queues: dict[Slot, deque[Work]] = {}
        self._tasks: dict[Slot, asyncio.Task[None]] = {}
        self._parked: dict[Slot, list[_Parked]] = {}
        self._refused: dict[Slot, str] = {}
        """Dossiers whose header the portal refused (and that it holds nothing of): why."""
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping: set[int] = set()
        self._failure: BaseException | None = None

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def backlog(self) -> int:
        """Records fetched and not finished yet (parked steps included)."""
        return sum(len(t) for t in self._trackers.values())

    @property
    def parked(self) -> int:
        """Steps waiting for their dossier's header."""
        return sum(len(p) for p in self._parked.values())

    def backlog_of(self, partition: int) -> int:
        tracker = self._trackers.get(partition)
        return len(tracker) if tracker else 0

    def raise_if_failed(self) -> None:
        """Re-raise what crashed a delivery task (a broker failure while recording an outcome)."""
        if self._failure is not None:
            raise self._failure

    def submit(self, work: Work) -> None:
        tracker = self._trackers.get(work.partition)
        if tracker is None:
            tracker = self._trackers[work.partition] = OffsetTracker()
            self._stopping.discard(work.partition)
        tracker.add(work.offset)
        slot = (work.partition, work.key)
        queue = self._queues.get(slot)
        if queue is None:
            queue = self._queues[slot] = deque()
        queue.append(work)
        if slot not in self._tasks:
            self._start(slot, queue)

    def _start(self, slot: Slot, queue: deque[Work]) -> None:
        task = asyncio.create_task(self._drain(slot, queue), name=f"deliver-{slot[0]}")
        self._tasks[slot] = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    def committable(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        """Offsets that may be committed now, per partition that finished anything."""
        wanted = self._trackers.keys() if partitions is None else partitions
        offsets: dict[int, int] = {}
        for partition in wanted:
            tracker = self._trackers.get(partition)
            if tracker is not None and tracker.committable is not None:
                offsets[partition] = tracker.committable
        return offsets

    async def release(self, partitions: Iterable[int], *, drain_seconds: float) -> dict[int, int]:
        """Stop working on `partitions` (revoked, or shutting down) and say what may be committed.

        Records being sent may finish within `drain_seconds`; queued and parked ones are left to
        whoever owns the partition next, which starts again from the committed offset. The
        ledger is the caller's to drop.
        """
        released = set(partitions)
        self._stopping |= released
        tasks = [t for (p, _), t in self._tasks.items() if p in released]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        offsets = self.committable(released)
        for partition in released:
            self._trackers.pop(partition, None)
        for held in (self._queues, self._parked, self._refused):
            for slot in [s for s in held if s[0] in released]:
                del held[slot]
        return offsets

    def _finish(self, work: Work) -> None:
        tracker = self._trackers.get(work.partition)
        if tracker is not None:
            tracker.done(work.offset)

    async def _drain(self, slot: Slot, queue: deque[Work]) -> None:
        try:
            if slot in self._parked:
                await self._expire(slot, queue)
            while queue and slot[0] not in self._stopping:
                work = queue[0]
                finished = await self._process(work)
                queue.popleft()
                if finished:
                    self._finish(work)
        finally:
            self._tasks.pop(slot, None)
            if not queue or slot[0] in self._stopping:
                self._queues.pop(slot, None)

    async def _process(self, work: Work) -> bool:
        """Deliver `work`; False if it was parked (it is finished later, or by someone else)."""
        if work.error is not None or work.record is None:
            undecodable = work.error or PermanentError("record could not be decoded")
            await self._outcomes.dead_lettered(work, undecodable)
            return True
        record = work.record
        slot = (work.partition, record.dossier_code)
        before = self._ledger.get(work.partition, record.dossier_code)
        if work.foreign or (
            before is not None
            and record.revision <= before.revision
            and (work.resend_upto is None or before.revision > work.resend_upto)
        ):
            self._outcomes.skipped(work)
            return True
        gated = self._gate is not None and not (before is not None and before.header)
        if gated and record.kind is RecordKind.PROGRESS:
            refused = self._refused.get(slot)
            if refused is not None:
                await self._outcomes.dead_lettered(
                    work, HeaderRefusedError("the portal refused this dossier", answer=refused)
                )
                return True
            if slot in self._parked or not await self._holds(work, record):
                self._park(slot, work)
                return False
        async with self._slots:
            error = await self._deliver(
                work, record, known=before is not None or record.revision > 1
            )
        if error is not None:
            await self._outcomes.dead_lettered(work, error)
            if gated and record.kind is RecordKind.DOSSIER:
                await self._refuse(slot, _reason(error))
            return True
        # A header accepted (or a step of a dossier the portal said it holds): it holds it now.
        after = advance(before, record, header=self._gate is not None)
        released: list[Work] = []
        if gated and record.kind is RecordKind.DOSSIER:
            self._refused.pop(slot, None)
            after = await self._release_parked(slot, after, released)
        # Durable before the next revision of this dossier is sent: after a crash the stored
        # revision is never older than one the destination has seen acknowledged. Written after
        # the released steps, which are older: were it written first, a crash would skip them.
        self._ledger.put(work.partition, record.dossier_code, after)
        await self._outcomes.acknowledged(work, before, after, released=released)
        for step in released:
            self._finish(step)
        return True

    async def _holds(self, work: Work, record: DossierRecord) -> bool:
        """Ask the destination whether it holds the dossier; a refused question means no."""
        assert self._gate is not None  # noqa: S101 - only asked with a gate
        gate = self._gate
        held = False

        async def ask() -> None:
            nonlocal held
            held = await gate.holds(record)

        async with self._slots:
            error = await self._attempt(work, ask)
        return held and error is None

    def _park(self, slot: Slot, work: Work) -> None:
        assert self._gate is not None  # noqa: S101 - only parked with a gate
        deadline = self._clock() + self._gate.wait_seconds
        self._parked.setdefault(slot, []).append(_Parked(work, deadline))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="parked-steps")
            self._sweeper.add_done_callback(self._task_done)

    async def _refuse(self, slot: Slot, reason: str) -> None:
        """The dossier's header was refused: its parked steps go to the dead letters with it."""
        self._refused[slot] = reason
        for parked in self._parked.pop(slot, []):
            await self._outcomes.dead_lettered(
                parked.work, HeaderRefusedError("the portal refused this dossier", answer=reason)
            )
            self._finish(parked.work)

    async def _release_parked(self, slot: Slot, after: AckState, released: list[Work]) -> AckState:
        """Send the steps that waited for the header just accepted, oldest first."""
        for parked in self._parked.pop(slot, []):
            step = parked.work
            assert step.record is not None  # noqa: S101 - only decoded records are parked
            async with self._slots:
                error = await self._deliver(step, step.record, known=True)
            if error is not None:
                await self._outcomes.dead_lettered(step, error)
                self._finish(step)
                continue
            after = advance(after, step.record, header=True)
            released.append(step)
        return after

    async def _expire(self, slot: Slot, queue: deque[Work]) -> None:
        """Dead-letter the steps parked too long, unless a header of theirs is on its way."""
        assert self._gate is not None  # noqa: S101 - only parked with a gate
        if any(w.record is not None and w.record.kind is RecordKind.DOSSIER for w in queue):
            return
        now = self._clock()
        waiting = self._parked.get(slot, [])
        while waiting and waiting[0].deadline <= now:
            parked = waiting.pop(0)
            await self._outcomes.dead_lettered(
                parked.work,
                HeaderMissingError(
                    f"no header of this dossier was accepted by the portal within"
                    f" {self._gate.wait_seconds:g} s"
                ),
            )
            self._finish(parked.work)
        if not waiting:
            self._parked.pop(slot, None)

    async def _sweep(self) -> None:
        """While steps are parked, hand each dossier whose wait ran out to its own slot."""
        while self._parked:
            now = self._clock()
            earliest = min(p[0].deadline for p in self._parked.values())
            if earliest > now:
                await asyncio.sleep(min(earliest - now, 0.5))
                continue
            for slot, waiting in list(self._parked.items()):
                if waiting[0].deadline <= now and slot not in self._tasks:
                    if slot[0] in self._stopping:
                        continue
                    queue = self._queues.get(slot)
                    if queue is None:
                        queue = self._queues[slot] = deque()
                    self._start(slot, queue)
            await asyncio.sleep(0.05)

    async def _deliver(
        self, work: Work, record: DossierRecord, *, known: bool
    ) -> PermanentError | None:
        return await self._attempt(work, lambda: self._destination.send(record, known=known))

    async def _attempt(
        self, work: Work, call: Callable[[], Awaitable[None]]
    ) -> PermanentError | None:
        """`call` until it succeeds or fails for good (its error); transient failures wait."""
        attempt = 0
        while True:
            wait = self._breaker.acquire()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                await call()
            except PermanentError as exc:
                self._breaker.success()  # the destination answered: it is up
                return exc
            except TransientError as exc:
                if _trips_breaker(exc):
                    self._breaker.failure()
                else:
                    self._breaker.abandon()
                delay = self._policy.delay(attempt, self._rand(), exc.retry_after)
                self._outcomes.attempt_failed(work, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
            except BaseException:
                self._breaker.abandon()
                raise
            else:
                self._breaker.success()
                return None

    async def close(self, *, drain_seconds: float) -> dict[int, int]:
        """Release every partition; the caller commits what is returned."""
        offsets = await self.release(list(self._trackers), drain_seconds=drain_seconds)
        tasks = list(self._tasks.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        return offsets
