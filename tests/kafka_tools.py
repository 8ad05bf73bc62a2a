"""Test-side Kafka helpers: read a topic with read_committed, compare group offsets to the end."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic``, read from the beginning to the last stable offset."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False,
        group_id=None, client_id=f"test-reader-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out: list[ConsumerRecord[bytes, bytes]] = []
        pending = {tp for tp in parts if end[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for records in batch.values():
                out.extend(records)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()


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
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()]
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
