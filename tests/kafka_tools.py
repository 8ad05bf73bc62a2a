"""Test-side Kafka helpers: read a topic with read_committed, compare group offsets to the end."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from worker.kafka.connection import Kafka
from worker.kafka.reader import committed_batches, topic_partitions


async def read_topic(bootstrap: Kafka, topic: str, *, missing_ok: bool = False) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic``, read from the beginning to the last stable offset
    (none, with ``missing_ok``, while the topic does not exist yet)."""
    return [rec async for records in committed_batches(bootstrap, topic, missing_ok=missing_ok) for rec in records]


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """How many committed records of ``topics`` lie beyond the group's committed offsets.

    Counted by reading, because transaction markers occupy offsets too: end offset minus
    committed offset over-counts by one marker per transaction.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                group_id=None, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = [tp for t in topics for tp in await topic_partitions(consumer, t)]
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        lag = 0
        pending = set()
        for tp in parts:
            start = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
            if start < end[tp]:
                consumer.seek(tp, start)
                pending.add(tp)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=300)
            lag += sum(len(records) for records in batch.values())
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return lag
    finally:
        await consumer.stop()
        await admin.close()
