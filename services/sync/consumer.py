"""The Kafka side of a sync worker: fetching, back-pressure, acknowledged state, commits.

What each destination holds of each dossier lives in a compacted topic per destination
(`govsync.sync.<target>.acked.v1`, values `schemas.facts.SyncAck`), keyed by dossier code and
co-partitioned with the normalised topic: partition p of one holds the dossiers of partition p of
the other. On assignment the worker writes a marker to each of its acked partitions and reads the
partition from the start up to that marker, which is exact whatever the broker reports as end
offsets. Offsets are committed only up to the last record finished (acknowledged, dead-lettered
or skipped), periodically, on revocation and at shutdown. The portal worker's synced gauge is
derived from that state: restored with it, moved with each acknowledgement, dropped with a
partition, so it is exact across restarts and rebalances.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError

from schemas.dossier import DossierRecord
from schemas.facts import SyncAck
from services.common import topics
from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.logging import get_logger
from services.sync.acked import AckLedger, AckState
from services.sync.delivery import (
    BackoffPolicy,
    CircuitBreaker,
    CircuitState,
    Destination,
    Dispatcher,
    StepGate,
    Work,
)
from services.sync.errors import PermanentError, TransientError, UndecodableRecordError
from services.sync.metrics import SyncMetrics
from services.sync.settings import SyncSettings, Target

log = get_logger(__name__)

MARKER_KEY = b"\x00govsync-restore-marker"
RESTORE_TIMEOUT_SECONDS = 60.0


class AckStore:
    """Reads and writes the compacted topic of what a destination holds."""

    def __init__(self, producer: AIOKafkaProducer, reader: AIOKafkaConsumer, topic: str) -> None:
        self._producer = producer
        self._reader = reader
        self._topic = topic

    async def write(self, partition: int, code: str, state: AckState) -> None:
        value = state.to_ack(datetime.now(UTC)).model_dump_json(exclude_none=True).encode()
        await self._producer.send_and_wait(
            self._topic, key=code.encode(), value=value, partition=partition
        )

    async def restore(self, partitions: Iterable[int]) -> dict[int, dict[str, AckState]]:
        """Every partition's state per dossier, read up to a marker written just now."""
        wanted = sorted(set(partitions))
        restored: dict[int, dict[str, AckState]] = {p: {} for p in wanted}
        if not wanted:
            return restored
        markers: dict[int, bytes] = {}
        for partition in wanted:
            marker = uuid.uuid4().hex.encode()
            await self._producer.send_and_wait(
                self._topic, key=MARKER_KEY, value=marker, partition=partition
            )
            markers[partition] = marker
        tps = [TopicPartition(self._topic, p) for p in wanted]
        self._reader.assign(tps)
        await self._reader.seek_to_beginning(*tps)
        waiting = set(wanted)
        async with asyncio.timeout(RESTORE_TIMEOUT_SECONDS):
            while waiting:
                batches = await self._reader.getmany(*tps, timeout_ms=200)
                for tp, messages in batches.items():
                    known = restored[tp.partition]
                    for message in messages:
                        if message.key == MARKER_KEY:
                            if message.value == markers[tp.partition]:
                                waiting.discard(tp.partition)
                            continue
                        if message.key is None or message.value is None:
                            continue
                        state = AckState.of(SyncAck.model_validate_json(message.value))
                        code = message.key.decode()
                        # Writes only move forward; a lower revision is an older owner's.
                        earlier = known.get(code)
                        if earlier is None or state.revision >= earlier.revision:
                            known[code] = state
        self._reader.assign([])
        return restored


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: SyncWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._worker.partitions_assigned(assigned)


