"""The ingest worker: consumes source topics, publishes normalised records, keeps dossier state.

At least once: a batch's normalised records, state updates and dead letters are all
acknowledged by the broker before its offsets are committed. A batch's outputs are submitted
together once it is decided, one producer batch per partition (`PartitionBatches`). While one
batch waits for those acknowledgements the next is already being decided, so the CPU work
overlaps the round trips; a batch's completion starts only once the previous one has ended, so
commits stay in order.
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

from services.common.batches import PartitionBatches
from services.common.dates import to_ms
from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.indicators import counted_parts, parts_of
from services.common.kafka import PRODUCER_BATCH_BYTES, broker_reachable, read_to_end
from services.common.logging import get_logger
from services.ingest.dossiers.decide import Policy, evictable, expired
from services.ingest.dossiers.facts import facts_of
from services.ingest.dossiers.state import DossierState
from services.ingest.edocuments.ledger import CountsAs
from services.ingest.handling import EventHandler, Handled, Refusal
from services.ingest.metrics import IngestMetrics, entry_of
from services.ingest.outcome import Outcome
from services.ingest.tally import Key, Tally

log = get_logger(__name__)


async def read_compacted(
    consumer: AIOKafkaConsumer, topic: str, partitions: set[int]
) -> dict[int, dict[str, bytes]]:
    """The latest value of every key of `partitions` of a compacted topic (tombstones removed),
    read from the start to the end of the moment (`read_to_end`)."""
    found: dict[int, dict[str, bytes]] = {p: {} for p in partitions}
    wanted = [TopicPartition(topic, p) for p in sorted(partitions)]
    async for tp, records in read_to_end(consumer, wanted):
        values = found[tp.partition]
        for record in records:
            if record.key is None:
                continue
            key = record.key.decode()
            if record.value is None:
                values.pop(key, None)
            else:
                values[key] = record.value
    return found


Clock = Callable[[], datetime]
SERVICE = "ingest"
Writes = dict[tuple[str, int, str], bytes]
"""State to write once a batch's outputs are acknowledged: (topic, partition, key) to value."""


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
    edocument_ledger: str
    """Compacted; partition N holds the ledger entries made by `edocument` partition N."""


