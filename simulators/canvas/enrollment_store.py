"""Enrollments (seed 002:L14212-14960; canvas.md §3.6, §4, §5.7 item 5).

- Create: ``enrollment[type]`` defaults to StudentEnrollment, ``enrollment[enrollment_state]`` to
  ``invited``; with a section URL ``enrollment[course_section_id]`` "is redundant and will be
  ignored". Enrolling a user again in the same section with the same type returns the existing
  enrollment in the requested state. The seed leaves duplicates undocumented (canvas.md §7 item
  14); re-use is how Canvas's ``Course#enroll_user`` reads, not verified against a live Canvas.
- DELETE: "If the task argument isn't given, the enrollment will be concluded"; ``inactivate`` and
  ``deactivate`` are the same. Reactivate applies to *inactive* enrollments only.
- Lists: "If omitted, 'active' and 'invited' enrollments are returned" (seed 002:L14697).
- Deleting a course deletes its enrollments ("All enrollments are deleted").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.canvas.accounts import IdSequence
from simulators.canvas.clock import iso, normalise, now
from simulators.canvas.course_store import COMPLETED as COURSE_COMPLETED
from simulators.canvas.course_store import CourseRecord
from simulators.canvas.params import text, text_list, to_bool
from simulators.canvas.responses import CanvasHTTPError, not_found
from simulators.canvas.section_store import SectionRecord
from simulators.canvas.stats import Stats
from simulators.canvas.user_store import UserRecord

TYPES = ("StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "ObserverEnrollment", "DesignerEnrollment")
# Built-in base roles; Canvas gives each root account its own role ids, these are fixed stand-ins.
ROLE_IDS = {t: i for i, t in enumerate(TYPES, start=3)}
CREATE_STATES = ("active", "invited", "inactive")
STATES = ("active", "invited", "creation_pending", "deleted", "rejected", "completed", "inactive")
DEFAULT_LIST_STATES = ("active", "invited")
TASKS = {"conclude": "completed", "delete": "deleted", "inactivate": "inactive", "deactivate": "inactive"}
TYPE_SHORT = {"student": "StudentEnrollment", "teacher": "TeacherEnrollment", "ta": "TaEnrollment",
              "observer": "ObserverEnrollment", "designer": "DesignerEnrollment"}


@dataclass
class EnrollmentRecord:
    """An Enrollment of a user in one section of a course."""

    id: int
    user_id: int
    course_id: int
    course_section_id: int
    root_account_id: int
    type: str
    role: str
    role_id: int
    enrollment_state: str
    limit_privileges_to_course_section: bool = False
    associated_user_id: int | None = None
    start_at: str | None = None
    end_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    def touch(self) -> None:
        """Canvas keeps ``updated_at`` current on every change (canvas.md §5.7 item 5)."""
        self.updated_at = iso(now())


def bad_request(message: str) -> CanvasHTTPError:
    """A 400 with Canvas's ``{"message": ...}`` body for enrollment errors."""
    return CanvasHTTPError(400, {"message": message})


