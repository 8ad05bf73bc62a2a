"""Read a topic from the beginning to its end, committed records only, batch by batch.

The read goes on to the *high watermark*, not just the last stable offset: while another
producer holds a transaction open on a shared partition, records committed after it lie
beyond the last stable offset, and a store that stopped there would restore a stale value
(a poller would then publish again what it already published). Reading on waits for open
transactions to finish, which for edusync's own producers is milliseconds; start your own
transactional producer first, so that its ``init_transactions`` aborts your zombie
transaction rather than making this read wait for it to time out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection

import anyio
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from worker.kafka.connection import Kafka, KafkaConnection, connect
from worker.kafka.errors import BrokerUnavailableError


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, *, attempts: int = 20) -> list[TopicPartition]:
    """The partitions of physical ``topic``; a just-created topic may take a moment to show, so
    ask a few times."""
    for _ in range(attempts):
        cluster = await consumer._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await anyio.sleep(0.25)
    raise BrokerUnavailableError(f"topic {topic} does not exist; run topic creation first")


async def committed_batches(
    kafka: Kafka, topic: str, *, timeout: float = 120.0, missing_ok: bool = False,
    only: Callable[[int], list[int]] | None = None,
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """Yield the committed records of logical ``topic`` in fetch batches, from offset 0 to the end.
    ``only`` picks partitions from the partition count (a replica reads its own tenants)."""
    started = time.monotonic()
    connection = connect(kafka)
    physical = connection.name(topic)
    consumer = AIOKafkaConsumer(
        **connection.options(), isolation_level="read_committed", enable_auto_commit=False,
        group_id=None, client_id=f"edusync-reader-{uuid.uuid4().hex[:8]}",
        # Small fetches restore as fast as large ones without tens of MB of buffers in the
        # process's peak RSS (bench/illuminate_snapshot: 1 MB/8 MB against 8 MB/64 MB).
        max_partition_fetch_bytes=1024 * 1024, fetch_max_bytes=8 * 1024 * 1024,
    )
    try:
        await consumer.start()  # inside the try: a cancel during the start must still close it
        try:
            partitions = await topic_partitions(consumer, physical, attempts=1 if missing_ok else 20)
        except BrokerUnavailableError:
            if missing_ok:
                return
            raise
        if only is not None:
            wanted = set(only(len(partitions)))
            partitions = [tp for tp in partitions if tp.partition in wanted]
            if not partitions:
                return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await _high_watermarks(connection, partitions)
        pending = {tp for tp in partitions if end[tp] > 0}
        while pending:
            if time.monotonic() - started > timeout:
                raise BrokerUnavailableError(f"reading {topic} took longer than {timeout:.0f}s")
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            for records in batch.values():
                yield records
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


async def follow_committed(
    kafka: Kafka, topics: list[str], resume_at: dict[TopicPartition, int],
    apply: Callable[[list[ConsumerRecord[bytes, bytes]]], None], *, client_id: str, poll_ms: int = 200,
    positions: dict[TopicPartition, int] | None = None, on_progress: Callable[[], None] | None = None,
    only: Collection[int] | None = None,
) -> None:
    """Hand ``apply`` every committed record of logical ``topics`` from ``resume_at`` (0 where
    absent), as they arrive, until cancelled. For views restored with ``committed_batches``.
    ``positions`` is kept at the consumer's position per partition (past transaction markers),
    so a caller can tell when the view has read up to a given offset; ``on_progress`` is called
    after each update of them. ``only`` limits it to those partition numbers."""
    connection = connect(kafka)
    consumer = AIOKafkaConsumer(**connection.options(), isolation_level="read_committed",
                                enable_auto_commit=False, group_id=None, client_id=client_id)
    try:
        await consumer.start()  # inside the try: a cancel during the start must still close it
        partitions = [tp for topic in connection.names(topics) for tp in await topic_partitions(consumer, topic)
                      if only is None or tp.partition in only]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, resume_at.get(tp, 0))
        while True:
            batch = await consumer.getmany(timeout_ms=poll_ms, max_records=5000)
            for records in batch.values():
                apply(records)
            if positions is not None:
                for tp in partitions:
                    positions[tp] = await consumer.position(tp)
                if on_progress is not None:
                    on_progress()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await consumer.stop()


async def partition_count(kafka: Kafka, topic: str) -> int:
    """How many partitions logical ``topic`` has."""
    connection = connect(kafka)
    probe = AIOKafkaConsumer(**connection.options(), enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        return len(await topic_partitions(probe, connection.name(topic)))
    finally:
        await probe.stop()


async def _high_watermarks(connection: KafkaConnection, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """End offsets as a read_uncommitted client sees them: open transactions included."""
    probe = AIOKafkaConsumer(**connection.options(), isolation_level="read_uncommitted",
                             enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        return dict(await probe.end_offsets(partitions))
    finally:
        await probe.stop()


async def last_stable_offsets(kafka: Kafka, topic: str) -> dict[TopicPartition, int]:
    """The end of what a read_committed reader of logical ``topic`` can see now, per partition."""
    connection = connect(kafka)
    probe = AIOKafkaConsumer(**connection.options(), isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        partitions = await topic_partitions(probe, connection.name(topic))
        return dict(await probe.end_offsets(partitions))
    finally:
        await probe.stop()
