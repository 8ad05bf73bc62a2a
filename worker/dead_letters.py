"""A handler's unresolved dead letters, and ``edusync dlq redrive|purge``.

A dead letter is resolved once an operator redrives or purges it. Where the unresolved ones
start is the committed offset of one consumer group on the DLQ (``dlq_resolved_group``), the way
Kafka Connect keeps a sink's progress: the DLQ itself stays an append-only record of what
failed, and resolving many letters is one offset commit, not a marker per letter.

Redrive sends each letter's original record to the handler's own redrive topic and moves the
offset past the letters in ONE transaction, so a letter is redriven exactly once or not at all.
The slot runner that owns the letter's tenant applies it through its ordinary path (ledger,
target, transaction), so no second process writes to a tenant's target; a letter that fails
again is dead-lettered again, as a new unresolved letter. Purge moves the offset only.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import orjson
import structlog
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from schemas.dead_letter import DeadLetter
from worker.controls import operator_identity
from worker.kafka.connection import Kafka, connect
from worker.kafka.producer import TransactionalProducer
from worker.kafka.reader import committed_batches
from worker.topics import dlq_resolved_group, dlq_topic, redrive_topic

log = structlog.get_logger(__name__)
COORDINATOR_ATTEMPTS = 40


@dataclass(frozen=True)
class PendingLetter:
    """One unresolved dead letter and where it sits on the DLQ (physical partition)."""

    partition: TopicPartition
    offset: int
    letter: DeadLetter


async def resolved_offsets(kafka: Kafka, handler: str, prefix: str = "edusync") -> dict[int, int]:
    """Per DLQ partition, the offset where unresolved letters start (0 where none were resolved)."""
    connection = connect(kafka)
    group = connection.name(dlq_resolved_group(handler, prefix))
    admin = AIOKafkaAdminClient(**connection.options())
    await admin.start()
    try:
        for attempt in range(COORDINATOR_ATTEMPTS):
            try:
                committed = await admin.list_consumer_group_offsets(group)
                break
            except KafkaError as exc:
                # A young cluster has no offsets topic yet: its coordinator appears in a moment.
                if not exc.retriable or attempt == COORDINATOR_ATTEMPTS - 1:
                    raise
                await anyio.sleep(0.5)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in committed.items() if meta.offset >= 0}


async def pending_letters(kafka: Kafka, handler: str, prefix: str = "edusync") -> list[PendingLetter]:
    """Every unresolved dead letter of ``handler``, oldest first within each partition."""
    start = await resolved_offsets(kafka, handler, prefix)
    out: list[PendingLetter] = []
    async for records in committed_batches(kafka, dlq_topic(handler), missing_ok=True):
        for rec in records:
            if rec.offset < start.get(rec.partition, 0) or not rec.value:
                continue
            out.append(PendingLetter(TopicPartition(rec.topic, rec.partition), rec.offset,
                                     DeadLetter.model_validate(orjson.loads(rec.value))))
    return out


async def resolve_letters(kafka: Kafka, handler: str, *, redrive: bool, prefix: str = "edusync") -> int:
    """Redrive (or, with ``redrive=False``, purge) every unresolved letter of ``handler``;
    returns how many were resolved."""
    letters = await pending_letters(kafka, handler, prefix)
    if not letters:
        return 0
    offsets: dict[TopicPartition, int] = {}
    for item in letters:
        offsets[item.partition] = max(offsets.get(item.partition, 0), item.offset + 1)
    # One id per handler: two operators resolving at once fence each other instead of both
    # redriving the same letters.
    async with TransactionalProducer(kafka, f"{prefix}.dlq-resolve.{handler}") as producer, \
            producer.transaction() as txn:
        if redrive:
            for item in letters:
                original = item.letter.original
                await txn.send(redrive_topic(handler), (original.key or "").encode(), original.value_bytes(),
                               [(k, v.encode()) for k, v in original.headers.items()])
        await txn.send_offsets(offsets, dlq_resolved_group(handler, prefix))
    log.warning("dead letters redriven" if redrive else "dead letters purged", handler=handler,
                letters=len(letters), event_ids=[i.letter.event_id for i in letters[:20]],
                requested_by=operator_identity())
    return len(letters)
