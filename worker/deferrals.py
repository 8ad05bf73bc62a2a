"""Durable deferral of events whose prerequisite is not in the target yet.

A handler raises ``PrerequisiteMissing`` (an enrolment before its user); the frame parks the event
here instead of blocking its partition. Parked events live on the compacted topic
``edusync._deferred`` (key ``handler/topic/partition/offset``), written in the same transaction as
the consumer offset that moves past them, so a SIGKILL loses none and parks none twice.

Order per entity is kept: while an event of a subject is parked, later events of that subject are
parked behind it (a drop must not overtake the enrolment it drops). Each subject's chain is retried
head first when due: on a backoff schedule, or at once when the ledger key the head waits for is
written. A head still missing its prerequisite after ``max_defer`` is dead-lettered as
"prerequisite never appeared: ...", and the next event of the chain gets its turn.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from schemas.dead_letter import OriginalRecord
from worker.kafka.connection import Kafka
from worker.state_store import StateStore
from worker.topics import DEFERRED

RETRY_FIRST = 1.0
RETRY_CAP = 60.0


class DeferredEntry(BaseModel):
    """One parked event: the original record, why it waits, and when it is next tried."""

    subject: str
    reason: str
    waits_for: str | None = None
    first_deferred_at: float
    due_at: float
    attempts: int = 1
    original: OriginalRecord


@dataclass(frozen=True)
class DueEvent:
    """A chain head whose turn has come."""

    key: str
    entry: DeferredEntry


class DeferralStore:
    """One handler's parked events, in memory and mirrored on ``edusync._deferred``."""

    def __init__(
        self, kafka: Kafka, handler: str, max_defer: float, *, clock: Callable[[], float] = time.time,
    ) -> None:
        self.handler = handler
        self.max_defer = max_defer
        self._clock = clock
        self.store = StateStore(kafka, DEFERRED, prefix=f"{handler}/")
        self._entries: dict[str, DeferredEntry] = {}
        self._chains: dict[str, list[str]] = defaultdict(list)  # subject -> keys, oldest first
        self._waiting: dict[str, set[str]] = defaultdict(set)  # ledger key -> entry keys

    async def restore(self) -> int:
        """Load this handler's parked events; returns how many."""
        await self.store.restore()
        entries = [(key, DeferredEntry.model_validate(value)) for key, value in self.store.items(f"{self.handler}/")]
        # Chains in arrival order, as they were built.
        for key, entry in sorted(entries, key=lambda e: (e[1].first_deferred_at, e[1].original.offset)):
            self._index(key, entry)
        return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> set[str]:
        """The keys of every parked event."""
        return set(self._entries)

    def blocks(self, subject: str) -> str | None:
        """The key of the parked event a new event of ``subject`` must wait behind, if any."""
        chain = self._chains.get(subject)
        return chain[0] if chain else None

    def park(
        self, original: OriginalRecord, subject: str, reason: str, waits_for: str | None = None,
    ) -> str:
        """Park an event that just arrived; it joins the end of its subject's chain."""
        key = f"{self.handler}/{original.topic}/{original.partition}/{original.offset}"
        now = self._clock()
        entry = DeferredEntry(subject=subject, reason=reason, waits_for=waits_for, first_deferred_at=now,
                              due_at=now + RETRY_FIRST, original=original)
        self._index(key, entry)
        self._save(key, entry)
        return key

    def due(self, limit: int) -> list[DueEvent]:
        """Chain heads whose time has come, oldest first, at most ``limit``."""
        now = self._clock()
        heads = [(self._entries[keys[0]], keys[0]) for keys in self._chains.values() if keys]
        ready = sorted((e.due_at, k) for e, k in heads if e.due_at <= now)
        return [DueEvent(k, self._entries[k]) for _, k in ready[:limit]]

    def next_due(self) -> float | None:
        """When the earliest chain head is due (Unix time), or None with nothing parked."""
        heads = [self._entries[keys[0]].due_at for keys in self._chains.values() if keys]
        return min(heads) if heads else None

    def expired(self, entry: DeferredEntry) -> bool:
        """True once the entry has waited longer than ``max_defer``."""
        return self._clock() - entry.first_deferred_at >= self.max_defer

    def again(self, key: str, reason: str, waits_for: str | None) -> None:
        """The head is still missing its prerequisite: back off and wait again."""
        entry = self._entries[key]
        delay = min(RETRY_CAP, RETRY_FIRST * 2 ** min(entry.attempts, 16))
        updated = entry.model_copy(update={"reason": reason, "waits_for": waits_for,
                                           "attempts": entry.attempts + 1, "due_at": self._clock() + delay})
        self._unwait(key, entry)
        self._entries[key] = updated
        if waits_for:
            self._waiting[waits_for].add(key)
        self._save(key, updated)

    def resolve(self, key: str) -> None:
        """The event is done (applied, or dead-lettered): drop it; the next in its chain is due now."""
        entry = self._entries.pop(key)
        self._unwait(key, entry)
        chain = self._chains[entry.subject]
        chain.remove(key)
        if chain:
            self._wake(chain[0])
        else:
            del self._chains[entry.subject]
        self.store.stage(key, None)

    def ledger_changed(self, ledger_key: str) -> bool:
        """A ledger entry was written: heads waiting for it are due now. True if any woke."""
        keys = self._waiting.pop(ledger_key, None)
        if not keys:
            return False
        for key in keys:
            self._wake(key)
        return True

    def _wake(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.due_at > self._clock():
            self._entries[key] = entry.model_copy(update={"due_at": self._clock()})

    def _index(self, key: str, entry: DeferredEntry) -> None:
        self._entries[key] = entry
        self._chains[entry.subject].append(key)
        if entry.waits_for:
            self._waiting[entry.waits_for].add(key)

    def _unwait(self, key: str, entry: DeferredEntry) -> None:
        if entry.waits_for and entry.waits_for in self._waiting:
            self._waiting[entry.waits_for].discard(key)
            if not self._waiting[entry.waits_for]:
                del self._waiting[entry.waits_for]

    def _save(self, key: str, entry: DeferredEntry) -> None:
        self.store.stage(key, entry.model_dump(mode="json"))
