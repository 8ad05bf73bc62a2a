"""A key-value store on a compacted Kafka topic, restored into memory at start-up.

The Kafka Connect offset-store idea: the topic is the durable copy, memory is the
working copy. Writes go through a ``Transaction`` so they commit atomically with the
events or consumer offsets they belong to. Memory is updated as the write is queued;
if that transaction then fails, the owner must throw the store away and ``restore``
a new one (the runners do this by restarting the component).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from worker.kafka.connection import Kafka, connect
from worker.kafka.reader import committed_batches
from worker.kafka.tenant_partitions import tenant_of, tenant_partition
from worker.topics import TENANT_KEYED_TOPICS

if TYPE_CHECKING:
    from worker.kafka.producer import Transaction

log = structlog.get_logger(__name__)


class StateStore:
    """An in-memory map of JSON values mirrored on compacted topic ``topic``.

    ``prefix`` limits what is kept, so a handler loads only its own entries. On a topic
    partitioned by tenant (``TENANT_KEYED_TOPICS``) each key goes to its tenant's partition, and a
    store of one ``tenant`` reads only that partition.
    """

    def __init__(self, kafka: Kafka, topic: str, *, prefix: str = "", tenant: str | None = None) -> None:
        self.kafka = connect(kafka)
        self.topic = topic
        self.prefix = prefix
        self.tenant = tenant
        self._data: dict[str, Any] = {}
        self._staged: dict[str, Any] = {}
        self._partitions: int | None = None  # learnt at restore, for writes by tenant
        self.restore_seconds = 0.0

    def _only(self, partitions: int) -> list[int]:
        """The partitions this store reads, out of ``partitions``."""
        self._partitions = partitions
        if self.tenant is None or self.topic not in TENANT_KEYED_TOPICS:
            return list(range(partitions))
        return [tenant_partition(self.tenant, partitions)]

    def _partition_of(self, key: str) -> int | None:
        """Where a write of ``key`` goes: its tenant's partition on a tenant-keyed topic."""
        if self.topic not in TENANT_KEYED_TOPICS:
            return None
        if self._partitions is None:
            raise RuntimeError(f"restore the store of {self.topic} before writing to it")
        return tenant_partition(tenant_of(key), self._partitions)

    async def restore(self, timeout: float = 120.0) -> int:
        """Read the topic from the beginning to its last committed offset; returns entries kept."""
        started = time.monotonic()
        data: dict[str, Any] = {}
        prefix = self.prefix.encode()
        async for records in committed_batches(self.kafka, self.topic, timeout=timeout, only=self._only):
            for rec in records:
                if rec.key is None or not rec.key.startswith(prefix):
                    continue
                key = rec.key.decode()
                if rec.value is None:
                    data.pop(key, None)
                else:
                    data[key] = orjson.loads(rec.value)
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

    @property
    def dirty(self) -> bool:
        """True while staged writes wait for a ``flush``."""
        return bool(self._staged)

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
            await txn.send(self.topic, key.encode(), None if value is None else orjson.dumps(value),
                           partition=self._partition_of(key))
        return len(staged)

    async def put(self, txn: Transaction, key: str, value: Any) -> None:
        """Set ``key`` inside ``txn`` right away (``None`` deletes it with a tombstone)."""
        self.stage(key, value)
        await self.flush(txn)
