"""Snapshot-diff pollers for Illuminate entities without a change filter (ref 6.2 A): students,
staff, sections, rosters, enrollments, courses and terms, one poller per entity and tenant.

Each poll handles ONE page, so one Kafka transaction holds that page's upsert events, the new
snapshot hashes and the cursor. A walk is every page of the entity, from page 1; the client
checks the totals stay put (``MalformedResponseError`` otherwise). When the last page is in,
the keys the walk did not see are deletion candidates (``snapshot_diff``), settled in further
polls of at most ``settle_chunk`` keys each.

Crash safety: memory (the walk's progress and the snapshot hashes already updated for the page
being published) is trusted only while the cursor handed to ``poll`` is the one this poller
returned last. Otherwise the last transaction did not commit: the poller reloads its snapshot
section from Kafka and starts a new walk from page 1. Records whose events did commit have their
hash stored too, so the new walk publishes exactly what is still unpublished.

Cursor (``edusync._cursors``, key ``<tenant>/illuminate.<entity>``)::

    {"seq": 12, "phase": "idle|walk|settle", "walk": 3, "page": 4, "num_pages": 20,
     "num_results": 19873, "scope": "2023-08-15..2024-06-14", "completed_walks": 2,
     "last_walk_at": "2024-02-01T10:00:00Z", "held": 0}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from schemas.illuminate import ENTITY_KIND
from worker.clients.errors import MalformedResponseError
from worker.clients.illuminate import SYSTEM, IlluminateClient, Page
from worker.controls import poller_control_name, shared_controls
from worker.metrics import DELETIONS_HELD
from worker.poller_frame import PollResult, StateWrite
from worker.pollers.deletion_holds import HoldDecision, HoldSummary, decision_for, hold_key, summarize
from worker.pollers.illuminate_scope import DateScope, ScopeSource
from worker.pollers.snapshot_diff import Changes, CommitTracker, DeletionGuard, Differ, Settlement
from worker.pollers.snapshot_store import SnapshotStore, walk_tag
from worker.state_store import StateStore
from worker.topics import OPERATOR_CONTROL, illuminate_topic

log = structlog.get_logger(__name__)

Fetch = Callable[[IlluminateClient, DateScope | None], AsyncIterator[Page[Any]]]


def _start(scope: DateScope | None) -> date | None:
    return scope.start if scope else None


def _end(scope: DateScope | None) -> date | None:
    return scope.end if scope else None


@dataclass(frozen=True)
class EntitySpec:
    """How one entity is walked: the endpoint and whether it takes the date scope."""

    endpoint: str
    fetch: Fetch
    scoped: bool = True


ENTITIES: dict[str, EntitySpec] = {
    "students": EntitySpec("Students2", lambda c, s: c.students(start_date=_start(s), end_date=_end(s))),
    "staff": EntitySpec("Users", lambda c, s: c.users(), scoped=False),
    "sections": EntitySpec("MasterSchedule", lambda c, s: c.master_schedule(start_date=_start(s), end_date=_end(s))),
    "rosters": EntitySpec("Roster", lambda c, s: c.roster(start_date=_start(s), end_date=_end(s))),
    "enrollments": EntitySpec("Enrollment", lambda c, s: c.enrollment(start_date=_start(s), end_date=_end(s))),
    "courses": EntitySpec("Courses", lambda c, s: c.courses(start_date=_start(s), end_date=_end(s))),
    # Terms' dates default to the session (ref L257): no scope needed.
    "terms": EntitySpec("Terms", lambda c, s: c.terms(), scoped=False),
}


class SnapshotCursor(BaseModel):
    """The committed progress of a snapshot poller."""

    model_config = ConfigDict(extra="ignore")

    seq: int = 0
    phase: Literal["idle", "walk", "settle"] = "idle"
    walk: int = 0
    page: int = 0
    num_pages: int = 0
    num_results: int = 0
    scope: str | None = None
    completed_walks: int = 0
    last_walk_at: datetime | None = None
    held: int = 0
    hold: HoldSummary | None = None  # what ``held`` counts, for ``edusync holds show``


@dataclass
class _Walk:
    number: int
    tag: int
    scope: DateScope | None
    started: datetime
    pages: AsyncIterator[Page[Any]]
    seen: int = 0
    duplicates: int = 0
    upserts: int = 0


class IlluminateSnapshotPoller:
    """Walks one entity page by page and publishes upserts and confirmed deletes."""

    def __init__(
        self, tenant: str, entity: str, client: IlluminateClient, store: SnapshotStore, *, source: str,
        scopes: ScopeSource, guard: DeletionGuard | None = None, settle_chunk: int = 5000,
    ) -> None:
        if entity not in ENTITIES:
            raise ValueError(f"unknown Illuminate entity {entity!r}; expected one of {', '.join(ENTITIES)}")
        self.tenant = tenant
        self.entity = entity
        self.name = f"illuminate.{entity}"
        self.kind = ENTITY_KIND[entity]
        self.spec = ENTITIES[entity]
        self.client = client
        self.store = store
        self.scopes = scopes
        self.guard = guard or DeletionGuard()
        self.settle_chunk = settle_chunk
        store.register(self.kind)
        self.differ = Differ(tenant=tenant, source=source, kind=self.kind, topic=illuminate_topic(entity),
                             store=store, detector="snapshot_diff")
        self.commits = CommitTracker(self.differ, tenant=tenant, poller=self.name)
        self._walk: _Walk | None = None
        self._settle: Settlement | None = None
        self._settle_stats: dict[str, int] = {}
        self.component = poller_control_name(tenant, self.name)
        self._control_writes: StateStore | None = None

    async def poll(self, cursor: Any) -> PollResult:
        """One page of the current walk, or one chunk of its deletions."""
        cur = SnapshotCursor.model_validate(cursor) if cursor is not None else SnapshotCursor()
        if await self.commits.sync(cur.seq):
            await self._abandon()
            self._settle = None
        try:
            result = self._settle_step(cur) if self._settle is not None else await self._walk_step(cur)
        except BaseException:
            # A failed page ends the walk (the page iterator is spent); the next poll starts a
            # new one from page 1. Nothing of a half-walk is ever used for deletions.
            await self._abandon()
            raise
        self.commits.returned(result.cursor["seq"])
        return result

    async def _abandon(self) -> None:
        walk, self._walk = self._walk, None
        closer = getattr(walk.pages, "aclose", None) if walk else None
        if closer is not None:
            await closer()

    async def _walk_step(self, cur: SnapshotCursor) -> PollResult:
        if self._walk is None:
            scope = await self.scopes.current() if self.spec.scoped else None
            number = cur.walk + 1
            self._walk = _Walk(number, walk_tag(number), scope, datetime.now(UTC),
                               self.spec.fetch(self.client, scope))
        walk = self._walk
        try:
            page = await anext(walk.pages)
        except StopAsyncIteration:
            raise MalformedResponseError(SYSTEM, f"{self.spec.endpoint}: walk ended before its last page") from None
        now = datetime.now(UTC)
        upstream = f"{self.spec.endpoint} walk {walk.number} page {page.page}/{page.num_pages}"
        self.commits.dirty = True
        changes = self.differ.page(page.records, walk.tag, upstream, now, walk=walk.number)
        walk.seen += len(page.records)
        walk.duplicates += changes.duplicates
        walk.upserts += changes.upserts
        cursor = cur.model_copy(update={
            "seq": cur.seq + 1, "phase": "walk", "walk": walk.number, "page": page.page,
            "num_pages": page.num_pages, "num_results": page.num_results,
            "scope": walk.scope.label() if walk.scope else None,
        })
        if page.is_last:
            self._walk = None
            result = self._complete(walk, page.num_results, cursor, changes)
        else:
            result = _result(changes, cursor, more=True)
        result.progress = (page.page, page.num_pages)  # pages of this walk, for progress lines
        self.commits.dirty = False
        return result

    def _complete(self, walk: _Walk, num_results: int, cursor: SnapshotCursor, changes: Changes) -> PollResult:
        """The last page is in: decide about deletions."""
        done = cursor.model_copy(update={"phase": "idle", "completed_walks": cursor.completed_walks + 1,
                                         "last_walk_at": walk.started})
        labels = (self.tenant, self.name)
        if walk.duplicates or walk.seen != num_results:
            log.warning("snapshot walk was not a consistent snapshot; deletions not computed this time",
                        tenant=self.tenant, poller=self.name, walk=walk.number, records=walk.seen,
                        num_results=num_results, duplicate_keys=walk.duplicates)
            return _result(changes, done, newest=walk.started)
        section = self.differ.section
        assert section is not None
        plan = self.differ.plan(walk.tag, self.guard, lambda key: not section.is_kept(key))
        if plan.held:
            hold = summarize(self.entity, plan.candidates, plan.stored, walk.number)
            decision = decision_for(shared_controls(self.store.kafka), self.component)
            if decision is not None and decision.fingerprint == hold.fingerprint:
                DELETIONS_HELD.labels(*labels).set(0)
                return self._decided(decision, plan.candidates, walk, done, changes)
            DELETIONS_HELD.labels(*labels).set(len(plan.candidates))
            log.warning(
                "mass deletion held back: too large a share of this entity is missing; nothing deleted",
                tenant=self.tenant, poller=self.name, entity=self.entity, missing=len(plan.candidates),
                stored=plan.stored, share=round(len(plan.candidates) / max(plan.stored, 1), 4),
                max_delete_share=self.guard.max_share, walk=walk.number,
                action="check the upstream; raise illuminate.max_delete_share to let them go",
            )
            return _result(changes, done.model_copy(update={"held": len(plan.candidates), "hold": hold}),
                           newest=walk.started)
        DELETIONS_HELD.labels(*labels).set(0)
        if plan.candidates:
            self._settle = Settlement(walk.number, walk.tag, walk.started, plan.candidates)
            self._settle_stats = {"records": walk.seen, "upserts": walk.upserts}
            return _result(changes, cursor.model_copy(update={"phase": "settle", "held": 0, "hold": None}), more=True)
        log.info("snapshot walk complete", tenant=self.tenant, poller=self.name, walk=walk.number,
                 records=walk.seen, upserts=walk.upserts, deleted=0, pending=0)
        return _result(changes, done.model_copy(update={"held": 0, "hold": None}), newest=walk.started)

    def _decided(self, decision: HoldDecision, keys: list[str], walk: _Walk, done: SnapshotCursor,
                 changes: Changes) -> PollResult:
        """Apply an operator's decision on exactly the held ``keys``, and clear it, in this poll's
        transaction: approved, their delete events; rejected, a kept mark on each."""
        now = datetime.now(UTC)
        if decision.decision == "approve":
            acted = self.differ.delete(keys, walk.number, f"{self.spec.endpoint} walk {walk.number} approved", now)
        else:
            acted = self.differ.keep(keys)
        self._control_writes = self._control_writes or StateStore(self.store.kafka, OPERATOR_CONTROL)
        changes.events += acted.events
        changes.writes += [*acted.writes, StateWrite(self._control_writes, hold_key(self.component), None)]
        log.warning("held deletions approved: published" if decision.decision == "approve"
                    else "held deletions rejected: records kept", tenant=self.tenant, poller=self.name,
                    entity=self.entity, count=len(keys), deleted=acted.deleted, walk=walk.number,
                    requested_by=decision.requested_by, requested_at=decision.requested_at.isoformat())
        return _result(changes, done.model_copy(update={"held": 0, "hold": None}), newest=walk.started)

    def _settle_step(self, cur: SnapshotCursor) -> PollResult:
        settle = self._settle
        assert settle is not None
        self.commits.dirty = True
        changes = settle.step(self.differ, self.settle_chunk, datetime.now(UTC))
        cursor = cur.model_copy(update={"seq": cur.seq + 1, "phase": "settle"})
        if settle.done:
            self._settle = None
            cursor = cursor.model_copy(update={"phase": "idle", "completed_walks": cur.completed_walks + 1,
                                               "last_walk_at": settle.started})
            log.info("snapshot walk complete", tenant=self.tenant, poller=self.name, walk=settle.walk,
                     deleted=settle.deleted, pending=len(settle.marked), **self._settle_stats)
        self.commits.dirty = False
        return _result(changes, cursor, more=not settle.done, newest=settle.started if settle.done else None)


def _result(
    changes: Changes, cursor: SnapshotCursor, *, more: bool = False, newest: datetime | None = None,
) -> PollResult:
    return PollResult(events=changes.events, cursor=cursor.model_dump(mode="json"), more=more, newest_time=newest,
                      state=changes.writes)
