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

from worker.kafka.reader import committed_batches

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
        data: dict[str, Any] = {}
        prefix = self.prefix.encode()
        async for records in committed_batches(self.bootstrap, self.topic, timeout=timeout):
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
            await txn.send(self.topic, key.encode(), None if value is None else orjson.dumps(value))
        return len(staged)

    async def put(self, txn: Transaction, key: str, value: Any) -> None:
        """Set ``key`` inside ``txn`` right away (``None`` deletes it with a tombstone)."""
        self.stage(key, value)
        await self.flush(txn)