class EnrollmentStore:
    """Enrollments by id."""

    def __init__(self, ids: IdSequence, stats: Stats) -> None:
        self._ids = ids
        self._stats = stats
        self.enrollments: dict[int, EnrollmentRecord] = {}
        # (user, section, type) -> enrollment: an enrol re-uses that row, and a scan of every row
        # per enrol made a 55,000-row sync quadratic. Those three fields never change.
        self._by_key: dict[tuple[int, int, str], int] = {}

    def reset(self) -> None:
        """Drop every enrollment."""
        self.enrollments = {}
        self._by_key = {}

    def get(self, course: CourseRecord, raw: str) -> EnrollmentRecord:
        """An enrollment of the course by id."""
        enrollment = self.enrollments.get(int(raw)) if raw.isdigit() else None
        if enrollment is None or enrollment.course_id != course.id:
            raise not_found()
        return enrollment

    def enroll(
        self, course: CourseRecord, section: SectionRecord, user: UserRecord, params: dict[str, Any],
    ) -> EnrollmentRecord:
        """Create (or re-use) an enrollment from ``enrollment[...]`` parameters."""
        if course.workflow_state == COURSE_COMPLETED:
            raise bad_request("Can't add an enrollment to a concluded course.")
        enrollment_p = params.get("enrollment") if isinstance(params.get("enrollment"), dict) else {}
        assert isinstance(enrollment_p, dict)
        kind = text(enrollment_p, "type") or TYPE_SHORT.get((text(enrollment_p, "role") or "").lower()) \
            or "StudentEnrollment"
        if kind not in TYPES:
            raise bad_request("Invalid type")
        state = text(enrollment_p, "enrollment_state") or "invited"
        if state not in CREATE_STATES:
            raise bad_request("Invalid enrollment_state")
        limit = bool(to_bool(enrollment_p.get("limit_privileges_to_course_section")))
        existing_id = self._by_key.get((user.id, section.id, kind))
        if existing_id is not None:
            existing = self.enrollments[existing_id]
            existing.enrollment_state = state
            existing.limit_privileges_to_course_section = limit
            existing.touch()
            return existing
        eid = self._ids.next("enrollment")
        stamp = iso(now())
        enrollment = EnrollmentRecord(
            eid, user.id, course.id, section.id, course.root_account_id, kind, kind, ROLE_IDS[kind], state,
            limit, start_at=normalise(enrollment_p.get("start_at")), end_at=normalise(enrollment_p.get("end_at")),
            created_at=stamp, updated_at=stamp,
        )
        self.enrollments[eid] = enrollment
        self._by_key[(user.id, section.id, kind)] = eid
        self._stats.record_create("enrollment", f"{user.id}/{section.id}/{kind}")
        return enrollment

    def end(self, enrollment: EnrollmentRecord, task: str | None) -> EnrollmentRecord:
        """``DELETE .../enrollments/:id?task=``; no task concludes."""
        target = TASKS.get(task or "conclude")
        if target is None:
            raise bad_request(f"{task} is not a valid task")
        enrollment.enrollment_state = target
        enrollment.touch()
        return enrollment

    def reactivate(self, enrollment: EnrollmentRecord) -> EnrollmentRecord:
        """``PUT .../reactivate``: documented for inactive enrollments only."""
        if enrollment.enrollment_state != "inactive":
            raise CanvasHTTPError(400, {"error": "enrollment not inactive"})
        enrollment.enrollment_state = "active"
        enrollment.touch()
        return enrollment

    def listing(
        self, params: dict[str, Any], *, course_id: int | None = None, section_id: int | None = None,
        user_id: int | None = None,
    ) -> list[EnrollmentRecord]:
        """Enrollments in scope filtered by ``state[]`` (default active+invited), ``type[]``, ``role[]``."""
        states = set(text_list(params, "state")) or set(DEFAULT_LIST_STATES)
        if "current_and_concluded" in states:
            states |= {"active", "completed"}
        if "current_and_invited" in states:
            states |= {"active", "invited"}
        types = set(text_list(params, "type")) | set(text_list(params, "role"))
        only_user = text(params, "user_id")
        found = []
        for e in sorted(self.enrollments.values(), key=lambda e: e.id):
            if course_id is not None and e.course_id != course_id:
                continue
            if section_id is not None and e.course_section_id != section_id:
                continue
            if user_id is not None and e.user_id != user_id:
                continue
            if only_user and only_user.isdigit() and e.user_id != int(only_user):
                continue
            if e.enrollment_state not in states or (types and e.type not in types and e.role not in types):
                continue
            found.append(e)
        return found

    def delete_course(self, course: CourseRecord) -> None:
        """Hook for course delete: every enrollment of the course becomes ``deleted``."""
        for enrollment in self.enrollments.values():
            if enrollment.course_id == course.id and enrollment.enrollment_state != "deleted":
                enrollment.enrollment_state = "deleted"
                enrollment.touch()

    def section_has_enrollments(self, section_id: int) -> bool:
        """True while any enrollment of the section is not deleted."""
        return any(e.course_section_id == section_id and e.enrollment_state != "deleted"
                   for e in self.enrollments.values())

    def students(self, course_id: int) -> list[EnrollmentRecord]:
        """Student enrollments of a course that are not deleted (they have submissions)."""
        return [e for e in self.enrollments.values()
                if e.course_id == course_id and e.type == "StudentEnrollment" and e.enrollment_state != "deleted"]

    def is_student(self, course_id: int, user_id: int) -> bool:
        """Whether the user has a student enrollment (not deleted) in the course."""
        return any(e.user_id == user_id for e in self.students(course_id))

    def can_grade(self, course_id: int, user_id: int) -> bool:
        """Whether the user teaches (teacher or TA, active) in the course."""
        return any(e.course_id == course_id and e.user_id == user_id and e.enrollment_state == "active"
                   and e.type in ("TeacherEnrollment", "TaEnrollment") for e in self.enrollments.values())

    def counts(self) -> dict[str, int]:
        """Enrollments by state."""
        counts: dict[str, int] = {}
        for e in self.enrollments.values():
            counts[e.enrollment_state] = counts.get(e.enrollment_state, 0) + 1
        return {"enrollments": sum(counts.values()), **{f"enrollments_{k}": v for k, v in sorted(counts.items())}}
