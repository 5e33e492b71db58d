"""`govsync dlq list|replay`: show dead letters without personal data, or re-publish them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime

from aiokafka import AIOKafkaConsumer

from services.common.kafka import make_consumer, make_producer
from services.common.logging import configure_logging
from services.common.settings import ServiceSettings
from services.dlq.store import Selection, parse_time, read_letters, replay


class DlqSettings(ServiceSettings):
    """What `govsync dlq` needs: the broker and the dead-letter topic (both from the base)."""

    log_level: str = "WARNING"


def selection_from(args: argparse.Namespace) -> Selection:
    """Raises `ValueError` naming the option for a time that is not ISO 8601 with an offset."""

    def when(value: str | None, name: str) -> datetime | None:
        return parse_time(value, name=name) if value else None

    return Selection(
        reason=args.reason,
        stage=args.stage,
        source=args.source,
        since=when(args.since, "--since"),
        until=when(args.until, "--until"),
        limit=args.limit,
    )


async def run(settings: DlqSettings, action: str, selection: Selection) -> int:
    def reader() -> AIOKafkaConsumer:
        return make_consumer(settings.kafka, group_id=None, enable_auto_commit=False)

    letters = await read_letters(reader, settings.topic_dlq, selection)
    if action == "list":
        for letter in letters:
            sys.stdout.write(json.dumps(letter.summary(), ensure_ascii=False) + "\n")
        return len(letters)
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        done = await replay(producer, letters, topics=settings.replay_topics())
    finally:
        await producer.stop()
    sys.stdout.write(json.dumps({"replayed": done.replayed, "refused": done.refused}) + "\n")
    return done.replayed


def main(args: argparse.Namespace) -> int:
    settings = DlqSettings(_secrets_dir=os.environ.get("GOVSYNC_SECRETS_DIR"))
    configure_logging(settings.log_level, service="govsync-dlq")
    try:
        selection = selection_from(args)
    except ValueError as exc:
        sys.stderr.write(f"govsync dlq: {exc}\n")
        return 2
    asyncio.run(run(settings, args.dlq_command, selection))
    return 0
