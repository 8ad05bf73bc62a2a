"""Kafka for ``bench.chaos``: its own broker (``deploy/local_kafka.py``, a data folder under
``var/``, free ports) that can be restarted in place, and the end-of-run scan of every topic with a
``read_committed`` consumer: records per topic, duplicate CloudEvent ids per topic, record
timestamps for the timeline and the resume measurements (event topics only: the state topics are
compacted, so their history is gone by the end of a run), and the Canvas event ids the audit
pollers published.

The scan uses aiokafka directly (not the worker's reader) so the harness does not depend on the
worker's internal Kafka wrappers, which change with the code under test.
"""

from __future__ import annotations

import shutil
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local_kafka import LocalKafka, free_port

BIN_SECONDS = 5.0
AUDIT_TOPICS = {"edusync.canvas.grade-changes": "grade_changes", "edusync.canvas.course-events": "course_events"}


class Broker:
    """One local broker that the bench can stop and start again on the same ports and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.kafka = LocalKafka(data_dir=data_dir, port=free_port(), controller_port=free_port())
        self.restarts: list[dict[str, float]] = []

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def up(self) -> str:
        return self.kafka.up()

    def restart(self) -> dict[str, float]:
        """``down()`` then ``up()``; epoch seconds of each step."""
        began = time.time()
        self.kafka.down()
        down = time.time()
        # The launcher waits for "Kafka Server started" in server.log; the first start's line is
        # still there, so move the old log aside for the second start to be waited for honestly.
        log = self.data_dir / "server.log"
        if log.exists():
            log.rename(self.data_dir / f"server.before-restart-{len(self.restarts)}.log")
        self.kafka.up()
        step = {"began": began, "down": down, "up": time.time()}
        self.restarts.append(step)
        return step

    def down(self) -> None:
        self.kafka.down()

    def remove_data(self) -> None:
        shutil.rmtree(self.data_dir / "logs", ignore_errors=True)


def is_event_topic(topic: str) -> bool:
    """Topics of CloudEvents (not state stores, not dead letters)."""
    return topic.startswith("edusync.") and not topic.startswith(("edusync._", "edusync.dlq."))


def family(topic: str) -> str:
    """The timeline's grouping of topics."""
    if topic.startswith("edusync.illuminate."):
        return "illuminate"
    if topic.startswith("edusync.canvas."):
        return "canvas audit"
    if topic.startswith("edusync.abconnect."):
        return "abconnect"
    if topic == "edusync._ledger":
        return "ledger writes"
    return topic.removeprefix("edusync.")


@dataclass
class TopicScan:
    """What the committed records of every topic say."""

    records: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    unique_ids: dict[str, int] = field(default_factory=dict)
    duplicate_ids: dict[str, int] = field(default_factory=dict)  # ids seen more than once
    duplicate_copies: dict[str, int] = field(default_factory=dict)  # records beyond the first of each id
    duplicate_examples: dict[str, list[str]] = field(default_factory=dict)
    unparsed: dict[str, int] = field(default_factory=dict)
    incomplete: dict[str, str] = field(default_factory=dict)
    # family -> bin index -> records (bins of BIN_SECONDS from t0)
    timeline: dict[str, dict[int, int]] = field(default_factory=dict)
    # tenant -> sorted event record timestamps (epoch s), every event topic
    tenant_events: dict[str, list[float]] = field(default_factory=dict)
    # tenant -> audit kind -> Canvas event ids published
    audit_ids: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    seconds: float = 0.0

    def next_event_after(self, tenant: str, t: float) -> float | None:
        """The first event record of ``tenant`` timestamped after ``t``."""
        times = self.tenant_events.get(tenant, [])
        i = bisect_right(times, t)
        return times[i] if i < len(times) else None

    def as_json(self) -> dict[str, Any]:
        return {"records": self.records, "events": self.events,
                "unique_ids": self.unique_ids,
                "duplicate_ids": self.duplicate_ids, "duplicate_copies": self.duplicate_copies,
                "duplicate_examples": self.duplicate_examples, "unparsed": self.unparsed,
                "incomplete": self.incomplete, "seconds": round(self.seconds, 1),
                "timeline": {f: {str(k): v for k, v in sorted(bins.items())} for f, bins in self.timeline.items()},
                "bin_seconds": BIN_SECONDS}


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if not t.startswith("__"))
    finally:
        await admin.close()


