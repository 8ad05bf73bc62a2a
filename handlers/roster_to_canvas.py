"""Illuminate students, staff, sections and rosters -> Canvas users, terms, courses, sections and
enrolments (FLOWS.md 2.3; ids per decision 2, ``handlers/roster_identity.py``).

- A student or staff member is a Canvas user with one login: ``sis_user_id`` the district id (staff:
  ``district_user_id`` else ``staff-<user_id>``), ``unique_id`` the username, else the email, else
  the SIS id; a student's ``integration_id`` is the internal student id (FLOWS.md 2.0). A rename
  updates the name and sortable name. The login and the email are set once, at creation: a changed
  login is a changed sign-in, which is the district's call, not a side effect of a rename.
- A section becomes a Canvas section ``<prefix>-section-<id>`` in its course: one course per section
  (``course_model: section``) or per Illuminate course and term (``course_term``), in the term
  ``<prefix>-term-<id>`` with the catalogue's dates. Every teacher row is a teacher enrolment.
- A roster row is a student enrolment; a drop (or a deleted row) CONCLUDES it, a row back makes it
  active again. A student deleted upstream has their enrolments concluded and keeps the account.

Prerequisites are made inline from the reference tables (a roster row creates its student's user
and its section, with course and term, if the ledger has none yet). What the tables do not have
yet parks the event (``PrerequisiteMissing``), woken by the ledger entry it waits for. The objects
themselves, the ledger entries and the create-or-adopt rules are in ``roster_canvas_objects.py``.
"""

from __future__ import annotations

from typing import Any

from handlers.roster_canvas_objects import CanvasObjects, CanvasTenant, UserSpec, person_names
from handlers.roster_changes import Change, EnrollmentChange, SectionChange, StudentChange
from handlers.roster_handler import RosterHandler
from handlers.roster_identity import RosterIds
from handlers.roster_reference import RosterReference
from schemas.illuminate_records import SectionRecordV1, StaffRecordV1, StudentRecordV1
from worker.errors import PermanentFailure, PrerequisiteMissing
from worker.ledger import Ledger
from worker.metrics import Outcome

HANDLER_NAME = "roster_to_canvas"

__all__ = ["HANDLER_NAME", "CanvasTenant", "RosterToCanvas", "course_name", "section_name"]


def section_name(course: str | None, period: str | None, section_id: str) -> str:
    """A Canvas section's name (and, one course per section, its course's): course and period."""
    name = course or f"Section {section_id}"
    return f"{name} - P{period}" if period else name


def course_name(model: str, course: str | None, period: str | None, section_id: str, course_id: str | None) -> str:
    """A Canvas course's name: the section's in the section model, the course's in course_term."""
    if model == "section":
        return section_name(course, period, section_id)
    return course or f"Course {course_id}"


def student_spec(student_id: str, record: StudentRecordV1) -> UserSpec | None:
    """The Canvas user of a student; None without a district id (no SIS id to give it)."""
    sis_id = RosterIds.student(record)
    if sis_id is None:
        return None
    name, sortable = person_names(record.first_name, record.last_name, sis_id)
    return UserSpec(what=f"student {student_id} (sis_user_id {sis_id})", sis_user_id=sis_id,
                    login=RosterIds.student_login(record) or sis_id, name=name, sortable_name=sortable,
                    email=record.email, integration_id=student_id)


def staff_spec(record: StaffRecordV1) -> UserSpec:
    """The Canvas user of a staff member."""
    sis_id = RosterIds.staff(record)
    name, sortable = person_names(record.first_name, record.last_name, sis_id)
    return UserSpec(what=f"staff {record.user_id} (sis_user_id {sis_id})", sis_user_id=sis_id,
                    login=RosterIds.staff_login(record), name=name, sortable_name=sortable, email=record.email1)


def _known_student(student_id: str, known: dict[str, Any]) -> StudentRecordV1:
    return StudentRecordV1(student_id=student_id, district_student_id=known.get("district"),
                           first_name=known.get("first"), last_name=known.get("last"),
                           username=known.get("username"), email=known.get("email"))


def _known_staff(user_id: str, known: dict[str, Any]) -> StaffRecordV1:
    return StaffRecordV1(user_id=user_id, district_user_id=known.get("district"), first_name=known.get("first"),
                         last_name=known.get("last"), username=known.get("username"), email1=known.get("email"))


