"""Read a topic from the beginning to its last committed offset, batch by batch.

Under ``read_committed`` the end offsets are the last stable offsets, so the read never sees
an aborted or still-open transaction. Used by the state stores at start-up and by the
operations commands that list dead letters.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import anyio
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from worker.kafka.errors import BrokerUnavailableError


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, *, attempts: int = 20) -> list[TopicPartition]:
    """The topic's partitions; a just-created topic may take a moment to show, so ask a few times."""
    for _ in range(attempts):
        cluster = await consumer._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await anyio.sleep(0.25)
    raise BrokerUnavailableError(f"topic {topic} does not exist; run topic creation first")


async def committed_batches(
    bootstrap: str, topic: str, *, timeout: float = 120.0, missing_ok: bool = False,
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """Yield the committed records of ``topic`` in fetch batches, from offset 0 to the end."""
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False,
        group_id=None, client_id=f"edusync-reader-{uuid.uuid4().hex[:8]}",
        max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        try:
            partitions = await topic_partitions(consumer, topic, attempts=1 if missing_ok else 20)
        except BrokerUnavailableError:
            if missing_ok:
                return
            raise
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if end[tp] > 0}
        while pending:
            if time.monotonic() - started > timeout:
                raise BrokerUnavailableError(f"reading {topic} took longer than {timeout:.0f}s")
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=50000)
            for records in batch.values():
                yield records
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
