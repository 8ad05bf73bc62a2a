"""Generic snapshot diff: records in, upsert events and snapshot writes out; keys a complete
walk did not see become deletion candidates, confirmed by the next complete walk and guarded
against mass deletion (api/illuminate.md 6.2 A.3-A.4).

Deletion lifecycle of one key, driven by the poller after each complete, consistent walk:

1. missing for the first time -> marked pending (``{"hash", "pending": true}``), nothing published;
2. seen again -> pending cleared, an upsert only if its content changed;
3. still missing after the next complete walk -> a delete event and a snapshot tombstone.

If more than ``max_share`` of the stored keys (and more than ``min_count``) are missing at
once, none of them is touched: the poller holds them back and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import structlog

from schemas.envelope import CloudEvent, make_event
from schemas.illuminate import DELETED, UPSERT_PAYLOADS, UPSERTED, DeletedV1, join_key, split_key
from worker.clients.illuminate_models import IlluminateRecord
from worker.poller_frame import Outbound, StateWrite
from worker.pollers.snapshot_store import Section, Seen, SnapshotStore, hash64, hex64, stored_value

log = structlog.get_logger(__name__)

Detector = Literal["snapshot_diff", "score_reconciliation"]


@dataclass(frozen=True)
class DeletionGuard:
    """Hold back deletions when more than ``max_share`` of the stored keys (and more than
    ``min_count`` keys) would be deleted at once."""

    max_share: float = 0.1
    min_count: int = 10

    def holds(self, candidates: int, stored: int) -> bool:
        """True if deleting ``candidates`` of ``stored`` records needs an operator's look."""
        return candidates > self.min_count and candidates > self.max_share * stored


@dataclass
class Changes:
    """What one step produced: events and snapshot writes for one transaction, plus counts."""

    events: list[Outbound] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)
    upserts: int = 0
    duplicates: int = 0
    deleted: int = 0
    marked: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeletionPlan:
    """The keys a complete walk did not see, and whether the guard holds them back."""

    candidates: list[str]
    stored: int
    held: bool


@dataclass
class Settlement:
    """The deletion candidates of one complete walk, settled a chunk per transaction."""

    walk: int
    tag: int
    started: datetime
    keys: list[str]
    offset: int = 0
    deleted: int = 0
    marked: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """True once every candidate is settled."""
        return self.offset >= len(self.keys)

    def step(self, differ: Differ, size: int, now: datetime) -> Changes:
        """Settle the next ``size`` candidates."""
        chunk = self.keys[self.offset:self.offset + size]
        self.offset += len(chunk)
        changes = differ.settle(chunk, self.tag, self.walk, f"settle walk {self.walk}", now)
        self.deleted += changes.deleted
        self.marked.extend(changes.marked)
        return changes


def partition_key(tenant: str, kind: str, natural: str) -> str | None:
    """The Kafka key when it is not the subject: roster rows go by their section (FLOWS.md decision
    4), so one batch holds a section's rows together and in order; so do a section's teacher rows,
    so one lane alone makes the section's class (MatrixLMS has no key that would refuse a second)."""
    if kind in ("roster", "section"):
        return f"{tenant}/section/{join_key(split_key(natural)[0])}"
    return None


