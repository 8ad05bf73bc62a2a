"""Canvas client methods for the course audit log and the Grade Change Log.

Course log (seed 002:L1350-1351, L1926-1947; canvas.md §2.2): ``GET /api/v1/audit/course/accounts/:id``
and ``.../courses/:id``. Grade Change Log (NOT IN SEEDS; canvas.md App. A.1, Canvas's public API
documentation https://canvas.instructure.com/doc/api/grade_change_log.html): ``GET
/api/v1/audit/grade_change/{courses|assignments|students|graders}/:id`` and the advanced query
``GET /api/v1/audit/grade_change``. Every route takes ``start_time`` (oldest bound) and ``end_time``
(newest bound), answers a compound document "ordered by date descending", and pages by opaque
bookmarks that are followed, never built (canvas.md §6.2 rule 5). A 404 is
``AuditLogUnavailableError``: auditors storage not configured (App. A.3), or no such account or
course; it must never read as an empty feed (FLOWS.md 2.1 trap 9).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TypeVar

from worker.clients.canvas_audit_models import AuditPage, CourseEvent, GradeChangeEvent, parse_compound
from worker.clients.canvas_base import SYSTEM, CanvasBase, compact, seg
from worker.clients.canvas_errors import AuditLogUnavailableError
from worker.clients.canvas_models import CanvasModel
from worker.clients.canvas_types import canvas_time
from worker.clients.errors import NotFoundError

E = TypeVar("E", bound=CanvasModel)


class CanvasAudit(CanvasBase):
    """The audit feeds, page by page."""

    async def _audit(
        self, model: type[E], path: str, start: datetime, end: datetime, extra: dict[str, Any] | None = None,
    ) -> AsyncIterator[AuditPage[E]]:
        if end < start:
            raise ValueError(f"audit window ends ({end}) before it starts ({start})")
        params = {"start_time": canvas_time(start), "end_time": canvas_time(end), **(extra or {})}
        try:
            async for answer in self.walk(path, params):
                document = parse_compound(answer.body, f"GET {path}")
                yield AuditPage([self._model(model, raw) for raw in document.primary], document)
        except AuditLogUnavailableError:
            raise
        except NotFoundError as exc:
            raise AuditLogUnavailableError(
                SYSTEM, f"GET {path} answered 404: Canvas's audit log storage (auditors) is not configured, or "
                f"the account or course does not exist; nothing can be read from this feed ({exc})",
                status=exc.status,
            ) from exc

    # --- course log ----------------------------------------------------------------------------

    def course_events_for_account(
        self, account: str, start: datetime, end: datetime,
    ) -> AsyncIterator[AuditPage[CourseEvent]]:
        """Course events of every course in the account and its sub-accounts."""
        return self._audit(CourseEvent, f"/api/v1/audit/course/accounts/{seg(account)}", start, end)

    def course_events_for_course(
        self, course: str, start: datetime, end: datetime,
    ) -> AsyncIterator[AuditPage[CourseEvent]]:
        """Course events of one course."""
        return self._audit(CourseEvent, f"/api/v1/audit/course/courses/{seg(course)}", start, end)

    # --- grade change log ----------------------------------------------------------------------

    def grade_changes_for_course(
        self, course: str, start: datetime, end: datetime,
    ) -> AsyncIterator[AuditPage[GradeChangeEvent]]:
        """Grade changes in one course (there is no account-wide route, FLOWS.md 2.2)."""
        return self._audit(GradeChangeEvent, f"/api/v1/audit/grade_change/courses/{seg(course)}", start, end)

    def grade_changes_for_assignment(
        self, assignment: str, start: datetime, end: datetime,
    ) -> AsyncIterator[AuditPage[GradeChangeEvent]]:
        """Grade changes of one assignment."""
        return self._audit(GradeChangeEvent, f"/api/v1/audit/grade_change/assignments/{seg(assignment)}", start, end)

    def grade_changes_for_student(
        self, student: str, start: datetime, end: datetime,
    ) -> AsyncIterator[AuditPage[GradeChangeEvent]]:
        """Grade changes of one student (Canvas drops anonymous events from this route)."""
        return self._audit(GradeChangeEvent, f"/api/v1/audit/grade_change/students/{seg(student)}", start, end)

    def grade_changes_for_grader(
        self, grader: str, start: datetime, end: datetime,
    ) -> AsyncIterator[AuditPage[GradeChangeEvent]]:
        """Grade changes made by one grader."""
        return self._audit(GradeChangeEvent, f"/api/v1/audit/grade_change/graders/{seg(grader)}", start, end)

    def grade_changes_query(
        self, start: datetime, end: datetime, *, course: str | None = None, assignment: str | None = None,
        student: str | None = None, grader: str | None = None,
    ) -> AsyncIterator[AuditPage[GradeChangeEvent]]:
        """The advanced query: "At least one of course_id, assignment_id, student_id, or grader_id
        must be specified" (Canvas answers 400 otherwise; refused here before asking)."""
        conditions = compact({"course_id": course, "assignment_id": assignment, "student_id": student,
                              "grader_id": grader})
        if not conditions:
            raise ValueError("give at least one of course, assignment, student or grader")
        return self._audit(GradeChangeEvent, "/api/v1/audit/grade_change", start, end, conditions)