class RosterToCanvas(RosterHandler[CanvasTenant]):
    """The roster flow's Canvas handler (idempotency keys: the SIS ids, and the ledger)."""

    name = HANDLER_NAME
    target = "Canvas"

    async def apply(self, tenant: CanvasTenant, change: Change, tenant_id: str, ledger: Ledger) -> Outcome:
        """Bring Canvas in line with one Illuminate change."""
        sync = _Sync(self.reference, CanvasObjects(tenant, ledger, tenant_id, self.locks), tenant_id)
        if isinstance(change, EnrollmentChange):
            wrote = await sync.enrollment(change)
        elif isinstance(change, SectionChange):
            wrote = await sync.section(change)
        elif isinstance(change, StudentChange):
            if change.district_id is None:
                return Outcome.SKIPPED  # no SIS id: its roster rows are dead-lettered with the reason
            wrote = await sync.student(change)
        else:
            if change.record is None:
                return Outcome.SKIPPED  # staff gone upstream keep their account
            wrote = await sync.staff(change.record)
        return Outcome.APPLIED if wrote else Outcome.NOOP


class _Sync:
    """The steps for one tenant's events."""

    def __init__(self, reference: RosterReference, objects: CanvasObjects, tenant_id: str) -> None:
        self.ids = objects.ids
        self.reference = reference
        self.objects = objects
        self.t = tenant_id

    def _waits_for(self, key: str) -> str:
        return f"{HANDLER_NAME}/{key}"

    # -- sections -------------------------------------------------------------------------------

    async def section(self, change: SectionChange) -> bool:
        """A section-teacher row: term, course and section as Illuminate has them, and every
        teacher of the section (no other) actively enrolled."""
        sid = change.section_id
        rows = self.reference.section_rows(self.t, sid, overlay=(change.teacher_id, change.record))
        wrote = False
        entry = None
        if rows:
            entry, wrote = await self._place(sid, rows)
        return await self._sync_teachers(sid, entry, rows) or wrote

    async def _place(self, sid: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The section, its course and its term in Canvas as the section's rows describe them."""
        primary = rows[0]  # primary teacher first
        course = self.reference.course(self.t, primary["course"])
        if primary["course"] and course is None:
            raise PrerequisiteMissing(f"section {sid}: course {primary['course']} is not in the reference data yet")
        term = self.reference.term(self.t, primary["term"])
        if primary["term"] and term is None:
            raise PrerequisiteMissing(f"section {sid}: term {primary['term']} is not in the reference data yet")
        wrote = False
        term_id = None
        if term is not None:
            term_id, wrote = await self.objects.term(primary["term"], term.get("name") or f"Term {primary['term']}",
                                                     term.get("start"), term.get("end"))
        names = course["name"] if course else None
        course_sis = self.ids.course(SectionRecordV1(section_id=sid, course_id=primary["course"],
                                                     term_id=primary["term"]))
        course_id, course_wrote = await self.objects.course(
            course_sis, course_name(self.ids.course_model, names, primary["period"], sid, primary["course"]),
            course.get("code") if course else None, term_id)
        entry, section_wrote = await self.objects.section(sid, course_sis, course_id,
                                                          section_name(names, primary["period"], sid))
        return entry, wrote or course_wrote or section_wrote

    async def _sync_teachers(self, sid: str, section: dict[str, Any] | None, rows: list[dict[str, Any]]) -> bool:
        """Each teacher of the section's rows is enrolled; a teacher no longer on it is concluded."""
        wanted: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for row in rows:
            teacher = row["teacher"]
            known = self.reference.staff(self.t, teacher) if teacher else None
            if known is not None:
                wanted[teacher] = known
            elif teacher:
                missing.append(teacher)
        wrote = False
        if section is not None:
            for teacher, known in wanted.items():
                user, made = await self.objects.user(staff_spec(_known_staff(teacher, known)), update=False)
                enrolled = await self.objects.enroll(self.objects.teacher_enrollment_key(teacher, sid),
                                                     f"section {sid} teacher {teacher}", section, user,
                                                     "TeacherEnrollment")
                wrote = wrote or made or enrolled
        teachers_key = self.objects.teachers_key(sid)
        before: list[str] = self.objects.ledger.get(teachers_key) or []
        for teacher in sorted(set(before) - set(wanted) - set(missing)):
            wrote = await self.objects.conclude(self.objects.teacher_enrollment_key(teacher, sid),
                                                f"section {sid} teacher {teacher}") or wrote
        now = sorted(set(wanted) | (set(missing) & set(before)))
        if now != before:
            self.objects.ledger.put(teachers_key, now or None)
        if missing:
            raise PrerequisiteMissing(f"section {sid}: teacher {', '.join(missing)} not in the reference data yet")
        return wrote

    # -- enrolments -----------------------------------------------------------------------------

    async def enrollment(self, change: EnrollmentChange) -> bool:
        """A roster row: the student is enrolled while the row is active, concluded otherwise."""
        sid, student = change.section_id, change.student_id
        key = self.objects.student_enrollment_key(student, sid)
        what = f"roster row {sid}/{student}"
        if not change.active:
            return await self.objects.conclude(key, what)
        entry = self.objects.ledger.get(key)
        if entry is not None and entry["state"] == "active":
            return False  # the common replay: nothing to read, nothing to write
        if not change.district_id:
            raise PermanentFailure(f"{what}: the student has no district id (no sis_user_id to give them)")
        try:
            user = await self._student_user(student, change.district_id)
        except PermanentFailure as exc:
            raise PermanentFailure(f"{what}: {exc}") from exc  # the row, then why its student cannot be
        section = await self._section_for_row(sid)
        return await self.objects.enroll(key, what, section, user, "StudentEnrollment")

    async def _student_user(self, student_id: str, district: str) -> str:
        """The student's Canvas id: from the ledger, else created from the people table."""
        entry = self.objects.ledger.get(self.objects.user_key(district))
        if entry is not None and "broken" not in entry:
            return str(entry["id"])
        known = self.reference.student(self.t, student_id)
        spec = student_spec(student_id, _known_student(student_id, known)) if known else None
        if spec is None:
            raise PrerequisiteMissing(f"student {student_id} is not in the reference data yet",
                                      waits_for=self._waits_for(self.objects.user_key(district)))
        user, _ = await self.objects.user(spec, update=False)
        return user

    async def _section_for_row(self, sid: str) -> dict[str, Any]:
        """The section's ledger entry, else the section placed from the reference tables."""
        key = self.objects.section_key(sid)
        entry: dict[str, Any] | None = self.objects.ledger.get(key)
        if entry is not None and "broken" not in entry:
            return entry
        rows = self.reference.section_rows(self.t, sid)
        if not rows:
            raise PrerequisiteMissing(f"section {sid} is not in the reference data yet", waits_for=self._waits_for(key))
        try:
            placed, _ = await self._place(sid, rows)
        except PrerequisiteMissing as exc:
            raise PrerequisiteMissing(exc.reason, waits_for=self._waits_for(key)) from exc
        return placed

    # -- people ---------------------------------------------------------------------------------

    async def student(self, change: StudentChange) -> bool:
        """A student's user with their current names; a student gone upstream has every enrolment
        concluded and keeps the account."""
        if change.record is None:
            wrote = False
            for key in sorted(self.objects.student_enrollments(change.student_id)):
                wrote = await self.objects.conclude(key, f"student {change.student_id} gone upstream") or wrote
            return wrote
        spec = student_spec(change.student_id, change.record)
        assert spec is not None  # the caller skipped students without a district id
        entry = self.objects.ledger.get(self.objects.user_key(spec.sis_user_id))
        if entry is not None and (entry.get("name"), entry.get("sortable")) == (spec.name, spec.sortable_name):
            return False
        return (await self.objects.user(spec, update=True))[1]

    async def staff(self, record: StaffRecordV1) -> bool:
        """A staff member's user with their current names (kept when they leave)."""
        spec = staff_spec(record)
        entry = self.objects.ledger.get(self.objects.user_key(spec.sis_user_id))
        if entry is not None and (entry.get("name"), entry.get("sortable")) == (spec.name, spec.sortable_name):
            return False
        return (await self.objects.user(spec, update=True))[1]
