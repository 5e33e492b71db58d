"""Delivery rules without Kafka or HTTP: per-dossier order, concurrency, retries, commit watermarks.

The consumer hands every fetched record to a `Dispatcher` as a `Work` item. Records of one dossier
run one after another in offset (= revision) order; different dossiers run concurrently up to
`max_in_flight`. A record ends in exactly one outcome: acknowledged, dead-lettered or skipped as
stale. Transient failures are retried forever with exponential backoff and full jitter (or the
destination's `Retry-After`), paced by a circuit breaker; the consumer pauses fetching meanwhile,
so an outage becomes back-pressure rather than a pile of dead letters. Each partition's
`OffsetTracker` says how far the offsets may be committed: up to the first record not finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from schemas.dossier import DossierRecord
from services.sync.errors import (
    AuthenticationError,
    DestinationUnavailableError,
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


# --- acknowledged revisions ------------------------------------------------------------------


class AckLedger:
    """The latest revision each destination acknowledged, per partition and dossier."""

    def __init__(self) -> None:
        self._acked: dict[int, dict[str, int]] = {}

    def load(self, partition: int, revisions: dict[str, int]) -> None:
        self._acked[partition] = revisions

    def drop(self, partition: int) -> None:
        self._acked.pop(partition, None)

    def get(self, partition: int, code: str) -> int | None:
        return self._acked.get(partition, {}).get(code)

    def set(self, partition: int, code: str, revision: int) -> None:
        known = self._acked.setdefault(partition, {})
        known[code] = max(revision, known.get(code, 0))


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


class Destination(Protocol):
    """Sends one record to a destination; raises `TransientError` or `PermanentError`."""

    async def send(self, record: DossierRecord, *, known: bool) -> None: ...


class Outcomes(Protocol):
    """What happens once a record's fate is known; each must be durable when it returns."""

    async def acknowledged(self, work: Work, *, first: bool) -> None: ...

    async def dead_lettered(self, work: Work, error: PermanentError) -> None: ...

    def skipped(self, work: Work) -> None: ...

    def attempt_failed(self, work: Work, error: TransientError, delay: float) -> None: ...


def _trips_breaker(error: TransientError) -> bool:
    # 429 is pacing, not an outage; its Retry-After already spaces the retries.
    if isinstance(error, RateLimitedError):
        return False
    return isinstance(error, DestinationUnavailableError | AuthenticationError)


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
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._destination = destination
        self._outcomes = outcomes
        self._ledger = ledger
        self._policy = policy
        self._breaker = breaker
        self._slots = asyncio.Semaphore(max_in_flight)
        self._rand = rand
        self._trackers: dict[int, OffsetTracker] = {}
        self._queues: dict[tuple[int, str], deque[Work]] = {}
        self._tasks: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._stopping: set[int] = set()
        self._failure: BaseException | None = None

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def backlog(self) -> int:
        """Records fetched and not finished yet."""
        return sum(len(t) for t in self._trackers.values())

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
            task = asyncio.create_task(self._drain(slot, queue), name=f"deliver-{work.partition}")
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

        Records being sent may finish within `drain_seconds`; queued ones are left to whoever
        owns the partition next, which starts again from the committed offset.
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
            self._ledger.drop(partition)
        for slot in [s for s in self._queues if s[0] in released]:
            del self._queues[slot]
        return offsets

    async def _drain(self, slot: tuple[int, str], queue: deque[Work]) -> None:
        try:
            while queue and slot[0] not in self._stopping:
                work = queue[0]
                await self._process(work)
                queue.popleft()
                tracker = self._trackers.get(work.partition)
                if tracker is not None:
                    tracker.done(work.offset)
        finally:
            self._tasks.pop(slot, None)
            if not queue or slot[0] in self._stopping:
                self._queues.pop(slot, None)

    async def _process(self, work: Work) -> None:
        if work.error is not None or work.record is None:
            undecodable = work.error or PermanentError("record could not be decoded")
            await self._outcomes.dead_lettered(work, undecodable)
            return
        record = work.record
        acked = self._ledger.get(work.partition, record.dossier_code)
        if acked is not None and record.revision <= acked:
            self._outcomes.skipped(work)
            return
        async with self._slots:
            error = await self._deliver(
                work, record, known=acked is not None or record.revision > 1
            )
        if error is not None:
            await self._outcomes.dead_lettered(work, error)
            return
        # Durable before the next revision of this dossier is sent: after a crash the stored
        # revision is never older than one the destination has seen acknowledged.
        self._ledger.set(work.partition, record.dossier_code, record.revision)
        await self._outcomes.acknowledged(work, first=acked is None)

    async def _deliver(
        self, work: Work, record: DossierRecord, *, known: bool
    ) -> PermanentError | None:
        attempt = 0
        while True:
            wait = self._breaker.acquire()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                await self._destination.send(record, known=known)
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
        for task in list(self._tasks.values()):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        return offsets
