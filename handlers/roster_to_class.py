"""Illuminate sections, rosters and staff -> Class classes, enrolments and staff users.

One class per Illuminate section, ``ext_class_id`` = the section's prefixed SIS id, hosted by its
primary teacher. Class cannot change a host (FLOWS.md 2.4 trap 1): a later primary teacher joins
as a ``teacher`` enrolment, as do co-teachers. Learners exist only as enrolments
(matrix_class.md L1657), ``ext_person_id`` = the district student id, so a student's rename is a
PUT on each of their enrolments. Staff are Class users (``PUT /api/v1/users`` upsert,
``ext_user_id`` = the staff SIS id).

The ledger is the handler's picture of Class (what it last wrote), so an event whose effect is
already there costs no request and a replay writes nothing:

- ``class/<tenant>/class/<section>``: ext id, fingerprint of name and host, host, added teachers;
- ``class/<tenant>/enrollment/<person>/<section>``: names and role sent (grouped by person, so
  the rename fan-out lists a student's enrolments without a scan);
- ``class/<tenant>/person/<district id>``: the names of the latest student event handled;
- ``class/<tenant>/user/<sis id>``: fingerprint of the staff user.

Lanes of one tenant touch the same enrolment (a section's drop, the student's rename fan-out),
so each enrolment's read-write-note is done under its own lock: a rename's update that Class
answers 404 to then really means the enrolment was removed behind our back, never a drop in
flight in the other lane.

An enrolment whose class is not in Class yet is parked until it is (``PrerequisiteMissing``,
woken by the class's ledger entry). A section without a primary teacher with an email cannot be
a class: its section event and its roster rows are dead-lettered as "section <id>: no instructor
email".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from handlers.roster_changes import (
    Change,
    EnrollmentChange,
    SectionChange,
    StaffChange,
    StudentChange,
)
from handlers.roster_handler import RosterHandler
from handlers.roster_identity import RosterIds
from handlers.roster_reference import RosterReference
from worker.clients.classroom import ClassroomClient, ClassSpec, EnrollmentSpec, UserSpec
from worker.clients.errors import AmbiguousWriteError, NotFoundError, PermanentUpstreamError
from worker.concurrency import KeyedLocks
from worker.errors import PermanentFailure, PrerequisiteMissing
from worker.ledger import Ledger
from worker.metrics import Outcome

log = structlog.get_logger(__name__)

HANDLER_NAME = "roster_to_class"
# Names sent when Illuminate has none (Class requires both, seed 001 L569).
_NO_FIRST, _NO_LAST = "Student", "-"

Names = tuple[str, str]


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _fixed(names: Names) -> Callable[[], Names]:
    return lambda: names


def class_name(course_name: str | None, period: str | None, section_id: str) -> str:
    """A Class class's name: the course, its period (Class has an id, so no uniqueness suffix)."""
    name = course_name or f"Section {section_id}"
    return f"{name} - P{period}" if period else name


@dataclass(frozen=True)
class ClassTenant:
    """One tenant's Class organisation and id scheme."""

    client: ClassroomClient
    ids: RosterIds


class RosterToClass(RosterHandler[ClassTenant]):
    """The roster flow's Class handler (idempotency keys: ``ext_class_id``, ``ext_person_id``)."""

    name = HANDLER_NAME
    target = "Class"

    async def apply(self, tenant: ClassTenant, change: Change, tenant_id: str, ledger: Ledger) -> Outcome:
        """Bring Class in line with one Illuminate change."""
        sync = _Sync(tenant, self.reference, ledger, tenant_id, self.locks)
        if isinstance(change, EnrollmentChange):
            return await sync.enrollment(change)
        if isinstance(change, SectionChange):
            return await sync.section(change)
        if isinstance(change, StudentChange):
            return await sync.student(change)
        return await sync.staff(change)