class SyncWorker:
    """Consumes the normalised topic for one destination and delivers with a `Dispatcher`."""

    def __init__(
        self,
        settings: SyncSettings,
        target: Target,
        destination: Destination,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        acked_reader: AIOKafkaConsumer,
        metrics: SyncMetrics,
        holds: Callable[[DossierRecord], Awaitable[bool]] | None = None,
    ) -> None:
        """`holds` (the portal's `TraCuuHoSo`) turns the step gate on: see `delivery.py`."""
        self._settings = settings
        self._target = target
        self._topic = settings.topic_dossier_normalized
        self._consumer = consumer
        self._metrics = metrics
        self._acks = AckStore(producer, acked_reader, settings.acked_topic(target))
        self._dead_letters = DeadLetterWriter(producer, settings.topic_dlq)
        self._ledger = AckLedger()
        delivery = settings.delivery
        self.dispatcher = Dispatcher(
            destination,
            self,
            self._ledger,
            policy=BackoffPolicy(
                delivery.backoff_initial_seconds,
                delivery.backoff_max_seconds,
                delivery.retry_after_max_seconds,
            ),
            breaker=CircuitBreaker(
                delivery.breaker_failure_threshold, delivery.breaker_reset_seconds
            ),
            max_in_flight=delivery.max_in_flight,
            gate=None if holds is None else StepGate(delivery.step_wait_seconds, holds),
        )
        self._assigned: set[int] = set()
        self._last_offset: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._paused = False
        self.fetching = False

    # --- readiness -------------------------------------------------------------------------

    @property
    def assigned(self) -> frozenset[int]:
        return frozenset(self._assigned)

    # --- Outcomes (called by the dispatcher) -----------------------------------------------

    async def acknowledged(
        self,
        work: Work,
        before: AckState | None,
        after: AckState,
        *,
        released: Sequence[Work] = (),
    ) -> None:
        record = work.record
        assert record is not None  # noqa: S101 - only decoded records are acknowledged
        await self._acks.write(work.partition, record.dossier_code, after)
        now = datetime.now(UTC)
        for done in (*released, work):
            assert done.record is not None  # noqa: S101 - as above
            self._metrics.record("acknowledged")
            age = (now - done.record.event_time).total_seconds()
            self._metrics.latency.labels(self._target.value).observe(max(age, 0.0))
        if self._target is Target.PORTAL:
            self._metrics.synced_moved(before, after)

    async def dead_lettered(self, work: Work, error: PermanentError) -> None:
        message = work.origin
        record = work.record
        reason = f"{error}: {error.answer}" if error.answer else str(error)
        letter = DeadLetter(
            origin=_origin(message, self._topic, work),
            reason=reason,
            stage=f"sync-{self._target.value}",
            error=type(error).__name__,
            service=f"govsync-sync-{self._target.value}",
            at=datetime.now(UTC),
            source=record.source if record is not None else None,
        )
        await self._dead_letters.write(letter)
        self._metrics.record("dead_lettered")
        log.warning(
            "record dead-lettered",
            target=self._target.value,
            partition=work.partition,
            offset=work.offset,
            error=type(error).__name__,
        )

    def skipped(self, work: Work) -> None:
        self._metrics.record("skipped_stale")

    def attempt_failed(self, work: Work, error: TransientError, delay: float) -> None:
        self._metrics.retries.labels(self._target.value).inc()
        log.info(
            "delivery will be retried",
            target=self._target.value,
            partition=work.partition,
            offset=work.offset,
            error=type(error).__name__,
            delay=round(delay, 3),
        )

    # --- rebalancing -----------------------------------------------------------------------

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        partitions = {tp.partition for tp in assigned if tp.topic == self._topic}
        # Nothing of these partitions may be delivered before their acknowledged revisions are
        # known; the fetcher runs meanwhile, so hold them (and `_submit` rewinds any stragglers).
        if assigned:
            self._consumer.pause(*assigned)
        restored = await self._acks.restore(partitions)
        for partition, states in restored.items():
            self._forget(partition)  # assigned again without a revocation in between
            self._ledger.load(partition, states)
            if self._target is Target.PORTAL:
                self._metrics.synced_restored(states.values())
            self._last_offset.pop(partition, None)
        self._assigned |= partitions
        if assigned and not self._paused:
            self._consumer.resume(*assigned)
        log.info("partitions assigned", target=self._target.value, partitions=sorted(partitions))

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked if tp.topic == self._topic}
        self._assigned -= partitions
        offsets = await self.dispatcher.release(
            partitions, drain_seconds=self._settings.delivery.revoke_drain_seconds
        )
        await self._commit(offsets)
        for partition in partitions:
            self._last_offset.pop(partition, None)
            self._forget(partition)
            self._metrics.consumer_lag.labels(self._target.value, str(partition)).set(0)
        log.info("partitions revoked", target=self._target.value, partitions=sorted(partitions))

    def _forget(self, partition: int) -> None:
        dropped = self._ledger.drop(partition)
        if self._target is Target.PORTAL:
            self._metrics.synced_dropped(dropped.values())

    # --- the loop --------------------------------------------------------------------------

    def subscribe(self) -> None:
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and dispatch until `stop`; then finish in-flight records and commit."""
        self.subscribe()
        interval = self._settings.delivery.commit_interval_seconds
        next_commit = time.monotonic() + interval
        try:
            while not stop.is_set():
                self.dispatcher.raise_if_failed()
                self._apply_backpressure()
                # Never fetch past `max_buffered` unfinished records: the pause comes too late
                # for a batch that would overshoot it.
                room = self._settings.delivery.max_buffered - self.dispatcher.backlog
                batches = await self._consumer.getmany(timeout_ms=200, max_records=max(room, 1))
                self.fetching = True
                rewound: set[int] = set()
                for tp, messages in batches.items():
                    for message in messages:
                        self._submit(tp, message, rewound)
                if time.monotonic() >= next_commit:
                    await self._commit(self.dispatcher.committable(self._assigned))
                    next_commit = time.monotonic() + interval
                self._observe()
        finally:
            offsets = await self.dispatcher.close(
                drain_seconds=self._settings.delivery.revoke_drain_seconds
            )
            with contextlib.suppress(KafkaError):
                await self._commit({p: o for p, o in offsets.items() if p in self._assigned})
        self.dispatcher.raise_if_failed()

    def _submit(self, tp: TopicPartition, message: Any, rewound: set[int]) -> None:
        partition = tp.partition
        if partition not in self._assigned:
            if partition not in rewound:
                rewound.add(partition)
                # Fetched while its assignment was being prepared: read it again later. If it
                # was revoked instead, its new owner reads it from the committed offset.
                with contextlib.suppress(IllegalStateError, AssertionError):
                    self._consumer.seek(tp, message.offset)
            return
        last = self._last_offset.get(partition)
        if last is not None and message.offset <= last:
            return
        self._last_offset[partition] = message.offset
        key = message.key.decode(errors="replace") if message.key else f"@{message.offset}"
        try:
            record = DossierRecord.model_validate_json(message.value or b"")
        except ValidationError as exc:
            error = UndecodableRecordError(
                "not a DossierRecord",
                answer="; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:10]
                ),
            )
            self.dispatcher.submit(Work(partition, message.offset, key, None, error, message))
            return
        # Order per dossier code; the key is normally the same, but the record is what counts.
        work = Work(partition, message.offset, record.dossier_code, record, None, message)
        resent_for, upto = _resend(message.headers)
        if resent_for is not None:
            work.foreign = resent_for != self._target.value
            work.resend_upto = upto if not work.foreign else None
        self.dispatcher.submit(work)

    def _apply_backpressure(self) -> None:
        delivery = self._settings.delivery
        backlog = self.dispatcher.backlog
        circuit = self.dispatcher.breaker.state
        should_pause = backlog >= delivery.max_buffered or circuit is CircuitState.OPEN
        should_resume = backlog <= delivery.max_buffered // 2 and circuit is not CircuitState.OPEN
        assignment = self._consumer.assignment()
        if should_pause and not self._paused:
            self._consumer.pause(*assignment)
            self._paused = True
            log.info("fetching paused", target=self._target.value, backlog=backlog)
        elif self._paused and should_resume:
            self._consumer.resume(*assignment)
            self._paused = False
            log.info("fetching resumed", target=self._target.value, backlog=backlog)

    async def _commit(self, offsets: dict[int, int]) -> None:
        fresh = {p: o for p, o in offsets.items() if self._committed.get(p) != o}
        if not fresh:
            return
        try:
            await self._consumer.commit(
                {TopicPartition(self._topic, p): o for p, o in fresh.items()}
            )
        except CommitFailedError:
            # A rebalance is under way; the next owner starts from the last commit: at least once.
            log.info("commit skipped during a rebalance", target=self._target.value)
            return
        self._committed.update(fresh)

    def _observe(self) -> None:
        target = self._target.value
        self._metrics.backlog.labels(target).set(self.dispatcher.backlog)
        self._metrics.circuit_state.labels(target).set(int(self.dispatcher.breaker.state))
        self._metrics.paused.labels(target).set(1 if self._paused else 0)
        self._metrics.parked.labels(target).set(self.dispatcher.parked)
        for partition in self._assigned:
            tp = TopicPartition(self._topic, partition)
            highwater = self._consumer.highwater(tp)
            position = self._last_offset.get(partition)
            if highwater is None:
                continue
            fetched = position + 1 if position is not None else self._committed.get(partition, 0)
            self._metrics.consumer_lag.labels(target, str(partition)).set(
                max(highwater - fetched, 0) + self.dispatcher.backlog_of(partition)
            )


def _resend(headers: Sequence[tuple[str, bytes]] | None) -> tuple[str | None, int | None]:
    """The target a re-sent copy is for and its `upto` revision (None, None: not a copy)."""
    found = dict(headers or ())
    target = found.get(topics.RESEND_HEADER)
    if target is None:
        return None, None
    upto = found.get(topics.RESEND_UPTO_HEADER, b"")
    return target.decode(errors="replace"), int(upto) if upto.isdigit() else 0


def _origin(message: object, topic: str, work: Work) -> Origin:
    key = getattr(message, "key", None)
    value = getattr(message, "value", None)
    headers = getattr(message, "headers", ()) or ()
    return Origin(
        topic=getattr(message, "topic", topic),
        partition=work.partition,
        offset=work.offset,
        key=key,
        value=value,
        headers=list(headers),
    )
