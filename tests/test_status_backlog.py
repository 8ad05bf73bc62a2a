"""``edusync status`` backlog against a real broker and a transactional producer: markers occupy
offsets, yet a caught-up group reports 0 and N unconsumed records report N."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from worker.kafka.backlog import group_backlog
from worker.kafka.producer import TransactionalProducer
from worker.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.anyio


async def _produce(bootstrap: str, topic: str, tid: str, transactions: int, *, abort: bool = False) -> None:
    """``transactions`` transactions of one record each (an aborted one of three with ``abort``)."""
    async with TransactionalProducer(bootstrap, tid) as producer:
        for i in range(transactions):
            async with producer.transaction() as txn:
                await txn.send(topic, f"k{i}".encode(), b"v")
        if abort:
            with pytest.raises(RuntimeError):
                async with producer.transaction() as txn:
                    for i in range(3):
                        await txn.send(topic, f"a{i}".encode(), b"aborted")
                    raise RuntimeError("abort this transaction")


async def _consume_and_commit(bootstrap: str, topic: str, group: str, expected: int) -> None:
    """Read every committed record as a handler would and commit the offset after the last one."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, isolation_level="read_committed",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen, last = 0, {}
        while seen < expected:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                seen += len(records)
                last[tp] = records[-1].offset + 1
        await consumer.commit(last)
    finally:
        await consumer.stop()


async def _offset_gap(bootstrap: str, topic: str, group: str) -> int:
    """The old computation: end offset minus committed offset."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])] or \
            [tp for tp in committed if tp.topic == topic]
        end = await consumer.end_offsets(parts)
        return sum(end[tp] - (committed[tp].offset if tp in committed else 0) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


async def test_caught_up_is_zero_and_unconsumed_records_count_once_each(kafka_bootstrap: str, unique: str) -> None:
    topic, group = f"test.backlog.{unique}", f"test.backlog-group.{unique}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, partitions=2)])
    await _produce(kafka_bootstrap, topic, f"test.backlog.{unique}", 6)
    await _consume_and_commit(kafka_bootstrap, topic, group, 6)

    assert await _offset_gap(kafka_bootstrap, topic, group) > 0  # the last commit marker of each partition
    backlog = await group_backlog(kafka_bootstrap, group, [topic])
    assert sum(backlog.values()) == 0
    assert all(isinstance(n, int) for n in backlog.values())

    await _produce(kafka_bootstrap, topic, f"test.backlog.{unique}", 4, abort=True)
    assert sum((await group_backlog(kafka_bootstrap, group, [topic])).values()) == 4  # aborted records not counted
    assert sum((await group_backlog(kafka_bootstrap, f"{group}.never", [topic])).values()) == 10