class _Sync:
    """The steps for one tenant's events."""

    def __init__(self, tenant: ClassTenant, reference: RosterReference, ledger: Ledger, tenant_id: str,
                 locks: KeyedLocks | None = None) -> None:
        self.client = tenant.client
        self.ids = tenant.ids
        self.reference = reference
        self.ledger = ledger
        self.t = tenant_id
        self.locks = locks or KeyedLocks()

    def _class_key(self, section_id: str) -> str:
        return f"class/{self.t}/class/{section_id}"

    def _enrollment_key(self, person: str, section_id: str) -> str:
        return f"class/{self.t}/enrollment/{person}/{section_id}"

    def _person_key(self, district: str) -> str:
        return f"class/{self.t}/person/{district}"

    # -- classes --------------------------------------------------------------------------------

    async def section(self, change: SectionChange) -> Outcome:
        """A section-teacher row: the class exists with the section's name and host, and every
        other teacher of the section is a teacher enrolment."""
        sid = change.section_id
        rows = self.reference.section_rows(self.t, sid, overlay=(change.teacher_id, change.record))
        if not rows:
            return await self._remove_class(sid)
        spec = self._class_spec(sid, rows)
        fp = _fingerprint(spec.class_name, spec.email)
        entry: dict[str, Any] | None = self.ledger.get(self._class_key(sid))
        outcome = Outcome.NOOP
        if entry is None or entry["fp"] != fp:
            ensured = await self.client.ensure_class(spec)
            host = entry["host"] if entry else spec.email
            if host != spec.email or ensured.unpatchable:
                # Class keeps the first host; the new primary teacher is enrolled as a teacher below.
                log.warning("class host cannot change; primary teacher enrolled as a teacher", tenant=self.t,
                            section=sid, host_kept=True)
            entry = {"ext": spec.ext_class_id, "fp": fp, "host": host, "teachers": entry["teachers"] if entry else []}
            self.ledger.put(self._class_key(sid), entry)
            outcome = Outcome.APPLIED if ensured.changed else Outcome.NOOP
        if await self._sync_teachers(sid, entry, rows):
            outcome = Outcome.APPLIED
        return outcome

    def _class_spec(self, sid: str, rows: list[dict[str, Any]]) -> ClassSpec:
        """The class a section's rows describe; why not, as a dead letter or a wait."""
        primary = next((r for r in rows if r["primary"] and r["teacher"]), None)
        if primary is None:
            raise PermanentFailure(f"section {sid}: no instructor email (no primary teacher)")
        teacher = self.reference.staff(self.t, primary["teacher"])
        if teacher is None:
            raise PrerequisiteMissing(f"section {sid}: teacher {primary['teacher']} is not in the reference data yet")
        if not teacher.get("email"):
            raise PermanentFailure(f"section {sid}: no instructor email (teacher {primary['teacher']} has none)")
        course = self.reference.course(self.t, primary["course"])
        if primary["course"] and course is None:
            raise PrerequisiteMissing(f"section {sid}: course {primary['course']} is not in the reference data yet")
        return ClassSpec(ext_class_id=self.ids.section(sid),
                         class_name=class_name(course["name"] if course else None, primary["period"], sid),
                         email=teacher["email"], first_name=teacher.get("first") or "Teacher",
                         last_name=teacher.get("last") or "-")

    async def _sync_teachers(self, sid: str, entry: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
        """Teachers of the section other than the host are teacher enrolments (by staff SIS id)."""
        wanted: dict[str, tuple[Names, str]] = {}
        for row in rows:
            teacher = self.reference.staff(self.t, row["teacher"]) if row["teacher"] else None
            if teacher and teacher.get("email") and teacher["email"] != entry["host"]:
                person = teacher.get("district") or f"staff-{row['teacher']}"
                wanted[person] = ((teacher.get("first") or "Teacher", teacher.get("last") or "-"), teacher["email"])
        wrote = False
        for person, (names, email) in wanted.items():
            wrote = await self._ensure_person(sid, entry["ext"], person, "teacher", _fixed(names),
                                              email=email) or wrote
        for person in set(entry["teachers"]) - set(wanted):
            # The class's entry lists its added teachers, so remove even without an enrolment entry.
            await self._remove_enrollment(person, sid, entry["ext"], listed=True)
            wrote = True
        if sorted(wanted) != entry["teachers"]:
            self.ledger.put(self._class_key(sid), {**entry, "teachers": sorted(wanted)})
        return wrote

    async def _remove_class(self, sid: str) -> Outcome:
        entry = self.ledger.get(self._class_key(sid))
        if entry is None:
            return Outcome.NOOP
        await self.client.delete_class(ext_class_id=entry["ext"], missing_ok=True)
        self.ledger.put(self._class_key(sid), None)
        return Outcome.APPLIED

    # -- enrolments -----------------------------------------------------------------------------

    async def enrollment(self, change: EnrollmentChange) -> Outcome:
        """A roster row: the student is in the class while the row is active, else removed."""
        sid, district = change.section_id, change.district_id
        if not district:
            raise PermanentFailure(f"roster row {sid}/{change.student_id}: the student has no district id")
        klass = self.ledger.get(self._class_key(sid))
        if not change.active:
            removed = await self._remove_enrollment(district, sid, klass["ext"] if klass else None)
            return Outcome.APPLIED if removed else Outcome.NOOP
        if klass is None:
            rows = self.reference.section_rows(self.t, sid)
            if rows:
                try:
                    self._class_spec(sid, rows)
                except PermanentFailure as exc:
                    # An unmappable section dead-letters its rows now, not after the deferral limit.
                    raise PermanentFailure(f"roster row {sid}/{change.student_id}: {exc}") from None
            raise PrerequisiteMissing(f"class of section {sid} is not in Class yet",
                                      waits_for=f"{HANDLER_NAME}/{self._class_key(sid)}")
        fallback = (change.first_name or _NO_FIRST, change.last_name or _NO_LAST)
        changed = await self._ensure_person(sid, klass["ext"], district, "student",
                                            lambda: self._student_names(change.student_id, district, fallback))
        return Outcome.APPLIED if changed else Outcome.NOOP

    def _student_names(self, student_id: str, district: str, fallback: Names) -> Names:
        """The newest names known: the last student event handled, else the reference table."""
        handled = self.ledger.get(self._person_key(district))
        if handled is not None:
            return handled["first"], handled["last"]
        known = self.reference.student(self.t, student_id)
        if known is not None:
            return known.get("first") or _NO_FIRST, known.get("last") or _NO_LAST
        return fallback

    async def _ensure_person(self, sid: str, ext_class_id: str, person: str, role: Literal["student", "teacher"],
                             names_now: Callable[[], Names], email: str | None = None, *,
                             create: bool = True) -> bool:
        """The person is enrolled with the names ``names_now`` gives and ``role``; True if Class was
        written. Names are read again after each write: a rename handled in another partition's
        lane while this write was in flight is sent too, never lost. With ``create`` False (a
        rename's fan-out) only an enrolment the ledger still holds is updated: one a drop removed
        meanwhile, in the section's own lane, stays removed."""
        key = self._enrollment_key(person, sid)
        async with self.locks.hold(key):
            return await self._ensure_person_held(key, ext_class_id, person, role, names_now, email, create)

    async def _ensure_person_held(self, key: str, ext_class_id: str, person: str,
                                  role: Literal["student", "teacher"], names_now: Callable[[], Names],
                                  email: str | None, create: bool) -> bool:
        wrote = False
        while True:
            first, last = names_now()
            wanted = {"first": first, "last": last, "role": role}
            entry = self.ledger.get(key)
            if entry == wanted:
                return wrote
            if entry is None and not create:
                return wrote  # dropped while the fan-out was on its way here (bench/chaos: re-enrolled)
            spec = EnrollmentSpec(first_name=first, last_name=last, role=role, ext_person_id=person, email=email)
            if entry is None:
                await self._create_enrollment(spec, ext_class_id)
            else:
                try:
                    await self.client.update_enrollment(spec, ext_class_id=ext_class_id)
                except NotFoundError:
                    # Gone from Class behind the ledger's back (removed by hand; a drop would hold
                    # this lock): enrol again.
                    log.info("class enrolment missing; enrolling again", handler=HANDLER_NAME, tenant=self.t,
                             ext_class_id=ext_class_id, person=person)
                    await self._create_enrollment(spec, ext_class_id)
            self.ledger.put(key, wanted)
            wrote = True

    async def _remove_enrollment(self, person: str, sid: str, ext_class_id: str | None, *,
                                 listed: bool = False) -> bool:
        """The person is not enrolled in the section's class; True if the ledger had them (or,
        ``listed``, the class's entry did)."""
        key = self._enrollment_key(person, sid)
        async with self.locks.hold(key):
            if self.ledger.get(key) is None and not listed:
                return False
            if ext_class_id is not None:
                await self.client.delete_enrollment(ext_class_id=ext_class_id, ext_person_id=person, missing_ok=True)
            self.ledger.put(key, None)
            return True

    async def _create_enrollment(self, spec: EnrollmentSpec, ext_class_id: str) -> None:
        try:
            await self.client.create_enrollment(spec, ext_class_id=ext_class_id)
        except (AmbiguousWriteError, PermanentUpstreamError) as exc:
            # A lost answer, or "already enrolled" (undocumented, B.6.6): read the roster, then
            # update what is there; create again only if the person is really absent.
            log.info("class enrolment create unresolved; reading the roster", handler=HANDLER_NAME, tenant=self.t,
                     ext_class_id=ext_class_id, error=str(exc))
            roster = await self.client.enrollments(ext_class_id=ext_class_id)
            if not any(e.ext_person_id == spec.ext_person_id for e in roster):
                await self.client.create_enrollment(spec, ext_class_id=ext_class_id)
                return
            await self.client.update_enrollment(spec, ext_class_id=ext_class_id)

    # -- people ---------------------------------------------------------------------------------

    async def student(self, change: StudentChange) -> Outcome:
        """A rename reaches every enrolment of the student; a student gone upstream leaves them
        (Class has no learner accounts to keep)."""
        district = change.district_id
        if not district:
            return Outcome.SKIPPED  # never enrolled: its roster rows are dead-lettered with the reason
        enrolments = self.ledger.children(f"class/{self.t}/enrollment/{district}")
        wrote = False
        if change.record is None:
            for key in sorted(enrolments):
                sid = key.rsplit("/", 1)[1]
                klass = self.ledger.get(self._class_key(sid))
                wrote = await self._remove_enrollment(district, sid, klass["ext"] if klass else None) or wrote
            self.ledger.put(self._person_key(district), None)
            return Outcome.APPLIED if wrote else Outcome.NOOP
        names = {"first": change.record.first_name or _NO_FIRST, "last": change.record.last_name or _NO_LAST}
        if self.ledger.get(self._person_key(district)) != names:
            self.ledger.put(self._person_key(district), names)
        for key in sorted(enrolments):
            sid = key.rsplit("/", 1)[1]
            klass = self.ledger.get(self._class_key(sid))
            if klass is not None:
                wrote = await self._ensure_person(sid, klass["ext"], district, "student",
                                                  _fixed((names["first"], names["last"])), create=False) or wrote
        return Outcome.APPLIED if wrote else Outcome.NOOP

    async def staff(self, change: StaffChange) -> Outcome:
        """A staff member is a Class user (kept when they leave, like every account)."""
        record = change.record
        if record is None:
            return Outcome.SKIPPED
        sis_id = RosterIds.staff(record)
        name = " ".join(p for p in (record.first_name, record.last_name) if p) or sis_id
        fp = _fingerprint(name, record.email1)
        key = f"class/{self.t}/user/{sis_id}"
        if self.ledger.get(key) == fp:
            return Outcome.NOOP
        await self.client.upsert_user(UserSpec(identified_by="ext_user_id", ext_user_id=sis_id, user_name=name,
                                               email=record.email1 or None))
        self.ledger.put(key, fp)
        return Outcome.APPLIED