async def scan_topics(bootstrap: str, t0: float, timeout: float = 300.0, only: Iterable[str] | None = None
                      ) -> TopicScan:
    """Read every edusync topic (or those in ``only``) from the beginning to its high watermark,
    committed records only, every partition of every topic in one assignment."""
    started = time.monotonic()
    scan = TopicScan()
    wanted = None if only is None else set(only)
    topics = [t for t in await list_topics(bootstrap) if t.startswith("edusync.") and (wanted is None or t in wanted)]
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_uncommitted",
                             enable_auto_commit=False, group_id=None)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    await probe.start()
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions: list[TopicPartition] = []
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or set())]
            if not parts:
                scan.incomplete[topic] = "no partitions in the metadata"
            partitions += parts
        readers = {topic: _TopicReader(topic, scan, t0) for topic in topics}
        if partitions:
            end = await probe.end_offsets(partitions)
            await _read(consumer, partitions, end, readers, scan, started + timeout)
        for reader in readers.values():
            reader.finish()
    finally:
        await consumer.stop()
        await probe.stop()
    for times in scan.tenant_events.values():
        times.sort()
    scan.seconds = time.monotonic() - started
    return scan


async def _read(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], end: dict[TopicPartition, int],
                readers: dict[str, _TopicReader], scan: TopicScan, deadline: float) -> None:
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    pending = {tp for tp in partitions if end[tp] > 0}
    last_progress = time.monotonic()
    while pending:
        if time.monotonic() > deadline or time.monotonic() - last_progress > 30.0:
            for tp in pending:
                scan.incomplete[tp.topic] = "stopped short of the end of a partition"
            break
        batch = await consumer.getmany(*pending, timeout_ms=300, max_records=20000)
        if batch:
            last_progress = time.monotonic()
        for tp, records in batch.items():
            readers[tp.topic].take(records)
        for tp in list(pending):
            if await consumer.position(tp) >= end[tp]:
                pending.discard(tp)


class _TopicReader:
    """Counts one topic's records as they come."""

    def __init__(self, topic: str, scan: TopicScan, t0: float) -> None:
        self.topic, self.scan, self.t0 = topic, scan, t0
        self.ids: Counter[str] = Counter()
        self.events = self.count = self.unparsed = 0
        fam = family(topic)
        self.bins = scan.timeline.setdefault(fam, {})
        self.binned = fam in ("illuminate", "canvas audit", "abconnect", "ledger writes") or topic.startswith(
            "edusync.dlq.") or topic == "edusync.matrixlms.reconcile"
        self.event_topic = is_event_topic(topic)
        self.audit_kind = AUDIT_TOPICS.get(topic)

    def take(self, records: list[Any]) -> None:
        scan = self.scan
        for r in records:
            self.count += 1
            stamp = r.timestamp / 1000.0
            key = (r.key or b"").decode(errors="replace")
            if self.binned:
                slot = int((stamp - self.t0) // BIN_SECONDS)
                self.bins[slot] = self.bins.get(slot, 0) + 1
            if not self.event_topic or r.value is None:
                continue
            self.events += 1
            try:
                body = orjson.loads(r.value)
                self.ids[str(body["id"])] += 1
            except (orjson.JSONDecodeError, KeyError, TypeError):
                self.unparsed += 1
                continue
            tenant = key.split("/", 1)[0]
            scan.tenant_events.setdefault(tenant, []).append(stamp)
            if self.audit_kind is not None:
                data = body.get("data") or {}
                event_id = data.get("event_id") if isinstance(data, dict) else None
                if event_id:
                    scan.audit_ids.setdefault(tenant, {}).setdefault(self.audit_kind, set()).add(str(event_id))

    def finish(self) -> None:
        scan, topic = self.scan, self.topic
        scan.records[topic] = self.count
        if self.event_topic:
            scan.events[topic] = self.events
            scan.unique_ids[topic] = len(self.ids)
            dupes = {i: n for i, n in self.ids.items() if n > 1}
            scan.duplicate_ids[topic] = len(dupes)
            scan.duplicate_copies[topic] = sum(n - 1 for n in dupes.values())
            scan.duplicate_examples[topic] = sorted(dupes, key=lambda i: -dupes[i])[:3]
            scan.unparsed[topic] = self.unparsed
