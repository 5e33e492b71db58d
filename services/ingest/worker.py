"""The ingest worker: consumes source topics, publishes normalised records, keeps dossier state.

At least once: a batch's normalised records, state updates and dead letters are all
acknowledged by the broker before its offsets are committed. While one batch waits for those
acknowledgements the next is already being decided, so the CPU work overlaps the round trips;
a batch's completion starts only once the previous one has ended, so commits stay in order.
Dossier state lives in a compacted topic written to the same partition number as the input
record, so the replica that owns an input partition restores exactly the state it needs when
the partition is assigned.

Every record ends in exactly one outcome, decided by `handling.EventHandler`, which raises for
nothing a record can carry: a poison pill is that record's dead letter. Only the broker calls
made here (send, commit, fetch) can end the loop, and then the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.kafka import broker_reachable
from services.common.logging import get_logger
from services.ingest.dossiers.decide import Policy, evictable
from services.ingest.dossiers.state import DossierState
from services.ingest.handling import EventHandler, Handled, Refusal
from services.ingest.metrics import IngestMetrics
from services.ingest.outcome import Outcome

log = get_logger(__name__)
Clock = Callable[[], datetime]
SERVICE = "ingest"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WorkerTopics:
    dossier: str
    dossier_output: str
    state: str
    """Compacted; partition N holds the state of the dossiers of `dossier` partition N."""
    edocument: str
    edocument_output: str


class StateStore:
    """Dossier states of the assigned partitions, one map per partition number."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[str, DossierState]] = {}

    def __len__(self) -> int:
        return sum(len(states) for states in self.partitions.values())

    def partition(self, number: int) -> dict[str, DossierState]:
        return self.partitions.setdefault(number, {})