class StateStore:
    """Dossier states of the assigned partitions, packed (`DossierState.to_bytes`), one map per
    partition number: live dossiers and the archive entries of evicted ones side by side."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[str, bytes]] = {}
        self.archived: dict[int, int] = {}
        """Archive entries per partition."""

    def __len__(self) -> int:
        """Live dossiers held."""
        return sum(len(states) for states in self.partitions.values()) - self.archived_count

    @property
    def archived_count(self) -> int:
        return sum(self.archived.values())

    def partition(self, number: int) -> dict[str, bytes]:
        return self.partitions.setdefault(number, {})

    def drop(self, number: int) -> None:
        self.partitions.pop(number, None)
        self.archived.pop(number, None)


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
        self._outputs = PartitionBatches(producer, max_batch_bytes=PRODUCER_BATCH_BYTES)
        """The batch being decided's outputs, submitted together once it is."""
        self._tally = Tally()
        self._doc_tally = Tally()
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
                            worker._states.drop(tp.partition)
                            worker._publish(worker._tally.drop(tp.partition))
                        elif tp.topic == worker._topics.edocument:
                            worker._handler.ledger.drop(tp.partition)
                            worker._publish_documents(worker._doc_tally.drop(tp.partition))
                    worker._restored = False
                    worker._show_held()

            async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
                async with worker._lock:
                    topics = worker._topics
                    await worker._restore(
                        {tp.partition for tp in assigned if tp.topic == topics.dossier}
                    )
                    await worker._restore_ledger(
                        {tp.partition for tp in assigned if tp.topic == topics.edocument}
                    )
                    worker._restored = True

        return _Listener()

    async def _restore(self, partitions: set[int]) -> None:
        """Read each assigned partition's state from the compacted topic, oldest first; then
        count what its dossiers add to the exact figures."""
        started = time.monotonic()
        for p in partitions:
            self._states.drop(p)
            self._publish(self._tally.drop(p))
        restored = await read_compacted(self._restorer, self._topics.state, partitions)
        now_ms = to_ms(self._clock())
        for p in partitions:
            states = self._states.partition(p)
            archived = 0
            for code, value in restored.get(p, {}).items():
                state = DossierState.from_bytes(value)
                if not state.touched_ms:  # written by a version that kept no time of its own
                    state.touched_ms = now_ms
                self._recount(p, None, state, restoring=True)
                states[code] = state.to_bytes()
                archived += state.archived
            self._states.archived[p] = archived
        self._publish(self._tally.keys())
        self._show_held()
        log.info(
            "state restored",
            partitions=sorted(partitions),
            dossiers=len(self._states),
            archived=self._states.archived_count,
            seconds=round(time.monotonic() - started, 3),
        )

    # --- the exact figures ----------------------------------------------------------------

    def _keys(self, state: DossierState) -> list[Key]:
        agency = self._metrics.agency(state.agency)
        return [(agency, *part) for part in parts_of(state.parts)]

    def _recount(
        self, partition: int, before: DossierState | None, after: DossierState, *, restoring: bool
    ) -> set[Key]:
        """Move one dossier's share of the figures from `before` to `after`; the series moved.

        On restore the share is recomputed from the facts (a rule may have changed since the
        state was written); `after.parts` then holds it.
        """
        if restoring:
            facts = facts_of(after, legal_time_limits_days=self._policy.legal_time_limits_days)
            after.parts = counted_parts(facts)
        if before is not None and (before.agency, before.parts) == (after.agency, after.parts):
            return set()  # most changes move nothing: the same series as before
        old = self._keys(before) if before is not None else []
        return self._tally.move(partition, old, self._keys(after))

    def _publish(self, keys: set[Key]) -> None:
        for key in keys:
            self._metrics.series(self._metrics.counted, *key).set(self._tally.total(key))

    def _doc_keys(self, counts_as: CountsAs | None) -> list[Key]:
        if counts_as is None:
            return []
        agency, direction, verdict = counts_as
        return [(self._metrics.agency(agency), direction.value, verdict.value)]

    def _publish_documents(self, keys: set[Key]) -> None:
        for key in keys:
            self._metrics.series(self._metrics.edocuments_counted, *key).set(
                self._doc_tally.total(key)
            )

    async def _restore_ledger(self, partitions: set[int]) -> None:
        """Read each assigned e-document partition's ledger entries from the compacted topic."""
        ledger = self._handler.ledger
        for p in partitions:
            ledger.drop(p)
            self._publish_documents(self._doc_tally.drop(p))
        restored = await read_compacted(self._restorer, self._topics.edocument_ledger, partitions)
        for p, values in restored.items():
            for entry in ledger.restore(p, values):
                self._doc_tally.add(p, self._doc_keys(entry.counts_as()))
        self._publish_documents(self._doc_tally.keys())
        log.info("e-document ledger restored", partitions=sorted(partitions), documents=len(ledger))

    def _show_held(self) -> None:
        self._metrics.dossiers_in_memory.set(len(self._states))
        self._metrics.dossiers_archived.set(self._states.archived_count)

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
        state_updates: Writes = {}
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            if tp not in self._consumer.assignment():
                continue  # revoked while the batch was in flight; its new owner reads it
            states = self._states.partition(tp.partition)
            for record in records:
                pending.extend(await self._one(tp, record, states, state_updates))
            offsets[tp] = records[-1].offset + 1
        pending.extend(await self._outputs.flush())
        # The previous batch, whose round trips overlapped this one's decisions, ends first: one
        # batch under way at a time keeps commits in order and bounds what is held in memory.
        await self._settle()
        self._completing = asyncio.create_task(
            self._complete(pending, state_updates, offsets, started)
        )

    async def _complete(
        self,
        pending: list[Awaitable[Any]],
        state_updates: Writes,
        offsets: dict[TopicPartition, int],
        started: float,
    ) -> None:
        """Outputs first, then the state that says they were written, then the offsets.

        State ahead of its output would make a replay after a crash drop the output as a
        duplicate.
        """
        await asyncio.gather(*pending)
        states = PartitionBatches(self._producer, max_batch_bytes=PRODUCER_BATCH_BYTES)
        for (topic, partition, key), value in state_updates.items():
            states.add(topic, value, key=key.encode(), partition=partition)
        await asyncio.gather(*await states.flush())
        if offsets:
            await self._consumer.commit(offsets)
        for tp in offsets:
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - offsets[tp])
                )
        self._show_held()
        self._metrics.batch_seconds.observe(time.monotonic() - started)

    async def _one(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
        states: dict[str, bytes],
        state_updates: Writes,
    ) -> list[Awaitable[Any]]:
        """One record's outcome, then its writes; only the broker calls here may raise."""
        started = time.perf_counter()
        headers = list(record.headers or ())
        handled = await self._handler.handle(
            tp.topic,
            record.value,
            headers,
            states=states,
            now=self._clock(),
            partition=tp.partition,
            timestamp_ms=record.timestamp,
        )
        self._finish(handled.event_type, handled.outcome, started, entry_of(headers))
        if handled.refusal is not None:
            return [await self._dead_letter(tp, record, headers, handled.refusal)]
        change = handled.state
        if change is not None:
            states[change.code] = change.packed
            # Only a dossier's last state in the batch is written.
            state_updates[(self._topics.state, tp.partition, change.code)] = change.packed
            if change.previous is not None and change.previous.archived:
                self._states.archived[tp.partition] -= 1  # it came back
        for entry in handled.ledger:
            state_updates[(self._topics.edocument_ledger, entry.partition, entry.document_id)] = (
                entry.value
            )
        self._count(tp.partition, handled)
        output = handled.output
        if output is not None:  # none for a duplicate or a stale event
            self._outputs.add(output.topic, output.value, key=output.key, headers=output.headers)
        return []

    def _count(self, partition: int, handled: Handled) -> None:
        """Counters and gauges must never cost an accepted event: a failure is logged, not
        raised."""
        try:
            change = handled.state
            if change is not None:
                self._publish(
                    self._recount(partition, change.previous, change.state, restoring=False)
                )
            moved: set[Key] = set()
            for entry in handled.ledger:
                moved |= self._doc_tally.move(
                    entry.partition, self._doc_keys(entry.before), self._doc_keys(entry.after)
                )
            self._publish_documents(moved)
            if handled.indicators is not None:
                self._metrics.count(handled.indicators)
            if handled.counted is not None:
                self._metrics.count_document(handled.counted)
            if handled.status is not None:
                self._metrics.count_document_status(*handled.status)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.error("event not counted", error=type(exc).__name__)

    def _finish(self, event_type: str, outcome: Outcome, started: float, entry: str) -> None:
        self._metrics.count_event(event_type, outcome, entry, time.perf_counter() - started)

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
        """Move dossiers that ended and stayed unchanged past the retention to the archive, and
        forget archive entries past theirs, here and in the state topic; the number evicted.

        An archive entry keeps what the dossier needs to come back as itself: its revision,
        watermarks, content digests and facts (so its counts stand and are not repeated).
        """
        self._last_eviction = time.monotonic()
        now = self._clock()
        writes: list[Awaitable[Any]] = []
        evicted = forgotten = 0
        changed: set[Key] = set()
        for partition, states in self._states.partitions.items():
            for code, packed in list(states.items()):
                value: bytes | None
                if evictable(packed, now=now, policy=self._policy):
                    state = DossierState.from_bytes(packed)
                    state.archived = True
                    value = states[code] = state.to_bytes()
                    self._states.archived[partition] = self._states.archived.get(partition, 0) + 1
                    evicted += 1
                elif expired(packed, now=now, policy=self._policy):
                    changed |= self._tally.move(
                        partition, self._keys(DossierState.from_bytes(packed)), []
                    )
                    del states[code]
                    self._states.archived[partition] -= 1
                    value = None
                    forgotten += 1
                else:
                    continue
                writes.append(
                    await self._producer.send(
                        self._topics.state, value=value, key=code.encode(), partition=partition
                    )
                )
        retention_ms = int(self._policy.archive_retention.total_seconds() * 1000)
        moved: set[Key] = set()
        for document_id, entry in self._handler.ledger.expire(now=now, retention_ms=retention_ms):
            moved |= self._doc_tally.move(entry.partition, self._doc_keys(entry.counts_as()), [])
            writes.append(
                await self._producer.send(
                    self._topics.edocument_ledger,
                    value=None,
                    key=document_id.encode(),
                    partition=entry.partition,
                )
            )
        await asyncio.gather(*writes)
        self._publish(changed)
        self._publish_documents(moved)
        if writes:
            self._metrics.evicted.inc(evicted)
            self._metrics.archive_expired.inc(forgotten)
            self._show_held()
            log.info("dossiers evicted", archived=evicted, forgotten=forgotten)
        return evicted
