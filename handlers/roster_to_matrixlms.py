"""Illuminate students, staff, sections and rosters -> MatrixLMS users, classes and class members.

MatrixLMS allows 120 calls a minute per site and every read costs one, so the handler never reads
it per event: the ledger is its picture of the site (FLOWS.md 2.5). It is a batch handler: the
roster rows of one fetched batch are merged into one ``add_students_to_class`` (and one
``remove_students_from_class``) per class.

- Users: ``add_user`` is an upsert; ``userid`` and ``student_id`` (``teacher_id`` for staff) are
  always sent, both the district's stable id, so twins sharing name and birth date never merge
  (trap 3). A user a roster row needs before its student event is created from the reference data.
- Classes: there is no external id and ``add_class`` is never idempotent (trap 2). The class name
  embeds the section id, so it is unique; the crosswalk (section -> class id) is in the ledger. A
  class is created only after the site's classes have been read once in this process (a few
  pages), so a class created just before a crash is found by name, not made twice.
- Members: (class, user) in the ledger; adds with ``ignore_already_enrolled``. A drop or a
  deletion removes the student from the class; a student deleted upstream keeps the account. In a
  recovery window (worker/recovery.py) a drop the ledger does not know reads the class first: the
  dead runner may have made the member without committing it.

Reconcile requests (``edusync.matrixlms.reconcile``) compare a slice of the classes with MatrixLMS
and repair changes made there by hand (``handlers/matrixlms_reconcile.py``).

Ledger keys, under ``matrix/<tenant>/``: ``user/<sis id>`` (id, fingerprint), ``class/<section>``
(id, fingerprint, teacher ids, archived), ``member/<district id>/<section>`` (class id).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import anyio
import structlog

from handlers.matrixlms_reconcile import SliceReconcile, WriteClock
from handlers.roster_changes import EnrollmentChange, SectionChange, StaffChange, StudentChange, read_change
from handlers.roster_identity import RosterIds, class_name
from handlers.roster_reference import ROSTER_TOPICS, RosterReference
from schemas.envelope import CloudEvent
from schemas.matrixlms import RECONCILE_REQUESTED, MatrixReconcileRequestedV1
from worker.clients.errors import AmbiguousWriteError, PermanentUpstreamError
from worker.clients.matrixlms import MatrixLMSClient
from worker.clients.matrixlms_args import ClassAttributes, UserAttributes
from worker.errors import PermanentFailure, PrerequisiteMissing
from worker.handler_frame import Result
from worker.ledger import Ledger
from worker.metrics import Outcome
from worker.recovery import recovering
from worker.tables import TopicTable
from worker.topics import MATRIXLMS_RECONCILE

log = structlog.get_logger(__name__)

HANDLER_NAME = "roster_to_matrixlms"


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


@dataclass
class MatrixTenant:
    """One tenant's MatrixLMS site, id scheme and, once read, the site's class names."""

    client: MatrixLMSClient
    ids: RosterIds
    class_ids_by_name: dict[str, int] | None = None
    names_lock: anyio.Lock = field(default_factory=anyio.Lock)
    # Users being upserted now, by ledger key: a student's event and its roster rows reach the user
    # in different lanes, and the second lane would queue a duplicate add_user for the budget.
    upserting: dict[str, anyio.Event] = field(default_factory=dict)
    # Seconds after which a reconcile request is stale (a replay): one reconcile interval.
    reconcile_interval: float = 86_400.0
    writes: WriteClock = field(default_factory=WriteClock)


class RosterToMatrixLMS:
    """The roster flow's MatrixLMS handler (a batch handler: merges members per class)."""

    name = HANDLER_NAME
    topics = (*ROSTER_TOPICS, MATRIXLMS_RECONCILE)

    def __init__(self, tenants: Mapping[str, MatrixTenant], reference: RosterReference) -> None:
        self.tenants = dict(tenants)
        self.reference = reference

    @property
    def tables(self) -> tuple[TopicTable, ...]:
        """Reference data the frame restores before this handler consumes."""
        return self.reference.tables

    async def handle_batch(self, events: Sequence[CloudEvent], ledger: Ledger) -> Sequence[Result]:
        """One result per event; people first, then classes, then members merged per class."""
        results: list[Result | None] = [None] * len(events)
        last = {(e.tenant, e.subject): i for i, e in enumerate(events)}
        by_tenant: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for i, event in enumerate(events):
            if last[(event.tenant, event.subject)] != i or (self.reference.superseded(event) and not recovering()):
                results[i] = Outcome.SKIPPED  # a later event of the subject brings the current state
                continue
            if event.tenant not in self.tenants:
                results[i] = PermanentFailure(f"no MatrixLMS configured for tenant {event.tenant!r}")
                continue
            if event.type == RECONCILE_REQUESTED:
                tenant = self.tenants[event.tenant]
                reconcile = SliceReconcile(tenant.client, ledger, event.tenant, self.name, tenant.writes)
                results[i] = await reconcile.run(event.payload(MatrixReconcileRequestedV1),
                                                 stale_after=tenant.reconcile_interval)
                continue
            try:
                by_tenant[event.tenant].append((i, read_change(event, self.reference)))
            except PermanentFailure as exc:
                results[i] = exc
        for tenant_id, changes in by_tenant.items():
            sync = _Sync(self.tenants[tenant_id], self.reference, ledger, tenant_id, results)
            try:
                await sync.run(changes)
            finally:
                self.tenants[tenant_id].writes.closed(sync.touched)
        return [Outcome.NOOP if r is None else r for r in results]