class IngestWorker:
    """Owns the consume-process-publish-commit loop and the state of its partitions."""

    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        restorer: AIOKafkaConsumer,
        dead_letters: DeadLetterWriter,
        handler: EventHandler,
        metrics: IngestMetrics,
        topics: WorkerTopics,
        policy: Policy,
        max_batch: int,
        clock: Clock = utc_now,
        eviction_interval_seconds: float = 60.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._restorer = restorer
        self._dead_letters = dead_letters
        self._handler = handler
        self._metrics = metrics
        self._topics = topics
        self._policy = policy
        self._max_batch = max_batch
        self._clock = clock
        self._eviction_interval = eviction_interval_seconds
        self._states = StateStore()
        self._lock = asyncio.Lock()
        self._completing: asyncio.Task[None] | None = None
        """The previous batch's acknowledgements, state writes and commit, still under way."""
        self._failure: Exception | None = None
        """A completion that failed where it could not end the loop (a rebalance callback)."""
        self._restored = False
        self._last_eviction = time.monotonic()

    # --- readiness ------------------------------------------------------------------------

    @property
    def assigned(self) -> bool:
        return bool(self._consumer.assignment())

    @property
    def restored(self) -> bool:
        return self._restored

    @property
    def states(self) -> StateStore:
        return self._states

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "broker": await broker_reachable(self._producer),
            "partitions_assigned": self.assigned,
            "state_restored": self.restored,
        }
        self._metrics.ready.set(1 if all(checks.values()) else 0)
        return checks

    # --- rebalancing ----------------------------------------------------------------------

    def listener(self) -> ConsumerRebalanceListener:
        worker = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
                # The batch in progress finishes and commits before the partitions move.
                async with worker._lock:
                    await worker._settle()
                    for tp in revoked:
                        if tp.topic == worker._topics.dossier:
                            worker._states.partitions.pop(tp.partition, None)
                    worker._restored = False
                    worker._metrics.dossiers_in_memory.set(len(worker._states))

            async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
                async with worker._lock:
                    dossier = worker._topics.dossier
                    await worker._restore({tp.partition for tp in assigned if tp.topic == dossier})

        return _Listener()

    async def _restore(self, partitions: set[int]) -> None:
        """Read each assigned partition's state from the compacted topic, oldest first."""
        started = time.monotonic()
        wanted = [TopicPartition(self._topics.state, p) for p in sorted(partitions)]
        for p in partitions:
            self._states.partitions[p] = {}
        if wanted:
            self._restorer.assign(wanted)
            await self._restorer.seek_to_beginning(*wanted)
            ends = await self._restorer.end_offsets(wanted)
            pending = {tp for tp in wanted if ends[tp] > 0}
            while pending:
                batch = await self._restorer.getmany(*pending, timeout_ms=1000)
                for tp, records in batch.items():
                    states = self._states.partitions[tp.partition]
                    for record in records:
                        key = record.key.decode() if record.key else None
                        if key is None:
                            continue
                        if record.value is None:
                            states.pop(key, None)
                        else:
                            states[key] = DossierState.from_bytes(record.value)
                for tp in list(pending):
                    if await self._restorer.position(tp) >= ends[tp]:
                        pending.discard(tp)
        self._restored = True
        self._metrics.dossiers_in_memory.set(len(self._states))
        log.info(
            "state restored",
            partitions=sorted(partitions),
            dossiers=len(self._states),
            seconds=round(time.monotonic() - started, 3),
        )

    # --- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; a broker failure escapes and takes the process down."""
        try:
            while not stop.is_set():
                if self._failure is not None:
                    raise self._failure
                batch = await self._consumer.getmany(timeout_ms=500, max_records=self._max_batch)
                if batch:
                    async with self._lock:
                        await self._process(batch)
                elif self._completing is not None and self._completing.done():
                    await self._settle()  # surfaces a failed completion while the topic is idle
                if time.monotonic() - self._last_eviction >= self._eviction_interval:
                    async with self._lock:
                        await self._settle()
                        await self.evict()
        finally:
            await self._settle()

    async def _settle(self) -> None:
        """Wait for the batch under way to be acknowledged and committed; re-raise its failure."""
        completing, self._completing = self._completing, None
        if completing is not None:
            try:
                await completing
            except Exception as exc:
                self._failure = self._failure or exc
                raise

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Decide a batch and queue its outputs; its completion runs while the next is decided."""
        started = time.monotonic()
        pending: list[Awaitable[Any]] = []
        state_updates: dict[tuple[int, str], DossierState] = {}
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            if tp not in self._consumer.assignment():
                continue  # revoked while the batch was in flight; its new owner reads it
            states = self._states.partition(tp.partition)
            for record in records:
                pending.extend(await self._one(tp, record, states, state_updates))
            offsets[tp] = records[-1].offset + 1
        # The previous batch, whose round trips overlapped this one's decisions, ends first: one
        # batch under way at a time keeps commits in order and bounds what is held in memory.
        await self._settle()
        self._completing = asyncio.create_task(
            self._complete(pending, state_updates, offsets, started)
        )

    async def _complete(
        self,
        pending: list[Awaitable[Any]],
        state_updates: dict[tuple[int, str], DossierState],
        offsets: dict[TopicPartition, int],
        started: float,
    ) -> None:
        """Outputs first, then the state that says they were written, then the offsets.

        State ahead of its output would make a replay after a crash drop the output as a
        duplicate.
        """
        await asyncio.gather(*pending)
        await asyncio.gather(
            *[
                await self._producer.send(
                    self._topics.state,
                    value=state.to_bytes(),
                    key=code.encode(),
                    partition=partition,
                )
                for (partition, code), state in state_updates.items()
            ]
        )
        if offsets:
            await self._consumer.commit(offsets)
        for tp in offsets:
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - offsets[tp])
                )
        self._metrics.dossiers_in_memory.set(len(self._states))
        self._metrics.batch_seconds.observe(time.monotonic() - started)

    async def _one(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
        states: dict[str, DossierState],
        state_updates: dict[tuple[int, str], DossierState],
    ) -> list[Awaitable[Any]]:
        """One record's outcome, then its writes; only the broker calls here may raise."""
        started = time.perf_counter()
        headers = list(record.headers or ())
        handled = await self._handler.handle(
            tp.topic, record.value, headers, states=states, now=self._clock()
        )
        self._finish(handled.event_type, handled.outcome, started)
        if handled.refusal is not None:
            return [await self._dead_letter(tp, record, headers, handled.refusal)]
        if handled.state is not None:
            code, state = handled.state
            states[code] = state
            # Only a dossier's last state in the batch is written (and serialised).
            state_updates[(tp.partition, code)] = state
        self._count(handled)
        output = handled.output
        if output is None:
            return []  # a duplicate or a stale event: nothing to write
        return [
            await self._producer.send(
                output.topic, value=output.value, key=output.key, headers=list(output.headers)
            )
        ]

    def _count(self, handled: Handled) -> None:
        """Counters must never cost an accepted event: a failure is logged, not raised."""
        try:
            if handled.indicators is not None:
                self._metrics.count(handled.indicators)
            if handled.counted is not None:
                self._metrics.count_document(handled.counted)
            if handled.status is not None:
                self._metrics.count_document_status(*handled.status)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.error("event not counted", error=type(exc).__name__)

    def _finish(self, event_type: str, outcome: Outcome, started: float) -> None:
        self._metrics.processing.observe(time.perf_counter() - started)
        self._metrics.events.labels(event_type, outcome.value).inc()

    async def _dead_letter(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
        headers: list[tuple[str, bytes]],
        refusal: Refusal,
    ) -> Awaitable[Any]:
        letter = DeadLetter(
            origin=Origin(tp.topic, tp.partition, record.offset, record.key, record.value, headers),
            reason=refusal.reason,
            stage=refusal.stage,
            error=refusal.error_class,
            service=SERVICE,
            at=self._clock(),
            source=refusal.source,
        )
        log.warning(
            "event dead-lettered",
            topic=tp.topic,
            partition=tp.partition,
            offset=record.offset,
            stage=letter.stage,
            error=letter.error,
            reason=letter.reason,
        )
        return await self._dead_letters.send(letter)

    async def evict(self) -> int:
        """Forget finished dossiers past retention, here and in the state topic (tombstones)."""
        self._last_eviction = time.monotonic()
        now = self._clock()
        tombstones: list[Awaitable[Any]] = []
        for partition, states in self._states.partitions.items():
            gone = [
                code for code, s in states.items() if evictable(s, now=now, policy=self._policy)
            ]
            for code in gone:
                del states[code]
                tombstones.append(
                    await self._producer.send(
                        self._topics.state, value=None, key=code.encode(), partition=partition
                    )
                )
        await asyncio.gather(*tombstones)
        if tombstones:
            self._metrics.evicted.inc(len(tombstones))
            self._metrics.dossiers_in_memory.set(len(self._states))
            log.info("finished dossiers evicted", count=len(tombstones))
        return len(tombstones)
