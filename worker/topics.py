"""Every Kafka topic edusync uses, defined once, and their creation.

Import the constants; never spell a topic name elsewhere. State topics belong to the frame; a
flow declares the event topics it publishes or consumes (``worker.registry.Flow.topics``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from worker.errors import ConfigurationError
from worker.kafka.connection import Kafka, connect

ABCONNECT_EVENTS = "edusync.abconnect.events"
CANVAS_COURSE_EVENTS = "edusync.canvas.course-events"
CANVAS_GRADE_CHANGES = "edusync.canvas.grade-changes"
ILLUMINATE_ASSESSMENT_SCORES = "edusync.illuminate.assessment-scores"
MATRIXLMS_RECONCILE = "edusync.matrixlms.reconcile"
CURSORS = "edusync._cursors"
SNAPSHOTS = "edusync._snapshots"
LEDGER = "edusync._ledger"
DEFERRED = "edusync._deferred"
# Replicas join one consumer group on this topic; its partitions stand for tenants, and a
# replica runs the pollers of the tenants on its assigned partitions (worker/ownership.py).
POLLER_CONTROL = "edusync._pollers"
CONTROL_PARTITIONS = 24
# Operator commands (pause/resume, ...), keyed by what they act on: compaction keeps the latest
# per key, which a restarted or new owner reads (worker/controls.py). One partition: every
# replica reads all of it, and commands to one component stay in order.
OPERATOR_CONTROL = "edusync._control"

# Poller state, one partition per tenant (worker/kafka/tenant_partitions.py): an owner restores
# only its tenants' partitions.
TENANT_KEYED_TOPICS = frozenset({CURSORS, SNAPSHOTS})

ILLUMINATE_ENTITIES = ("students", "staff", "sections", "rosters", "enrollments", "courses", "terms")


def illuminate_topic(entity: str) -> str:
    """The topic for upserts and deletes of one Illuminate entity."""
    if entity not in ILLUMINATE_ENTITIES:
        raise ValueError(f"unknown Illuminate entity {entity!r}")
    return f"edusync.illuminate.{entity}"


def poller_group(prefix: str = "edusync") -> str:
    """The ownership group of one deployment's replicas (``kafka.consumer_group_prefix``)."""
    return f"{prefix}._pollers"


def dlq_topic(handler: str) -> str:
    """The dead-letter topic of one handler."""
    return f"edusync.dlq.{handler}"


def redrive_topic(handler: str) -> str:
    """Dead letters an operator sent back to one handler (``edusync dlq redrive``); only that
    handler consumes it, so the other consumers of the original topic see nothing twice."""
    return f"edusync.redrive.{handler}"


def dlq_resolved_group(handler: str, prefix: str = "edusync") -> str:
    """The consumer group whose committed offset on a DLQ marks where its unresolved letters
    start: redrive and purge move it past the letters they dealt with."""
    return f"{prefix}.{handler}.dlq-resolved"


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created."""

    name: str
    partitions: int = 6
    compact: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def new_topic(self, name: str, replication: int, min_insync: int) -> NewTopic:
        """The admin-client request that creates this topic under physical ``name``."""
        cfg = {"cleanup.policy": "compact" if self.compact else "delete",
               "min.insync.replicas": str(min_insync), **self.config}
        if self.compact:
            # Keep state topics small on disk; the store reads the whole topic at start-up.
            cfg.setdefault("segment.ms", "600000")
            cfg.setdefault("min.cleanable.dirty.ratio", "0.1")
        return NewTopic(name, self.partitions, replication, topic_configs=cfg)


def state_topics() -> list[TopicSpec]:
    """The frame's compacted state topics."""
    return [
        TopicSpec(CURSORS, partitions=CONTROL_PARTITIONS, compact=True),
        TopicSpec(SNAPSHOTS, partitions=CONTROL_PARTITIONS, compact=True),
        TopicSpec(POLLER_CONTROL, partitions=CONTROL_PARTITIONS),
        TopicSpec(OPERATOR_CONTROL, partitions=1, compact=True),
        # Keyed by tenant too (worker/ledger.py): a slot's owner holds only its tenants' partitions.
        TopicSpec(LEDGER, partitions=CONTROL_PARTITIONS, compact=True),
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
    specs += [TopicSpec(redrive_topic(h), partitions=1) for h in handlers]
    return specs


class TopicLayoutError(ConfigurationError):
    """An existing topic's replication differs from what the configuration asks for."""


async def ensure_topics(kafka: Kafka, specs: list[TopicSpec], replication: int = 1, min_insync: int = 1) -> list[str]:
    """Create the topics that do not exist yet (physical names returned), then check every topic's
    replication factor and ``min.insync.replicas`` against the configuration."""
    connection = connect(kafka)
    if min_insync > replication:
        raise TopicLayoutError(f"min.insync.replicas {min_insync} exceeds the replication factor {replication}")
    admin = AIOKafkaAdminClient(**connection.options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s.new_topic(connection.name(s.name), replication, min_insync)
                   for s in specs if connection.name(s.name) not in existing]
        if missing:
            # Another replica may create one between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        await _check_layout(admin, connection.names([s.name for s in specs]), replication, min_insync)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _check_layout(admin: AIOKafkaAdminClient, names: list[str], replication: int, min_insync: int) -> None:
    """Raise ``TopicLayoutError`` naming every topic whose replicas or min ISR differ from the config."""
    problems = []
    for topic in await admin.describe_topics(names):
        factors = {len(p["replicas"]) for p in topic["partitions"]}
        if factors and factors != {replication}:
            problems.append(f"{topic['topic']}: replication factor {sorted(factors)}, configured {replication}")
    described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    for response in described:
        for resource in response.resources:
            _code, _message, _type, name, entries = resource[:5]
            value = next((e[1] for e in entries if e[0] == "min.insync.replicas"), None)
            if value is not None and int(value) != min_insync:
                problems.append(f"{name}: min.insync.replicas {value}, configured {min_insync}")
    if problems:
        raise TopicLayoutError("topics differ from kafka.replication_factor / kafka.min_insync_replicas "
                               "(change the config or alter the topics):\n  " + "\n  ".join(problems))
