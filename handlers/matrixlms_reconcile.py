"""The MatrixLMS roster reconcile: one slice of a tenant's classes compared with the ledger.

The roster handler never reads MatrixLMS per event; its ledger is its picture of the site
(FLOWS.md 2.5). A reconcile request (``worker/pollers/matrixlms_reconcile.py``) names a slice:
the classes whose section id hashes to it. For each, the class's students and teachers are read
(two calls) and MatrixLMS is brought back to the ledger: a student or teacher removed by hand is
added again, one added by hand is removed. A class moved to the trash by hand is restored (its
grades come back with it); one that cannot be restored is reported, not recreated. The ledger is
never changed here: it is the truth the site is repaired to.

A class the roster path is writing to, or wrote to in the last ``quiet`` seconds (default 60), is
left for the next round: its ledger entries may not be committed yet, and a reconcile that read
them would undo that write. For the same reason nothing is reconciled in the first ``quiet``
seconds after start-up, while redelivered events settle.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from schemas.matrixlms import MatrixReconcileRequestedV1
from worker.clients.errors import AmbiguousWriteError, NotFoundError, PermanentUpstreamError
from worker.clients.matrixlms import MatrixLMSClient
from worker.ledger import Ledger
from worker.metrics import RECONCILE_REPAIRS, Outcome

log = structlog.get_logger(__name__)

QUIET_SECONDS = 60.0


def slice_of(section_id: str, slices: int) -> int:
    """The reconcile slice of a section: a stable hash, so a round covers every class once."""
    return int(hashlib.sha256(section_id.encode()).hexdigest()[:8], 16) % slices


@dataclass
class WriteClock:
    """Which classes the roster path is writing to in a batch not yet committed, when it last
    finished one with each, and when this process started."""

    quiet: float = QUIET_SECONDS
    started: float = field(default_factory=time.monotonic)
    written: dict[int, float] = field(default_factory=dict)
    open: Counter[int] = field(default_factory=Counter)

    def opened(self, class_id: int) -> None:
        """A batch is about to change this class in MatrixLMS."""
        self.open[class_id] += 1

    def closed(self, class_ids: Iterable[int]) -> None:
        """The batch that opened these is done (its ledger commit follows at once)."""
        now = time.monotonic()
        for class_id in class_ids:
            self.open[class_id] -= 1
            if self.open[class_id] <= 0:
                del self.open[class_id]
            self.written[class_id] = now

    def settled(self, class_id: int) -> bool:
        """True when no batch is writing the class and neither the process nor the class has seen
        a write for ``quiet`` seconds."""
        now = time.monotonic()
        return (class_id not in self.open and now - self.started >= self.quiet
                and now - self.written.get(class_id, now - self.quiet) >= self.quiet)


class SliceReconcile:
    """One reconcile request of one tenant: read each class of the slice, repair the difference."""

    def __init__(self, client: MatrixLMSClient, ledger: Ledger, tenant_id: str, handler: str,
                 clock: WriteClock) -> None:
        self.client = client
        self.ledger = ledger
        self.t = tenant_id
        self.handler = handler
        self.clock = clock

    def _key(self, *parts: str) -> str:
        return "/".join(("matrix", self.t, *parts))

    async def run(self, request: MatrixReconcileRequestedV1, *, stale_after: float) -> Outcome:
        """Reconcile the slice; a request older than ``stale_after`` seconds (a replay) is skipped."""
        if (datetime.now(UTC) - request.requested_at).total_seconds() > stale_after:
            return Outcome.SKIPPED
        classes = {key.rsplit("/", 1)[1]: entry for key, entry in self.ledger.items(self._key("class") + "/")
                   if entry is not None and not entry.get("archived")
                   and slice_of(key.rsplit("/", 1)[1], request.slices) == request.slice}
        if not classes:
            return Outcome.NOOP
        students = self._students_by_class()
        repaired, left = 0, 0
        for entry in classes.values():
            class_id = int(entry["id"])
            if not self.clock.settled(class_id):
                left += 1
                continue
            repaired += await self._one(class_id, students.get(class_id, set()), set(entry["teachers"]))
        log.info("matrixlms reconcile slice", tenant=self.t, slice=request.slice, slices=request.slices,
                 classes=len(classes), repaired=repaired, left_for_next_round=left)
        return Outcome.APPLIED if repaired else Outcome.NOOP

    def _students_by_class(self) -> dict[int, set[int]]:
        """The ledger's members: class id -> MatrixLMS user ids (one scan per request)."""
        members: dict[int, set[int]] = defaultdict(set)
        for key, class_id in self.ledger.items(self._key("member") + "/"):
            if class_id is None:
                continue
            district = key.split("/")[-2]
            user = self.ledger.get(self._key("user", district))
            if user is not None:
                members[int(class_id)].add(int(user["id"]))
        return members

    async def _read(self, class_id: int) -> tuple[set[int], set[int]]:
        """The class's enrolled students and its teachers, as MatrixLMS has them."""
        enrolled = {s.id for s in await self.client.get_students_for_class(class_id) if s.enrolled}
        teaching = {t.id for t in await self.client.get_teachers_for_class(class_id)}
        return enrolled, teaching

    async def _restored(self, class_id: int, missing: Exception) -> bool:
        """A class MatrixLMS does not show: back from the trash can if it is there."""
        try:
            await self.client.restore_classes([class_id])
        except PermanentUpstreamError as exc:
            RECONCILE_REPAIRS.labels(self.handler, "class_missing").inc()
            log.warning("matrixlms class in the ledger is not in MatrixLMS and cannot be restored; not recreated",
                        tenant=self.t, class_id=class_id, error=str(missing), restore_error=str(exc))
            return False
        RECONCILE_REPAIRS.labels(self.handler, "class_restored").inc()
        log.info("matrixlms reconcile restored a class from the trash", tenant=self.t, class_id=class_id)
        return True

    async def _one(self, class_id: int, students: set[int], teachers: set[int]) -> int:
        restored = 0
        try:
            enrolled, teaching = await self._read(class_id)
        except (NotFoundError, PermanentUpstreamError) as exc:
            if not await self._restored(class_id, exc):
                return 0
            restored = 1
            enrolled, teaching = await self._read(class_id)
        changes = [
            ("student_added", sorted(students - enrolled)), ("student_removed", sorted(enrolled - students)),
            ("teacher_added", sorted(teachers - teaching)), ("teacher_removed", sorted(teaching - teachers)),
        ]
        for kind, user_ids in changes:
            if user_ids:
                await self._repair(kind, class_id, user_ids)
                RECONCILE_REPAIRS.labels(self.handler, kind).inc(len(user_ids))
                log.info("matrixlms reconcile repaired", tenant=self.t, class_id=class_id, kind=kind,
                         users=len(user_ids))
        return restored + sum(len(ids) for _, ids in changes)

    async def _repair(self, kind: str, class_id: int, user_ids: list[int]) -> None:
        try:
            if kind == "student_added":
                await self.client.add_students_to_class(class_id, user_ids, ignore_already_enrolled=True)
            elif kind == "student_removed":
                await self.client.remove_students_from_class(class_id, user_ids)
            elif kind == "teacher_added":
                await self.client.add_teachers_to_class(class_id, user_ids)
            else:
                await self.client.remove_teachers_from_class(class_id, user_ids)
        except AmbiguousWriteError:
            # The next round reads the class again and sends whatever is still missing.
            log.info("matrixlms reconcile repair unconfirmed; the next round checks it", tenant=self.t,
                     class_id=class_id, kind=kind)