class _Sync:
    """One tenant's part of a batch."""

    def __init__(self, tenant: MatrixTenant, reference: RosterReference, ledger: Ledger, tenant_id: str,
                 results: list[Result | None]) -> None:
        self.tenant = tenant
        self.client = tenant.client
        self.reference = reference
        self.ledger = ledger
        self.t = tenant_id
        self.results = results
        self.touched: list[int] = []  # classes whose members or teachers this batch changes

    def _key(self, *parts: str) -> str:
        return "/".join(("matrix", self.t, *parts))

    def _touch(self, class_id: int) -> None:
        """Keep the reconcile off this class until the batch is committed (and a while after)."""
        self.tenant.writes.opened(class_id)
        self.touched.append(class_id)

    async def run(self, changes: list[tuple[int, Any]]) -> None:
        """Apply the changes in dependency order. A retriable error escapes for the whole batch
        (what is done is in the ledger, so the retry skips it); a permanent one is the event's."""
        order = (StaffChange, StudentChange, SectionChange, EnrollmentChange)
        for kind in order:
            todo = [(i, c) for i, c in changes if isinstance(c, kind)]
            if kind is EnrollmentChange:
                await self._members(todo)
                continue
            for i, change in todo:
                try:
                    self.results[i] = await self._one(change)
                except (PermanentFailure, PermanentUpstreamError, PrerequisiteMissing) as exc:
                    self.results[i] = exc

    async def _one(self, change: Any) -> Outcome:
        if isinstance(change, StaffChange):
            return await self._staff(change)
        if isinstance(change, StudentChange):
            return await self._student(change)
        return await self._section(change)

    # -- users ----------------------------------------------------------------------------------

    async def _upsert_user(self, sis_id: str, attributes: UserAttributes) -> tuple[int, bool]:
        """The user's MatrixLMS id, upserted if what we sent last differs; True if a call was made."""
        key = self._key("user", sis_id)
        fp = _fingerprint(attributes.model_dump_json())
        while (busy := self.tenant.upserting.get(key)) is not None:
            await busy.wait()  # another lane's call for this user is under way: its answer decides
        entry = self.ledger.get(key)
        if entry is not None and entry["fp"] == fp:
            return int(entry["id"]), False
        done = self.tenant.upserting[key] = anyio.Event()
        try:
            ref = await self.client.add_user(attributes)
            self.ledger.put(key, {"id": ref.id, "fp": fp})
        finally:
            del self.tenant.upserting[key]
            done.set()
        return ref.id, True

    @staticmethod
    def _student_attributes(district: str, first: str | None, last: str | None, email: str | None,
                            birth: date | str | None) -> UserAttributes:
        birthdate = date.fromisoformat(birth) if isinstance(birth, str) else birth
        return UserAttributes(userid=district, student_id=district, first_name=first or "Student",
                              last_name=last or "-", email=email or None, birthdate=birthdate,
                              account_types=("student",))

    async def _staff(self, change: StaffChange) -> Outcome:
        record = change.record
        if record is None:
            return Outcome.SKIPPED  # accounts are kept when a person leaves
        sis = RosterIds.staff(record)
        _, wrote = await self._upsert_user(sis, UserAttributes(
            userid=sis, teacher_id=sis, first_name=record.first_name or "Teacher", last_name=record.last_name or "-",
            email=record.email1 or None, account_types=("teacher",)))
        return Outcome.APPLIED if wrote else Outcome.NOOP

    async def _student(self, change: StudentChange) -> Outcome:
        district = change.district_id
        if not district:
            return Outcome.SKIPPED  # no district id: no account (its roster rows say why)
        if change.record is None:
            return await self._leave_every_class(district)
        r = change.record
        _, wrote = await self._upsert_user(district, self._student_attributes(
            district, r.first_name, r.last_name, r.email, r.birth_date))
        return Outcome.APPLIED if wrote else Outcome.NOOP

    async def _leave_every_class(self, district: str) -> Outcome:
        """A student deleted upstream: out of every class, account kept."""
        user = self.ledger.get(self._key("user", district))
        members = self.ledger.children(self._key("member", district))
        if user is None or not members:
            return Outcome.NOOP
        for key, class_id in members.items():
            self._touch(int(class_id))
            await self.client.remove_students_from_class(int(class_id), [int(user["id"])])
            self.ledger.put(key, None)
        return Outcome.APPLIED

    async def _student_id_for(self, change: EnrollmentChange, district: str) -> int:
        """The MatrixLMS id of a roster row's student, created from what is known if need be."""
        entry = self.ledger.get(self._key("user", district))
        if entry is not None:
            return int(entry["id"])
        known = self.reference.student(self.t, change.student_id)
        if known is not None:
            attributes = self._student_attributes(district, known["first"], known["last"], known["email"],
                                                  known["birth_date"])
        else:
            attributes = self._student_attributes(district, change.first_name, change.last_name, None, None)
        user_id, _ = await self._upsert_user(district, attributes)
        return user_id

    async def _teacher_id_for(self, user_id: str) -> int:
        """The MatrixLMS id of a section's teacher, created from the reference data if need be."""
        staff = self.reference.staff(self.t, user_id)
        if staff is None:
            raise PrerequisiteMissing(f"teacher {user_id} is not in the reference data yet")
        sis = staff.get("district") or f"staff-{user_id}"
        entry = self.ledger.get(self._key("user", sis))
        if entry is not None:
            return int(entry["id"])
        teacher_id, _ = await self._upsert_user(sis, UserAttributes(
            userid=sis, teacher_id=sis, first_name=staff.get("first") or "Teacher", last_name=staff.get("last") or "-",
            email=staff.get("email") or None, account_types=("teacher",)))
        return teacher_id

    # -- classes --------------------------------------------------------------------------------

    async def _section(self, change: SectionChange) -> Outcome:
        sid = change.section_id
        key = self._key("class", sid)
        entry: dict[str, Any] | None = self.ledger.get(key)
        rows = self.reference.section_rows(self.t, sid, overlay=(change.teacher_id, change.record))
        if not rows:
            if entry is None or entry.get("archived"):
                return Outcome.NOOP
            # Archived, not deleted: reversible if the section comes back, and its grades stay.
            await self.client.archive_classes([int(entry["id"])])
            self.ledger.put(key, {**entry, "archived": True})
            return Outcome.APPLIED
        head = rows[0]
        course = self.reference.course(self.t, head["course"])
        if head["course"] and course is None:
            raise PrerequisiteMissing(f"section {sid}: course {head['course']} is not in the reference data yet")
        term = self.reference.term(self.t, head["term"]) or {}
        attributes = ClassAttributes(
            name=class_name(course["name"] if course else None, head["period"], sid),
            start_at=date.fromisoformat(term["start"]) if term.get("start") else None,
            finish_at=date.fromisoformat(term["end"]) if term.get("end") else None)
        fp = _fingerprint(attributes.model_dump_json())
        wrote = False
        if entry is None:
            entry = {"id": await self._create_class(attributes), "fp": fp, "teachers": [], "archived": False}
            self.ledger.put(key, entry)
            wrote = True
        elif entry["fp"] != fp or entry.get("archived"):
            if entry.get("archived"):
                await self.client.reactivate_classes([int(entry["id"])])
            await self.client.edit_class(int(entry["id"]), attributes)
            entry = {**entry, "fp": fp, "archived": False}
            self.ledger.put(key, entry)
            wrote = True
        return Outcome.APPLIED if await self._teachers(key, entry, rows) or wrote else Outcome.NOOP

    async def _create_class(self, attributes: ClassAttributes) -> int:
        """Create the class once: the site's class names are read first (once per process), so a
        class an earlier, crashed attempt made is adopted, not duplicated."""
        names = await self._class_names()
        name = attributes.name or ""
        if name in names:
            return names[name]
        created = await self.client.add_class_once(attributes, look_first=False)
        names[name] = created.id
        return created.id

    async def _class_names(self) -> dict[str, int]:
        async with self.tenant.names_lock:
            if self.tenant.class_ids_by_name is None:
                classes = await self.client.get_all_classes()
                self.tenant.class_ids_by_name = {c.name: c.id for c in classes}
                log.info("matrixlms class names read", tenant=self.t, classes=len(classes))
            return self.tenant.class_ids_by_name

    async def _teachers(self, key: str, entry: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
        """The section's teachers are the class's teachers; only the difference is sent."""
        wanted = sorted({await self._teacher_id_for(r["teacher"]) for r in rows if r["teacher"]})
        have = set(entry["teachers"])
        new, gone = [t for t in wanted if t not in have], sorted(have - set(wanted))
        if not new and not gone:
            return False
        class_id = int(entry["id"])
        self._touch(class_id)
        try:
            if new:
                await self.client.add_teachers_to_class(class_id, new)
            if gone:
                await self.client.remove_teachers_from_class(class_id, gone)
        except AmbiguousWriteError:
            # Teacher changes are not resent blindly (duplicates undocumented): read, send the rest.
            teaching = {t.id for t in await self.client.get_teachers_for_class(class_id)}
            if missing := [t for t in new if t not in teaching]:
                await self.client.add_teachers_to_class(class_id, missing)
            if extra := [t for t in gone if t in teaching]:
                await self.client.remove_teachers_from_class(class_id, extra)
        self.ledger.put(key, {**entry, "teachers": wanted})
        return True

    # -- members --------------------------------------------------------------------------------

    async def _members(self, todo: list[tuple[int, Any]]) -> None:
        """Roster rows merged into one add and one remove per class."""
        adds: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        removes: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        unsure: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        for i, change in todo:
            try:
                self._plan_member(i, change, adds, removes, unsure)
            except (PermanentFailure, PrerequisiteMissing) as exc:
                self.results[i] = exc
        for i, change in todo:
            if self.results[i] is None and change.active and change.district_id:
                # Users come first (an upsert each, only for students not yet in MatrixLMS).
                try:
                    uid = await self._student_id_for(change, change.district_id)
                except PermanentUpstreamError as exc:
                    self.results[i] = exc
                    continue
                class_id = int(self.ledger.get(self._key("class", change.section_id))["id"])
                adds[class_id].append((i, uid, self._key("member", change.district_id, change.section_id)))
        for class_id, items in unsure.items():
            enrolled = {s.id for s in await self.client.get_students_for_class(class_id) if s.enrolled}
            for i, uid, member in items:
                if uid in enrolled:
                    removes[class_id].append((i, uid, member))
                else:
                    self.results[i] = Outcome.NOOP
        for class_id, items in adds.items():
            await self._merged(class_id, items, add=True)
        for class_id, items in removes.items():
            await self._merged(class_id, items, add=False)

    def _plan_member(self, i: int, change: EnrollmentChange, adds: dict[int, list[tuple[int, int, str]]],
                     removes: dict[int, list[tuple[int, int, str]]],
                     unsure: dict[int, list[tuple[int, int, str]]]) -> None:
        sid, district = change.section_id, change.district_id
        if not district:
            raise PermanentFailure(f"roster row {sid}/{change.student_id}: the student has no district id")
        member = self._key("member", district, sid)
        klass = self.ledger.get(self._key("class", sid))
        if change.active:
            if self.ledger.get(member) is not None:
                self.results[i] = Outcome.NOOP
            elif klass is None:
                raise PrerequisiteMissing(f"class of section {sid} is not in MatrixLMS yet",
                                          waits_for=f"{HANDLER_NAME}/{self._key('class', sid)}")
            return  # planned once the student's user id is known
        current = self.ledger.get(member)
        user = self.ledger.get(self._key("user", district))
        if user is not None and current is None and klass is not None and recovering():
            # A runner that died before its commit may have added the student (its add and this
            # drop can share a batch, where only the drop is handled): MatrixLMS tells, one read a class.
            unsure[int(klass["id"])].append((i, int(user["id"]), member))
            return
        if current is None or user is None:
            self.results[i] = Outcome.NOOP
            return
        removes[int(current)].append((i, int(user["id"]), member))

    async def _merged(self, class_id: int, items: list[tuple[int, int, str]], *, add: bool) -> None:
        """One call for the class; if MatrixLMS refuses it (all or nothing), one per student, so a
        bad row is dead-lettered alone."""
        ids = [uid for _, uid, _ in items]
        self._touch(class_id)
        try:
            await self._member_call(class_id, ids, add=add)
        except PermanentUpstreamError:
            if len(items) == 1:
                self.results[items[0][0]] = PermanentFailure(
                    f"class {class_id}: MatrixLMS refused {'adding' if add else 'removing'} user {ids[0]}")
                return
            for item in items:
                await self._merged(class_id, [item], add=add)
            return
        for i, _, member in items:
            self.ledger.put(member, class_id if add else None)
            self.results[i] = Outcome.APPLIED

    async def _member_call(self, class_id: int, user_ids: list[int], *, add: bool) -> None:
        if add:
            # With ignore_already_enrolled the add is safe to resend; the client does so itself.
            await self.client.add_students_to_class(class_id, user_ids, ignore_already_enrolled=True)
            return
        try:
            await self.client.remove_students_from_class(class_id, user_ids)
        except AmbiguousWriteError:
            # Removing a non-member may be refused (undocumented, trap 5): read, then remove the rest.
            enrolled = {s.id for s in await self.client.get_students_for_class(class_id) if s.enrolled}
            rest = [u for u in user_ids if u in enrolled]
            if rest:
                await self.client.remove_students_from_class(class_id, rest)
