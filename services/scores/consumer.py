"""The Kafka side of the scores service: fetch from the three topics, apply each batch in one
database transaction, then commit the offsets.

Order per batch: decode (what cannot be decoded becomes a dead letter with the reason), apply
to the database and commit it, write the dead letters, commit the Kafka offsets. A crash at any
point replays from the last committed offsets, and the store applies only revisions newer than
what it holds: redeliveries change nothing. Every partition's offsets are committed only after
the transaction that holds its records, so nothing is ever skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

from services.common.deadletter import DeadLetter, DeadLetterWriter, Origin
from services.common.logging import get_logger
from services.scores import decode
from services.scores.errors import UndecodableRecordError
from services.scores.metrics import ScoresMetrics
from services.scores.settings import ScoresSettings
from services.scores.store import (
    AckChange,
    Applied,
    Batch,
    DocumentChange,
    DossierChange,
    ScoreStore,
)

log = get_logger(__name__)

SERVICE = "govsync-scores"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: ScoresWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Every batch is committed before the next fetch: nothing of these is pending.
        self._worker.assigned -= revoked

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._worker.assigned |= assigned
        log.info("partitions assigned", partitions=len(assigned))


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
        self.assigned: set[TopicPartition] = set()
        self.fetching = False
        self.applied_batches = 0

    @property
    def topics(self) -> list[str]:
        return [self._dossier_topic, self._ack_topic, self._document_topic]

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and apply until `stop`; the batch in hand is finished and committed first."""
        self._consumer.subscribe(self.topics, listener=_Rebalance(self))
        limit = self._settings.scores.batch_max_records
        while not stop.is_set():
            fetched = await self._consumer.getmany(timeout_ms=200, max_records=limit)
            self.fetching = True
            if fetched:
                await self.process(fetched)

    async def process(self, fetched: dict[TopicPartition, list[Any]]) -> Applied:
        """Apply one fetched batch and commit its offsets."""
        dossiers: list[DossierChange] = []
        acks: list[AckChange] = []
        documents: list[DocumentChange] = []
        withdrawn: list[str] = []
        letters: list[DeadLetter] = []
        skipped = {"ack": 0, "edocument": 0}
        for tp, messages in fetched.items():
            for message in messages:
                try:
                    if tp.topic == self._dossier_topic:
                        dossiers.append(decode.dossier(message.value))
                    elif tp.topic == self._ack_topic:
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
        batch = Batch(dossiers, acks, documents, withdrawn)
        started = time.perf_counter()
        applied = await asyncio.to_thread(self._store.apply, batch) if len(batch) else Applied()
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        for letter in letters:
            await self._dead_letters.write(letter)
        await self._commit(fetched)
        self._count(applied, skipped, letters)
        self.applied_batches += 1
        return applied

    def _count(
        self, applied: Applied, skipped: dict[str, int], letters: Sequence[DeadLetter]
    ) -> None:
        m = self._metrics
        m.record("dossier", "applied", applied.dossiers)
        m.record("dossier", "stale", applied.stale_dossiers)
        m.record("ack", "applied", applied.acks)
        m.record("ack", "stale", applied.stale_acks)
        m.record("ack", "skipped", skipped["ack"])
        m.record("edocument", "applied", applied.documents)
        m.record("edocument", "stale", applied.stale_documents)
        m.record("edocument", "skipped", skipped["edocument"])
        for letter in letters:
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
