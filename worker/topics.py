"""Every Kafka topic edusync uses, defined once, and their creation.

Import the constants; never spell a topic name elsewhere. State topics belong to the frame; a
flow declares the event topics it publishes or consumes (``worker.registry.Flow.topics``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

ABCONNECT_EVENTS = "edusync.abconnect.events"
CANVAS_COURSE_EVENTS = "edusync.canvas.course-events"
CANVAS_GRADE_CHANGES = "edusync.canvas.grade-changes"
ILLUMINATE_ASSESSMENT_SCORES = "edusync.illuminate.assessment-scores"
MATRIXLMS_RECONCILE = "edusync.matrixlms.reconcile"
CURSORS = "edusync._cursors"
SNAPSHOTS = "edusync._snapshots"
LEDGER = "edusync._ledger"
DEFERRED = "edusync._deferred"

ILLUMINATE_ENTITIES = ("students", "staff", "sections", "rosters", "enrollments", "courses", "terms")


def illuminate_topic(entity: str) -> str:
    """The topic for upserts and deletes of one Illuminate entity."""
    if entity not in ILLUMINATE_ENTITIES:
        raise ValueError(f"unknown Illuminate entity {entity!r}")
    return f"edusync.illuminate.{entity}"


def dlq_topic(handler: str) -> str:
    """The dead-letter topic of one handler."""
    return f"edusync.dlq.{handler}"


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created."""

    name: str
    partitions: int = 6
    compact: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def new_topic(self, replication: int) -> NewTopic:
        """The admin-client request that creates this topic."""
        cfg = {"cleanup.policy": "compact" if self.compact else "delete", **self.config}
        if self.compact:
            # Keep state topics small on disk; the store reads the whole topic at start-up.
            cfg.setdefault("segment.ms", "600000")
            cfg.setdefault("min.cleanable.dirty.ratio", "0.1")
        return NewTopic(self.name, self.partitions, replication, topic_configs=cfg)


def state_topics() -> list[TopicSpec]:
    """The frame's compacted state topics."""
    return [
        TopicSpec(CURSORS, partitions=1, compact=True),
        TopicSpec(SNAPSHOTS, partitions=6, compact=True),
        TopicSpec(LEDGER, partitions=6, compact=True),
        TopicSpec(DEFERRED, partitions=6, compact=True),
    ]


def all_topics(flow_topics: Sequence[TopicSpec] = (), handlers: Sequence[str] = ()) -> list[TopicSpec]:
    """The state topics, the given flow topics (once each), and one DLQ per named handler."""
    specs = state_topics()
    seen = {s.name for s in specs}
    for spec in flow_topics:
        if spec.name not in seen:
            seen.add(spec.name)
            specs.append(spec)
    specs += [TopicSpec(dlq_topic(h), partitions=1) for h in handlers]
    return specs


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s.new_topic(replication) for s in specs if s.name not in existing]
        if missing:
            # Another replica may create one between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
