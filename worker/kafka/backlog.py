"""A consumer group's backlog in records, not offsets.

Transaction markers occupy offsets: a caught-up group's committed offset sits before the last
commit marker, so "end offset minus committed offset" reports one phantom record per transaction.
Here the records between the committed offset and the last stable offset are read (with
``read_committed``) and counted; markers and aborted records are not records.
"""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from worker.kafka.connection import Kafka, connect
from worker.kafka.reader import topic_partitions

# Past this many offsets a partition's backlog is the offset difference (an upper bound by its
# markers): reading half a million records to say "large" is not worth the wait.
MAX_COUNTED_OFFSETS = 200_000
READ_SECONDS = 60.0


async def group_backlog(kafka: Kafka, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Committed records of logical ``topics`` beyond logical ``group``'s committed offsets, per
    physical partition. A group that never committed owes every record."""
    connection = connect(kafka)
    admin = AIOKafkaAdminClient(**connection.options())
    consumer = AIOKafkaConsumer(**connection.options(), isolation_level="read_committed", enable_auto_commit=False,
                                group_id=None, client_id=f"edusync-backlog-{uuid.uuid4().hex[:8]}")
    await admin.start()
    try:
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(connection.name(group))
            parts = [tp for t in connection.names(topics) for tp in await topic_partitions(consumer, t)]
            return await _count(consumer, parts, {tp: committed[tp].offset for tp in parts if tp in committed})
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def _count(consumer: AIOKafkaConsumer, parts: list[TopicPartition],
                 committed: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    consumer.assign(parts)
    stable = await consumer.end_offsets(parts)  # read_committed: the last stable offset
    begin = await consumer.beginning_offsets(parts)
    backlog = {tp: 0 for tp in parts}
    pending: dict[TopicPartition, int] = {}
    for tp in parts:
        start = max(committed.get(tp, -1), begin[tp])
        if start >= stable[tp]:
            continue
        if stable[tp] - start > MAX_COUNTED_OFFSETS:
            backlog[tp] = stable[tp] - start
            continue
        consumer.seek(tp, start)
        pending[tp] = stable[tp]
    deadline = time.monotonic() + READ_SECONDS
    while pending and time.monotonic() < deadline:
        batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
        for tp, records in batch.items():
            backlog[tp] += sum(1 for r in records if r.offset < pending.get(tp, 0))
        for tp in list(pending):
            if await consumer.position(tp) >= pending[tp]:
                del pending[tp]
    for tp, end in pending.items():  # read too slowly: fall back to the offsets still ahead
        backlog[tp] += max(0, end - await consumer.position(tp))
    return backlog
