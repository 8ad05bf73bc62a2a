"""HTTP routes for submissions, bulk grading and Progress.

Not in the seeds (canvas.md §3.9, FLOWS.md 2.6). Canvas's public REST API documentation:
- Submissions https://canvas.instructure.com/doc/api/submissions.html: "Get a single submission"
  (``GET /api/v1/courses/:course_id/assignments/:assignment_id/submissions/:user_id``), "List
  assignment submissions" (``GET .../assignments/:assignment_id/submissions``), "List submissions for
  multiple assignments" (``GET /api/v1/courses/:course_id/students/submissions`` with
  ``student_ids[]`` and ``assignment_ids[]``), "Grade or comment on a submission"
  (``PUT .../submissions/:user_id``) and "Grade or comment on multiple submissions"
  (``POST .../assignments/:assignment_id/submissions/update_grades``, answering a Progress).
- Progress https://canvas.instructure.com/doc/api/progress.html: ``GET /api/v1/progress/:id``.
``:user_id`` and ``student_ids[]`` take ``sis_user_id:X`` too. Grading needs account admin rights
or an active teacher/TA enrollment in the course.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import ApiCall, begin
from simulators.canvas.assignment_store import AssignmentRecord
from simulators.canvas.audit_store import Actor
from simulators.canvas.course_store import CourseRecord
from simulators.canvas.paging import paginate
from simulators.canvas.params import nested, text, text_list
from simulators.canvas.request_context import request_id
from simulators.canvas.responses import CanvasHTTPError, CanvasJSONResponse, unauthorized
from simulators.canvas.submission_store import GradeChange, SubmissionRecord

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def submission_json(submission: SubmissionRecord, base: str) -> dict[str, Any]:
    """A Submission."""
    url = f"{base}/courses/{submission.course_id}/assignments/{submission.assignment_id}/submissions/" \
          f"{submission.user_id}"
    return {
        "id": submission.id, "assignment_id": submission.assignment_id, "user_id": submission.user_id,
        "course_id": submission.course_id, "score": submission.score, "grade": submission.grade,
        "entered_score": submission.score, "entered_grade": submission.grade, "excused": submission.excused,
        "grader_id": submission.grader_id, "graded_at": submission.graded_at,
        "workflow_state": submission.workflow_state, "grade_matches_current_submission": True,
        "attempt": None, "body": None, "submission_type": None, "submitted_at": None, "url": None,
        "preview_url": url + "?preview=1", "html_url": url, "late": False, "missing": False,
        "late_policy_status": None, "points_deducted": None, "seconds_late": 0, "extra_attempts": None,
        "posted_at": submission.posted_at, "cached_due_date": None,
    }


class SubmissionRoutes:
    """Submission, bulk-grading and Progress handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        base = "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions"
        return [
            Route(base, self.list_assignment, methods=["GET"]),
            Route(base + "/update_grades", self.bulk_update, methods=["POST"]),
            Route(base + "/{user_id}", self.show, methods=["GET"]),
            Route(base + "/{user_id}", self.grade, methods=["PUT"]),
            Route("/api/v1/courses/{course_id}/students/submissions", self.list_many, methods=["GET"]),
            Route("/api/v1/progress/{progress_id}", self.progress, methods=["GET"]),
        ]

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def _target(self, request: Request) -> tuple[CourseRecord, AssignmentRecord]:
        course = self.sim.courses.resolve(request.path_params["course_id"])
        return course, self.sim.assignments.get(course, request.path_params["assignment_id"])

    def _user_id(self, raw: str, call: ApiCall) -> int:
        return self.sim.users.resolve(raw, call.principal.user_id).id

    def _require_grader(self, call: ApiCall, course: CourseRecord) -> None:
        if not (call.principal.can_manage or self.sim.enrollments.can_grade(course.id, call.principal.user_id)):
            raise unauthorized(self.sim.tokens.config.unauthorized_status)

    async def show(self, request: Request) -> Response:
        """One student's submission; a user who is not a student of the course is 404."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            _, assignment = self._target(request)
            user_id = self._user_id(request.path_params["user_id"], call)
            submission = self.sim.submissions.get(assignment, user_id)
            return CanvasJSONResponse(submission_json(submission, self._base(request)))

    async def list_assignment(self, request: Request) -> Response:
        """Every student's submission for the assignment."""
        await begin(request, self.sim.tokens)
        with self.sim.lock:
            _, assignment = self._target(request)
            found = self.sim.submissions.listing([assignment], None, None)
            page, headers = paginate(request, found, self.sim.paging)
            return CanvasJSONResponse([submission_json(s, self._base(request)) for s in page], headers=headers)

    async def list_many(self, request: Request) -> Response:
        """``student_ids[]`` (``all``, ids or SIS ids; default the caller) x ``assignment_ids[]``."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            raw_students = text_list(call.params, "student_ids")
            students: list[int] | None
            if "all" in raw_students:
                students = None
            elif raw_students:
                students = [self._user_id(raw, call) for raw in raw_students]
            else:
                students = [call.principal.user_id]
            assignments = self.sim.assignments.of_course(course, call.params)
            found = self.sim.submissions.listing(assignments, students, text(call.params, "graded_since"))
            page, headers = paginate(request, found, self.sim.paging)
            return CanvasJSONResponse([submission_json(s, self._base(request)) for s in page], headers=headers)

    async def grade(self, request: Request) -> Response:
        """Grade (``submission[posted_grade]``) or excuse (``submission[excuse]``) one submission."""
        call = await begin(request, self.sim.tokens)
        actor = Actor(call.principal.user_id, "api", request_id=request_id(request))
        with self.sim.lock:
            course, assignment = self._target(request)
            self._require_grader(call, course)
            user_id = self._user_id(request.path_params["user_id"], call)
            change = GradeChange.from_params(nested(call.params, "submission"))
            submission = self.sim.submissions.grade(assignment, user_id, change, actor)
            return CanvasJSONResponse(submission_json(submission, self._base(request)))

    async def bulk_update(self, request: Request) -> Response:
        """``grade_data[<student>][posted_grade|excuse]`` as an async job answering a Progress.

        The job runs under its own request id, so its grade-change events carry an id that no
        response header showed (FLOWS.md 2.6 trap 4).
        """
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            course, assignment = self._target(request)
            self._require_grader(call, course)
            rows = nested(call.params, "grade_data")
            if not rows:
                raise CanvasHTTPError(400, {"errors": [{"message": "grade_data is required"}]})
            job_actor = Actor(call.principal.user_id, "api", request_id=str(uuid.uuid4()))
            caller = call.principal.user_id

            def job() -> tuple[bool, str, dict[str, Any] | None]:
                done = 0
                for raw, row in rows.items():
                    try:
                        user_id = self.sim.users.resolve(str(raw), caller).id
                        change = GradeChange.from_params(row if isinstance(row, dict) else {})
                        self.sim.submissions.grade(assignment, user_id, change, job_actor)
                    except CanvasHTTPError:
                        return False, f"Couldn't find User(s) with API ids '{raw}'", {"updated": done}
                    done += 1
                return True, f"{done} submissions updated", {"updated": done}

            record = self.sim.progress.start(context_id=course.id, context_type="Course", user_id=caller,
                                             tag="submissions_update", job=job)
            return CanvasJSONResponse(self.sim.progress.to_json(record, self._base(request)))

    async def progress(self, request: Request) -> Response:
        """Poll a Progress (the job runs on the first poll, see ``progress_store.py``)."""
        await begin(request, self.sim.tokens)
        with self.sim.lock:
            record = self.sim.progress.poll(request.path_params["progress_id"])
            return CanvasJSONResponse(self.sim.progress.to_json(record, self._base(request)))
