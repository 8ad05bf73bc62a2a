"""Reference data for joins: the latest state of some event topics, complete, in every process.

A ``TopicTable`` reads its topics from the beginning at start-up and then follows them
(read_committed), keeping what a projection makes of each event: the way a Kafka Streams
GlobalKTable is kept. The roster handlers join against such tables, because a section row lacks
the course name, the term dates and the teacher's name and email, and a roster delete carries only
internal ids. Every replica sees the whole table, not just its own partitions. The topics must be
compacted (keyed by entity) so that a record that never changes is still there after retention.

A handler that has ``tables`` gets them restored by the handler frame before it consumes, and
followed while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import structlog
from aiokafka import ConsumerRecord, TopicPartition

from schemas.envelope import CloudEvent, EnvelopeError
from worker.kafka.connection import Kafka, connect
from worker.kafka.reader import committed_batches, follow_committed

log = structlog.get_logger(__name__)

# What a table keeps of one event: (key, value) pairs; a None value removes the key.
Projection = Callable[[CloudEvent], Iterable[tuple[str, Any]]]


class TopicTable:
    """The projection of every event of ``topics``, by key, current to their committed end."""

    def __init__(
        self, kafka: Kafka, name: str, topics: Sequence[str], project: Projection,
        group_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.kafka = connect(kafka)
        self.name = name
        self.topics = list(topics)
        self._project = project
        self._data: dict[str, Any] = {}
        # Optional secondary index: group -> keys (a section's teacher rows, say).
        self._group_of = group_of
        self._groups: dict[str, dict[str, Any]] = {}
        self._resume_at: dict[TopicPartition, int] = {}
        self.restored = False
        self.following = False  # one follower per process, however many handlers use the table
        self.skipped = 0  # records that are not events, or that the projection refused

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``."""
        return self._data.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Entries whose key starts with ``prefix`` (a snapshot; a scan: use ``group`` on hot paths)."""
        return iter([(k, v) for k, v in self._data.items() if k.startswith(prefix)])

    def group(self, group: str) -> dict[str, Any]:
        """The entries of one group of the secondary index (a copy), without a scan."""
        return dict(self._groups.get(group, {}))

    async def restore(self, timeout: float = 300.0) -> int:
        """Read every topic to its end; returns the number of keys."""
        if self.restored:
            return len(self._data)
        started = time.monotonic()
        for topic in self.topics:
            async for records in committed_batches(self.kafka, topic, timeout=timeout, missing_ok=True):
                self._apply(records)
                for rec in records:
                    self._resume_at[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
        self.restored = True
        log.info("table restored", table=self.name, keys=len(self._data), seconds=round(time.monotonic() - started, 3))
        return len(self._data)

    def claim(self) -> bool:
        """True (once) for the caller that should run ``follow``; the others share its work."""
        if self.following:
            return False
        self.following = True
        return True

    async def follow(self) -> None:
        """Apply new events as they are committed, until cancelled (run it in a task group, after
        ``claim``)."""
        try:
            await follow_committed(self.kafka, self.topics, self._resume_at, self._apply,
                                   client_id=f"edusync-table-{self.name}")
        finally:
            self.following = False

    def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for rec in records:
            try:
                event = CloudEvent.from_bytes(rec.value)
                pairs = list(self._project(event))
            except (EnvelopeError, ValueError):
                self.skipped += 1  # the handler reading the same topic dead-letters it with the reason
                continue
            for key, value in pairs:
                self._set(key, value)

    def _set(self, key: str, value: Any) -> None:
        group = self._group_of(key) if self._group_of is not None else None
        if value is None:
            self._data.pop(key, None)
            if group is not None and group in self._groups:
                self._groups[group].pop(key, None)
                if not self._groups[group]:
                    del self._groups[group]
            return
        self._data[key] = value
        if group is not None:
            self._groups.setdefault(group, {})[key] = value
