"""``modified_after`` pollers for assessment scores (ref 2.2, 6.2 B), one per endpoint variant and
tenant, publishing to ``edusync.illuminate.assessment-scores``.

Incremental walk: ``modified_after = watermark - overlap_days`` (inclusive, day granularity,
unknown time zone, 2 h cache: ref 6.2 B.2) over the whole session (ref 6.2 B.3), every page,
one page per transaction. The overlap re-delivers rows already published; their content hash
equals the stored one (``edusync._snapshots``), so only real changes become events. The
watermark moves to the walk's start date (district local time) in the transaction of the LAST
page only, so a walk cut short is simply done again.

Reconciliation: deletes are invisible to ``modified_after`` (ref 6.2 B.6). The first run, and
every ``reconcile_every`` incremental walks, walks every assessment /Api/Assessments/ lists
(``assessment_id=``, no ``modified_after``); keys of an assessment walked completely (or of one
no longer listed) that the walk did not see are deletion candidates. As for snapshots
(``snapshot_diff``) a candidate is marked pending first, and deleted only if a second walk of
its assessment misses it too: a confirmation round right after, over just those assessments.

Cursor (``edusync._cursors``, key ``<tenant>/illuminate.scores.<variant>``)::

    {"seq": 40, "phase": "idle|incremental|reconcile|settle", "watermark": "2024-02-01",
     "walk": 9, "walk_date": "2024-02-02", "modified_after": "2024-01-31", "page": 2, "num_pages": 3,
     "since_reconcile": 4, "reconcile": {"targets": null, "index": 3, "assessments": 12},
     "confirm": ["7001"], "completed_walks": 8, "last_walk_at": "...", "held": 0}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from worker.clients.errors import MalformedResponseError
from worker.clients.illuminate import SYSTEM, IlluminateClient, Page, ScoreEndpoint
from worker.metrics import DELETIONS_HELD
from worker.poller_frame import PollResult
from worker.pollers.illuminate_scope import DateScope, ScopeSource
from worker.pollers.snapshot_diff import Changes, CommitTracker, DeletionGuard, Differ, Settlement
from worker.pollers.snapshot_store import SnapshotStore, walk_tag
from worker.topics import ILLUMINATE_ASSESSMENT_SCORES

log = structlog.get_logger(__name__)

VARIANTS: dict[ScoreEndpoint, tuple[str, str]] = {
    # variant -> (poller name suffix, kind)
    ScoreEndpoint.AGGREGATE: ("aggregate", "assessment_score"),
    ScoreEndpoint.GROUP: ("group", "assessment_group_score"),
    ScoreEndpoint.STANDARD: ("standard", "assessment_standard_score"),
}


class ReconcileProgress(BaseModel):
    """Where a reconciliation is: ``targets`` None means every assessment (a full round)."""

    targets: list[str] | None = None
    index: int = 0
    assessments: int = 0


class ScoresCursor(BaseModel):
    """The committed progress of a scores poller."""

    model_config = ConfigDict(extra="ignore")

    seq: int = 0
    phase: Literal["idle", "incremental", "reconcile", "settle"] = "idle"
    watermark: date | None = None
    walk: int = 0
    walk_date: date | None = None
    modified_after: date | None = None
    page: int = 0
    num_pages: int = 0
    since_reconcile: int = 0
    reconcile: ReconcileProgress | None = None
    confirm: list[str] = Field(default_factory=list)
    completed_walks: int = 0
    last_walk_at: datetime | None = None
    held: int = 0


@dataclass
class _Incremental:
    number: int
    tag: int
    started: datetime
    walk_date: date
    modified_after: date
    pages: AsyncIterator[Page[Any]]
    upserts: int = 0


@dataclass
class _Reconcile:
    number: int
    tag: int
    started: datetime
    walk_date: date
    scope: DateScope | None
    targets: frozenset[str] | None
    assessments: list[str]
    index: int = 0
    pages: AsyncIterator[Page[Any]] | None = None
    seen: int = 0
    upserts: int = 0
    # Assessments whose walk was not a clean snapshot: their keys are not deletion candidates.
    inconsistent: set[str] = field(default_factory=set)


def _assessment_of(natural_key: str) -> str:
    return natural_key.partition("/")[0]


class IlluminateScoresPoller:
    """Publishes changed assessment scores of one endpoint variant, and confirmed deletions."""

    def __init__(
        self, tenant: str, variant: ScoreEndpoint | str, client: IlluminateClient, store: SnapshotStore, *,
        source: str, scopes: ScopeSource, today: Callable[[], date], guard: DeletionGuard | None = None,
        reconcile_every: int = 96, overlap_days: int = 1, settle_chunk: int = 5000,
    ) -> None:
        self.variant = ScoreEndpoint(variant)
        suffix, self.kind = VARIANTS[self.variant]
        self.tenant = tenant
        self.name = f"illuminate.scores.{suffix}"
        self.client = client
        self.store = store
        self.scopes = scopes
        self.today = today
        self.guard = guard or DeletionGuard()
        self.reconcile_every = reconcile_every
        self.overlap = timedelta(days=overlap_days)
        self.settle_chunk = settle_chunk
        store.register(self.kind)
        self.differ = Differ(tenant=tenant, source=source, kind=self.kind, topic=ILLUMINATE_ASSESSMENT_SCORES,
                             store=store, detector="score_reconciliation")
        self.commits = CommitTracker(self.differ, tenant=tenant, poller=self.name)
        self._inc: _Incremental | None = None
        self._rec: _Reconcile | None = None
        self._settle: Settlement | None = None
        self._settled_round: _Reconcile | None = None

    async def poll(self, cursor: Any) -> PollResult:
        """One page of the current walk (starting one if idle), or one chunk of deletions."""
        cur = ScoresCursor.model_validate(cursor) if cursor is not None else ScoresCursor()
        if await self.commits.sync(cur.seq):
            await self._abandon()
        try:
            if self._settle is not None:
                result = self._settle_step(cur)
            elif self._rec is not None or self._inc is not None:
                result = await self._step(cur)
            else:
                await self._start(cur)
                result = await self._step(cur)
        except BaseException:
            await self._abandon()
            raise
        self.commits.returned(result.cursor["seq"])
        return result

    async def _abandon(self) -> None:
        """Forget the walk in progress; the next poll starts it again from its first page."""
        iterators = [w.pages for w in (self._inc, self._rec) if w is not None and w.pages is not None]
        self._inc = self._rec = None
        self._settle = None
        for pages in iterators:
            closer = getattr(pages, "aclose", None)
            if closer is not None:
                await closer()

    # -- starting a walk -------------------------------------------------------------------------

    async def _start(self, cur: ScoresCursor) -> None:
        """Resume what the cursor says was under way, else pick the next walk."""
        if cur.phase in ("reconcile", "settle") and cur.reconcile is not None:
            targets = cur.reconcile.targets
            await self._start_reconcile(cur, frozenset(targets) if targets is not None else None)
        elif cur.phase == "incremental" or (
            cur.watermark is not None and not cur.confirm and cur.since_reconcile < self.reconcile_every
        ):
            await self._start_incremental(cur)
        else:
            await self._start_reconcile(cur, frozenset(cur.confirm) if cur.confirm else None)

    async def _start_incremental(self, cur: ScoresCursor) -> None:
        assert cur.watermark is not None
        number = cur.walk + 1
        modified_after = cur.watermark - self.overlap
        scope = await self.scopes.current()
        pages = self.client.assessment_scores(
            self.variant, modified_after=modified_after,
            start_date=scope.start if scope else None, end_date=scope.end if scope else None,
        )
        self._inc = _Incremental(number, walk_tag(number), datetime.now(UTC), self.today(), modified_after, pages)

    async def _start_reconcile(self, cur: ScoresCursor, targets: frozenset[str] | None) -> None:
        number = cur.walk + 1
        started, walk_date = datetime.now(UTC), self.today()
        scope = await self.scopes.current()
        listed: set[str] = set()
        async for page in self.client.assessments():
            listed.update(a.assessment_id for a in page.records)
        chosen = listed if targets is None else listed & targets
        self._rec = _Reconcile(number, walk_tag(number), started, walk_date, scope, targets,
                               sorted(chosen, key=lambda a: (len(a), a)))
        log.info("score reconciliation started", tenant=self.tenant, poller=self.name, walk=number,
                 assessments=len(chosen), confirmation=targets is not None)

    # -- walking ---------------------------------------------------------------------------------

    async def _step(self, cur: ScoresCursor) -> PollResult:
        if self._inc is not None:
            return await self._incremental_step(cur, self._inc)
        assert self._rec is not None
        return await self._reconcile_step(cur, self._rec)

    async def _next_page(self, pages: AsyncIterator[Page[Any]]) -> Page[Any]:
        try:
            return await anext(pages)
        except StopAsyncIteration:
            raise MalformedResponseError(SYSTEM, f"{self.variant.value}: walk ended before its last page") from None

    async def _incremental_step(self, cur: ScoresCursor, walk: _Incremental) -> PollResult:
        page = await self._next_page(walk.pages)
        upstream = (f"{self.variant.value}?modified_after={walk.modified_after.isoformat()} "
                    f"walk {walk.number} page {page.page}/{page.num_pages}")
        self.commits.dirty = True
        changes = self.differ.page(page.records, walk.tag, upstream, datetime.now(UTC), walk=walk.number)
        walk.upserts += changes.upserts
        cursor = cur.model_copy(update={
            "seq": cur.seq + 1, "phase": "incremental", "walk": walk.number, "walk_date": walk.walk_date,
            "modified_after": walk.modified_after, "page": page.page, "num_pages": page.num_pages,
            "reconcile": None,
        })
        newest = None
        if page.is_last:
            self._inc = None
            # Every page is in: only now may the watermark move (ref 6.2 B.5).
            watermark = max(walk.walk_date, cur.watermark) if cur.watermark else walk.walk_date
            cursor = cursor.model_copy(update={
                "phase": "idle", "watermark": watermark, "since_reconcile": cur.since_reconcile + 1,
                "completed_walks": cur.completed_walks + 1, "last_walk_at": walk.started,
            })
            newest = walk.started
            log.info("score walk complete", tenant=self.tenant, poller=self.name, walk=walk.number,
                     modified_after=walk.modified_after.isoformat(), records=page.num_results,
                     upserts=walk.upserts, watermark=watermark.isoformat())
        self.commits.dirty = False
        return _result(changes, cursor, more=not page.is_last, newest=newest)

    async def _reconcile_step(self, cur: ScoresCursor, rec: _Reconcile) -> PollResult:
        changes = Changes()
        page_no = num_pages = 0
        if rec.index < len(rec.assessments):
            assessment = rec.assessments[rec.index]
            if rec.pages is None:
                rec.pages = self.client.assessment_scores(
                    self.variant, assessment_id=assessment,
                    start_date=rec.scope.start if rec.scope else None, end_date=rec.scope.end if rec.scope else None,
                )
                rec.seen = 0
            page = await self._next_page(rec.pages)
            upstream = f"{self.variant.value}?assessment_id={assessment} walk {rec.number} page {page.page}"
            self.commits.dirty = True
            changes = self.differ.page(page.records, rec.tag, upstream, datetime.now(UTC), walk=rec.number)
            rec.seen += len(page.records)
            rec.upserts += changes.upserts
            if changes.duplicates:
                rec.inconsistent.add(assessment)
            if page.is_last:
                if rec.seen != page.num_results:
                    rec.inconsistent.add(assessment)
                rec.pages = None
                rec.index += 1
            page_no, num_pages = page.page, page.num_pages
        cursor = cur.model_copy(update={
            "seq": cur.seq + 1, "phase": "reconcile", "walk": rec.number, "walk_date": rec.walk_date,
            "modified_after": None, "page": page_no, "num_pages": num_pages,
            "reconcile": ReconcileProgress(targets=sorted(rec.targets) if rec.targets is not None else None,
                                           index=rec.index, assessments=len(rec.assessments)),
        })
        if rec.index < len(rec.assessments):
            self.commits.dirty = False
            return _result(changes, cursor, more=True)
        self._rec = None
        result = self._finish_reconcile(rec, cursor, changes)
        self.commits.dirty = False
        return result

    def _finish_reconcile(self, rec: _Reconcile, cursor: ScoresCursor, changes: Changes) -> PollResult:
        """Every assessment is walked: keys not seen are deletion candidates."""
        def eligible(natural_key: str) -> bool:
            assessment = _assessment_of(natural_key)
            return assessment not in rec.inconsistent and (rec.targets is None or assessment in rec.targets)

        if rec.inconsistent:
            log.warning("some assessments were not a consistent snapshot; their scores are not checked for "
                        "deletion this time", tenant=self.tenant, poller=self.name,
                        assessments=sorted(rec.inconsistent))
        plan = self.differ.plan(rec.tag, self.guard, eligible)
        labels = (self.tenant, self.name)
        if plan.held:
            DELETIONS_HELD.labels(*labels).set(len(plan.candidates))
            log.warning(
                "mass deletion of assessment scores held back: too large a share is missing; nothing deleted",
                tenant=self.tenant, poller=self.name, missing=len(plan.candidates), stored=plan.stored,
                max_delete_share=self.guard.max_share, walk=rec.number,
                action="check the upstream; raise illuminate.max_delete_share to let them go",
            )
            done = self._reconciled(cursor, rec, confirm=[])
            return _result(changes, done.model_copy(update={"held": len(plan.candidates)}), newest=rec.started)
        DELETIONS_HELD.labels(*labels).set(0)
        if plan.candidates:
            self._settle = Settlement(rec.number, rec.tag, rec.started, plan.candidates)
            self._settled_round = rec
            return _result(changes, cursor.model_copy(update={"phase": "settle", "held": 0}), more=True)
        log.info("score reconciliation complete", tenant=self.tenant, poller=self.name, walk=rec.number,
                 upserts=rec.upserts, deleted=0, pending=0)
        return _result(changes, self._reconciled(cursor, rec, confirm=[]).model_copy(update={"held": 0}),
                       newest=rec.started)

    def _settle_step(self, cur: ScoresCursor) -> PollResult:
        settle, rec = self._settle, self._settled_round
        assert settle is not None and rec is not None
        self.commits.dirty = True
        changes = settle.step(self.differ, self.settle_chunk, datetime.now(UTC))
        cursor = cur.model_copy(update={"seq": cur.seq + 1, "phase": "settle"})
        if settle.done:
            self._settle = None
            # A full round's new misses are re-walked at once to confirm them; a confirmation
            # round's new misses wait for the next full round (no endless confirming).
            confirm = sorted({_assessment_of(k) for k in settle.marked}, key=lambda a: (len(a), a))
            cursor = self._reconciled(cursor, rec, confirm=confirm if rec.targets is None else [])
            log.info("score reconciliation complete", tenant=self.tenant, poller=self.name, walk=settle.walk,
                     upserts=rec.upserts, deleted=settle.deleted, pending=len(settle.marked),
                     confirm_assessments=len(cursor.confirm))
        self.commits.dirty = False
        return _result(changes, cursor, more=not settle.done, newest=settle.started if settle.done else None)

    def _reconciled(self, cursor: ScoresCursor, rec: _Reconcile, *, confirm: list[str]) -> ScoresCursor:
        """The cursor after a reconciliation round; a full round also resets the schedule and,
        having seen every score as of its start, moves the watermark to its start date."""
        update: dict[str, Any] = {
            "phase": "idle", "reconcile": None, "confirm": confirm,
            "completed_walks": cursor.completed_walks + 1, "last_walk_at": rec.started,
        }
        if rec.targets is None:
            update["since_reconcile"] = 0
            update["watermark"] = max(rec.walk_date, cursor.watermark) if cursor.watermark else rec.walk_date
        return cursor.model_copy(update=update)


def _result(
    changes: Changes, cursor: ScoresCursor, *, more: bool = False, newest: datetime | None = None,
) -> PollResult:
    return PollResult(events=changes.events, cursor=cursor.model_dump(mode="json"), more=more, newest_time=newest,
                      state=changes.writes)
