"""The Kafka side of the scores service: fetch from the three topics, apply each batch in one
database transaction, then commit the offsets.

Order per batch: decode (what cannot be decoded becomes a dead letter with the reason; of one
dossier's records in the fetch only the newest is decoded in full), apply to the database and
commit it, write the dead letters, commit the Kafka offsets. The database work runs in a thread
while the event loop fetches and decodes the next batch; batches are applied one at a time, in
fetch order. A crash at any point replays from the last committed offsets, and the store applies
only revisions newer than what it holds: redeliveries change nothing. Every partition's offsets
are committed only after the transaction that holds its records, so nothing is ever skipped; a
batch fetched before a rebalance is applied but its offsets are left to the next owner.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.logging import get_logger
from services.scores import decode
from services.scores.changes import AckChange, Applied, Batch, DocumentChange
from services.scores.errors import UndecodableRecordError
from services.scores.metrics import ScoresMetrics
from services.scores.settings import ScoresSettings
from services.scores.store import ScoreStore

log = get_logger(__name__)

SERVICE = "govsync-scores"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: ScoresWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The batch being applied commits before the partitions go; a batch fetched but not
        # yet applied will not commit (`_Prepared.epoch`).
        await self._worker.drain()
        self._worker.epoch += 1
        self._worker.assigned -= revoked

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._worker.assigned |= assigned
        log.info("partitions assigned", partitions=len(assigned))


@dataclass(slots=True)
class _Prepared:
    """One fetch, decoded: the batch for the store, the dead letters, what was left out."""

    fetched: dict[TopicPartition, list[Any]]
    epoch: int
    batch: Batch
    letters: list[DeadLetter]
    skipped: dict[str, int]
    superseded: int

    @property
    def records(self) -> int:
        return sum(len(messages) for messages in self.fetched.values())


class ScoresWorker:
    """Consumes the normalised dossiers, the portal's acknowledgements and the e-documents."""

    def __init__(
        self,
        settings: ScoresSettings,
        store: ScoreStore,
        *,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        metrics: ScoresMetrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._consumer = consumer
        self._metrics = metrics
        self._dead_letters = DeadLetterWriter(producer, settings.topic_dlq)
        self._dossier_topic = settings.topic_dossier_normalized
        self._ack_topic = settings.acked_topic
        self._document_topic = settings.topic_edocument_normalized
        self._in_flight: asyncio.Task[Applied] | None = None
        self._in_flight_records = 0
        self.assigned: set[TopicPartition] = set()
        self.epoch = 0
        """Rebalances so far: a batch fetched in an earlier epoch does not commit."""
        self.fetching = False
        self.applied_batches = 0
        self.records_done = 0
        """Records of the batches applied and committed (every outcome)."""

    @property
    def topics(self) -> list[str]:
        return [self._dossier_topic, self._ack_topic, self._document_topic]

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and apply until `stop`; the batch in hand is finished and committed first.

        While one batch is applied (in a thread), the next is fetched and decoded."""
        # By pattern: a subscription by name asks the broker for those topics' metadata, and a
        # broker that creates topics on demand then creates the portal sync's acknowledgements
        # topic, if it does not exist yet, with its own default partition count, which the sync
        # then refuses (it must match the normalised topic's). A pattern reads the cluster's
        # topics as they are and picks that one up once the sync has created it.
        pattern = "^(" + "|".join(re.escape(topic) for topic in self.topics) + ")$"
        self._consumer.subscribe(pattern=pattern, listener=_Rebalance(self))
        limit = self._settings.scores.batch_max_records
        try:
            while not stop.is_set():
                fetched = await self._consumer.getmany(timeout_ms=200, max_records=limit)
                self.fetching = True
                if not fetched:
                    await self._measure_lag(self._pending)
                    continue
                prepared = self.prepare(fetched)
                await self._measure_lag(self._pending + prepared.records)
                await self.settle()
                self._in_flight = asyncio.create_task(self.finish(prepared))
                self._in_flight_records = prepared.records
            await self.settle()
        finally:
            if self._in_flight is not None and not self._in_flight.done():
                self._in_flight.cancel()  # its transaction ends on its own; offsets stay

    @property
    def _pending(self) -> int:
        """Records of the batch being applied, if it is not committed yet."""
        task = self._in_flight
        return self._in_flight_records if task is not None and not task.done() else 0

    async def _measure_lag(self, pending: int) -> None:
        """The lag gauge: what the broker holds beyond the fetch position, plus the records
        fetched but not yet committed; a partition not fetched yet counts 1 (unknown)."""
        total = pending
        for tp in set(self.assigned):
            # A rebalance may take partitions while `position` waits (aiokafka asserts on them).
            highwater = self._consumer.highwater(tp) if tp in self._consumer.assignment() else None
            if highwater is None:
                total += 1
                continue
            try:
                position = await self._consumer.position(tp)
            except Exception:  # noqa: BLE001 - revoked meanwhile: not known, not caught up
                total += 1
                continue
            total += max(0, highwater - position)
        self._metrics.lag.set(total)

    async def settle(self) -> None:
        """Wait for the batch being applied, if any, to be committed (its failure raises)."""
        task = self._in_flight
        if task is None:
            return
        try:
            await task
        finally:
            if self._in_flight is task:
                self._in_flight = None

    async def drain(self) -> None:
        """Wait until the batch being applied is done; its failure is for `settle` to raise."""
        task = self._in_flight
        if task is not None:
            await asyncio.wait([task])

    async def process(self, fetched: dict[TopicPartition, list[Any]]) -> Applied:
        """Decode, apply and commit one fetched batch (no overlap with the next)."""
        return await self.finish(self.prepare(fetched))

    def prepare(self, fetched: dict[TopicPartition, list[Any]]) -> _Prepared:
        """Decode a fetch: pure CPU work, on the event loop."""
        dossier_messages: list[tuple[bytes | None, bytes | None]] = []
        dossier_origins: list[tuple[TopicPartition, Any]] = []
        acks: list[AckChange] = []
        documents: list[DocumentChange] = []
        withdrawn: list[str] = []
        letters: list[DeadLetter] = []
        skipped = {"ack": 0, "edocument": 0}
        for tp, messages in fetched.items():
            if tp.topic == self._dossier_topic:
                for message in messages:
                    dossier_messages.append((message.key, message.value))
                    dossier_origins.append((tp, message))
                continue
            for message in messages:
                try:
                    if tp.topic == self._ack_topic:
                        if decode.is_ack(message.key, message.value):
                            acks.append(decode.ack(message.key, message.value))
                        else:
                            skipped["ack"] += 1
                    else:
                        change = decode.edocument(message.value, message.headers or ())
                        if isinstance(change, DocumentChange):
                            documents.append(change)
                        elif isinstance(change, str):
                            withdrawn.append(change)
                        else:
                            skipped["edocument"] += 1
                except UndecodableRecordError as exc:
                    letters.append(self._letter(tp, message, exc))
        newest = decode.newest_dossiers(dossier_messages)
        for i, error in sorted(newest.failed, key=lambda f: f[0]):
            letters.append(self._letter(*dossier_origins[i], error))
        batch = Batch(newest.changes, acks, documents, withdrawn)
        return _Prepared(fetched, self.epoch, batch, letters, skipped, newest.superseded)

    async def finish(self, prepared: _Prepared) -> Applied:
        """Apply a decoded batch in one transaction (in a thread), then commit its offsets."""
        batch = prepared.batch
        started = time.perf_counter()
        applied = await asyncio.to_thread(self._store.apply, batch) if len(batch) else Applied()
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        for letter in prepared.letters:
            await self._dead_letters.write(letter)
        if prepared.epoch == self.epoch:
            await self._commit(prepared.fetched)
        else:
            log.info("offsets left to the next owner after a rebalance")
        self._count(applied, prepared)
        self.applied_batches += 1
        self.records_done += prepared.records
        return applied

    def _count(self, applied: Applied, prepared: _Prepared) -> None:
        m = self._metrics
        skipped = prepared.skipped
        m.record("dossier", "applied", applied.dossiers)
        m.record("dossier", "stale", applied.stale_dossiers + prepared.superseded)
        m.record("ack", "applied", applied.acks)
        m.record("ack", "stale", applied.stale_acks)
        m.record("ack", "skipped", skipped["ack"])
        m.record("edocument", "applied", applied.documents)
        m.record("edocument", "stale", applied.stale_documents)
        m.record("edocument", "skipped", skipped["edocument"])
        for letter in prepared.letters:
            kind = {self._dossier_topic: "dossier", self._ack_topic: "ack"}.get(
                letter.origin.topic, "edocument"
            )
            m.record(kind, "dead_lettered")

    def _letter(
        self, tp: TopicPartition, message: Any, error: UndecodableRecordError
    ) -> DeadLetter:
        log.warning(
            "record dead-lettered",
            topic=tp.topic,
            partition=tp.partition,
            offset=message.offset,
            error=type(error).__name__,
        )
        reason = f"{error}: {error.detail}" if error.detail else str(error)
        return DeadLetter(
            origin=Origin(
                tp.topic,
                tp.partition,
                message.offset,
                message.key,
                message.value,
                list(message.headers or ()),
            ),
            reason=reason,
            stage="scores",
            error=type(error).__name__,
            service=SERVICE,
            at=datetime.now(UTC),
        )

    async def _commit(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        offsets = {tp: messages[-1].offset + 1 for tp, messages in fetched.items() if messages}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # A rebalance is under way: the next owner re-applies from the last commit, and
            # the store drops what it already holds.
            log.info("commit skipped during a rebalance")
