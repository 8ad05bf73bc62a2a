"""A transactional producer: events, state-store writes and consumer offsets commit together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer, TopicPartition

from schemas.envelope import CONTENT_TYPE_HEADER, CloudEvent
from worker.kafka.connection import Kafka, KafkaConnection, connect

if TYPE_CHECKING:
    from worker.state_store import StateStore


class Transaction:
    """The writes of one open Kafka transaction. Created by ``TransactionalProducer.transaction``."""

    def __init__(self, producer: AIOKafkaProducer, connection: KafkaConnection) -> None:
        self._producer = producer
        self._connection = connection
        self.sent = 0

    async def send(
        self, topic: str, key: bytes, value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None, *, partition: int | None = None,
    ) -> None:
        """Queue one record on logical ``topic`` in the transaction (``value=None`` is a tombstone);
        ``partition`` overrides the key's default partition (tenant-partitioned state topics)."""
        await self._producer.send(self._connection.name(topic), value=value, key=key, headers=headers,
                                  partition=partition)
        self.sent += 1

    async def send_event(self, topic: str, event: CloudEvent) -> None:
        """Queue one CloudEvent in structured mode."""
        await self.send(topic, event.key(), event.to_bytes(), [CONTENT_TYPE_HEADER])

    async def put(self, store: StateStore, key: str, value: object) -> None:
        """Write a state-store entry as part of this transaction."""
        await store.put(self, key, value)

    async def send_offsets(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        """Commit consumer offsets (next offset to read) with this transaction. The partitions are
        the consumer's (physical names); ``group_id`` is logical, like every name passed in."""
        if offsets:
            await self._producer.send_offsets_to_transaction(offsets, self._connection.name(group_id))


# Settings of every transactional producer edusync opens (benchmarks use them for the raw baseline).
PRODUCER_SETTINGS: dict[str, object] = {
    "enable_idempotence": True,
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 512 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    # aiokafka's 100 ms default is paid whenever a transaction starts right after a commit
    # (a retriable CONCURRENT_TRANSACTIONS answer): a fifth of consume time in bench/frames.
    "retry_backoff_ms": 20,
}


class TransactionalProducer:
    """An idempotent, transactional ``AIOKafkaProducer`` with a stable ``transactional_id``.

    A stable id matters: when a crashed process restarts, ``init_transactions`` fences the
    old instance and aborts its open transaction, so read_committed readers are not held
    up until the transaction times out.
    """

    def __init__(self, kafka: Kafka, transactional_id: str, *, transaction_timeout_ms: int = 30000) -> None:
        self.connection = connect(kafka)
        self.transactional_id = self.connection.name(transactional_id)
        self._producer = AIOKafkaProducer(
            **self.connection.options(), transactional_id=self.transactional_id, client_id=self.transactional_id,
            transaction_timeout_ms=transaction_timeout_ms, **PRODUCER_SETTINGS,
        )

    async def start(self) -> None:
        """Connect and initialise transactions (fencing any previous instance)."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and close."""
        await self._producer.stop()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Open a transaction; it commits when the block exits and aborts on an exception."""
        async with self._producer.transaction():
            yield Transaction(self._producer, self.connection)

    async def __aenter__(self) -> TransactionalProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
