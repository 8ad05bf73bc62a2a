"""A key-value store on a compacted Kafka topic, restored into memory at start-up.

The Kafka Connect offset-store idea: the topic is the durable copy, memory is the
working copy. Writes go through a ``Transaction`` so they commit atomically with the
events or consumer offsets they belong to. Memory is updated as the write is queued;
if that transaction then fails, the owner must throw the store away and ``restore``
a new one (the runners do this by restarting the component).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from worker.kafka.errors import BrokerUnavailableError

if TYPE_CHECKING:
    from worker.kafka.producer import Transaction

log = structlog.get_logger(__name__)


class StateStore:
    """An in-memory map of JSON values mirrored on compacted topic ``topic``.

    ``prefix`` limits what is restored, so a handler loads only its own ledger entries.
    """

    def __init__(self, bootstrap: str, topic: str, *, prefix: str = "") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.prefix = prefix
        self._data: dict[str, Any] = {}
        self._staged: dict[str, Any] = {}
        self.restore_seconds = 0.0

    async def restore(self, timeout: float = 120.0) -> int:
        """Read the topic from the beginning to its last committed offset; returns entries kept."""
        started = time.monotonic()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            group_id=None,
            client_id=f"edusync-restore-{uuid.uuid4().hex[:8]}",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            partitions = await _partitions(consumer, self.topic)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            # Under read_committed, end_offsets is the last stable offset: nothing beyond it
            # is committed yet, so stopping there never restores an aborted write.
            end = await consumer.end_offsets(partitions)
            data: dict[str, Any] = {}
            pending = {tp for tp in partitions if end[tp] > 0}
            prefix = self.prefix.encode()
            while pending:
                if time.monotonic() - started > timeout:
                    raise BrokerUnavailableError(f"restoring {self.topic} took longer than {timeout:.0f}s")
                batch = await consumer.getmany(*pending, timeout_ms=500, max_records=50000)
                for records in batch.values():
                    for rec in records:
                        if rec.key is None or not rec.key.startswith(prefix):
                            continue
                        key = rec.key.decode()
                        if rec.value is None:
                            data.pop(key, None)
                        else:
                            data[key] = orjson.loads(rec.value)
                for tp in list(pending):
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
        finally:
            await consumer.stop()
        self._data = data
        self.restore_seconds = time.monotonic() - started
        log.info("state store restored", topic=self.topic, prefix=self.prefix, entries=len(data),
                 seconds=round(self.restore_seconds, 3))
        return len(data)

    def get(self, key: str, default: Any = None) -> Any:
        """The current value of ``key``."""
        return self._data.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Entries whose key starts with ``prefix``."""
        for key, value in list(self._data.items()):
            if key.startswith(prefix):
                yield key, value

    def stage(self, key: str, value: Any) -> None:
        """Set ``key`` in memory now and queue it for the next ``flush`` (``None`` deletes)."""
        if not key.startswith(self.prefix):
            raise ValueError(f"key {key!r} is outside this store's prefix {self.prefix!r}")
        self._staged[key] = value
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    async def flush(self, txn: Transaction) -> int:
        """Send every staged write inside ``txn``; returns how many."""
        staged, self._staged = self._staged, {}
        for key, value in staged.items():
            await txn.send(self.topic, key.encode(), None if value is None else orjson.dumps(value))
        return len(staged)

    async def put(self, txn: Transaction, key: str, value: Any) -> None:
        """Set ``key`` inside ``txn`` right away (``None`` deletes it with a tombstone)."""
        self.stage(key, value)
        await self.flush(txn)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    # A just-created topic may take a moment to show in metadata; ask a few times.
    for _ in range(20):
        cluster = await consumer._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await anyio.sleep(0.25)
    raise BrokerUnavailableError(f"topic {topic} does not exist; run topic creation first")