class Differ:
    """Diffs records of one kind against the snapshot section and builds the events."""

    def __init__(
        self, *, tenant: str, source: str, kind: str, topic: str, store: SnapshotStore, detector: Detector,
    ) -> None:
        self.tenant = tenant
        self.source = source
        self.kind = kind
        self.topic = topic
        self.store = store
        self.detector = detector
        self.payload = UPSERT_PAYLOADS[kind]
        self.upserted_type = UPSERTED[kind]
        self.deleted_type = DELETED[kind]
        self.section: Section | None = None

    def _loaded(self) -> Section:
        if self.section is None:
            raise RuntimeError(f"snapshot section {self.kind} is not loaded")
        return self.section

    def page(self, records: Sequence[IlluminateRecord], tag: int, upstream: str, now: datetime, *,
             walk: int) -> Changes:
        """Compare one page of walk number ``walk`` with the snapshot: upsert events and hash
        writes for what changed. Memory is updated at once; the caller reloads the section if the
        transaction fails."""
        section = self._loaded()
        out = Changes()
        for record in records:
            natural = record.natural_key()
            digest = hash64(record.content_hash())
            seen = section.observe(natural, digest, tag)
            out.duplicates += seen.duplicate
            if seen.seen is Seen.SAME:
                continue
            out.writes.append(StateWrite(self.store, self.store.key(self.kind, natural), stored_value(digest)))
            if seen.seen is Seen.REVIVED:
                continue  # back after a miss with the same content: only the pending mark goes
            out.events.append(Outbound(self.topic, self._upsert(record, natural, digest, seen.previous, walk,
                                                                upstream, now)))
            out.upserts += 1
        return out

    def plan(self, tag: int, guard: DeletionGuard, eligible: Callable[[str], bool] | None = None) -> DeletionPlan:
        """Keys walk ``tag`` did not see, and the guard's verdict on deleting them."""
        section = self._loaded()
        candidates = section.unseen(tag, eligible)
        stored = section.count(eligible)
        return DeletionPlan(candidates, stored, guard.holds(len(candidates), stored))

    def settle(self, keys: Sequence[str], tag: int, walk: int, upstream: str, now: datetime) -> Changes:
        """Missing keys: a pending one is deleted (event + tombstone), a new one marked pending."""
        section = self._loaded()
        out = Changes()
        for natural in keys:
            digest = section.hash_of(natural)
            if digest is None:
                continue
            store_key = self.store.key(self.kind, natural)
            if section.is_pending(natural):
                section.apply(natural, None)
                out.writes.append(StateWrite(self.store, store_key, None))
                out.events.append(Outbound(self.topic, self._delete(natural, digest, walk, upstream, now)))
                out.deleted += 1
            else:
                value = stored_value(digest, pending=True)
                section.apply(natural, value)
                section.mark_handled(natural, tag)
                out.writes.append(StateWrite(self.store, store_key, value))
                out.marked.append(natural)
        return out

    def delete(self, keys: Sequence[str], walk: int, upstream: str, now: datetime) -> Changes:
        """Delete events and tombstones for ``keys`` at once (deletions an operator approved)."""
        section = self._loaded()
        out = Changes()
        for natural in keys:
            digest = section.hash_of(natural)
            if digest is None:
                continue
            section.apply(natural, None)
            out.writes.append(StateWrite(self.store, self.store.key(self.kind, natural), None))
            out.events.append(Outbound(self.topic, self._delete(natural, digest, walk, upstream, now)))
            out.deleted += 1
        return out

    def keep(self, keys: Sequence[str]) -> Changes:
        """Mark ``keys`` kept (a deletion an operator rejected): no event, never a candidate again
        until upstream shows them (``Seen.REVIVED`` clears the mark)."""
        section = self._loaded()
        out = Changes()
        for natural in keys:
            digest = section.hash_of(natural)
            if digest is None:
                continue
            value = stored_value(digest, kept=True)
            section.apply(natural, value)
            out.writes.append(StateWrite(self.store, self.store.key(self.kind, natural), value))
        return out

    def _upsert(
        self, record: IlluminateRecord, natural: str, digest: int, previous: int | None, walk: int,
        upstream: str, now: datetime,
    ) -> CloudEvent:
        before = hex64(previous) if previous is not None else None
        # The walk is part of the version: a record dropped and re-created with the same content
        # (a re-enrolment), or changed back and then again (A>B, B>A, A>B), is a new event id, not
        # a copy of the earlier one. The walk number comes from the committed cursor, so a retried
        # poll makes the same id.
        # The client record is mapped onto the published contract (schemas/illuminate_records.py).
        payload = self.payload.model_validate({
            "natural_key": natural, "key_parts": split_key(natural), "content_hash": hex64(digest),
            "previous_hash": before, "record": record.model_dump(),
        })
        return make_event(
            tenant=self.tenant, source=self.source, type=self.upserted_type,
            subject=self.store.key(self.kind, natural), version=f"{before or 'new'}>{hex64(digest)}@{walk}",
            data=payload, time=now, upstreamcursor=upstream,
            partitionkey=partition_key(self.tenant, self.kind, natural),
        )

    def _delete(self, natural: str, digest: int, walk: int, upstream: str, now: datetime) -> CloudEvent:
        payload = DeletedV1(natural_key=natural, key_parts=split_key(natural), last_content_hash=hex64(digest),
                            detected_by=self.detector, walk=walk)
        # The walk makes delete -> re-create -> delete two different events.
        return make_event(
            tenant=self.tenant, source=self.source, type=self.deleted_type,
            subject=self.store.key(self.kind, natural), version=f"{hex64(digest)}>deleted@{walk}",
            data=payload, time=now, upstreamcursor=upstream,
            partitionkey=partition_key(self.tenant, self.kind, natural),
        )


class CommitTracker:
    """Trusts a poller's memory only while the cursor it is handed is the one it returned last.

    Every cursor a poller returns carries a new ``seq``; a different ``seq`` coming back means the
    last transaction did not commit (or the process restarted), so the memory updated for it is
    ahead of Kafka: the poller's snapshot section is reloaded and its walk restarted.
    """

    def __init__(self, differ: Differ, *, tenant: str, poller: str) -> None:
        self.differ = differ
        self.tenant = tenant
        self.poller = poller
        self.expected_seq: int | None = None
        self.dirty = False

    async def sync(self, committed_seq: int) -> bool:
        """Load or reload the section as needed; True if the poller must drop its walk state."""
        store = self.differ.store
        if self.differ.section is None:
            self.differ.section = await store.section(self.differ.kind)
            self.expected_seq = committed_seq
            return True
        if self.dirty or committed_seq != self.expected_seq:
            log.warning("previous poll result was not committed; reloading the snapshot and restarting the walk",
                        tenant=self.tenant, poller=self.poller, committed_seq=committed_seq,
                        expected_seq=self.expected_seq)
            self.differ.section = await store.reload(self.differ.kind)
            self.dirty = False
            self.expected_seq = committed_seq
            return True
        return False

    def returned(self, seq: int) -> None:
        """Note the ``seq`` of the cursor just handed to the runner."""
        self.expected_seq = seq
