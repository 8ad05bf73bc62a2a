"""HTTP routes for enrollments (seed 002:L14212-14960; canvas.md §3.6, §4 "Enrollments").

- ``POST /api/v1/courses/:course_id/enrollments`` and ``POST /api/v1/sections/:section_id/enrollments``.
  ``enrollment[user_id]`` is accepted as a numeric id *and* as ``sis_user_id:X`` (or
  ``sis_login_id:``/``sis_integration_id:``). The seed does not say whether body parameters take
  SIS prefixes (canvas.md §1.6, §7 item 12: AMBIGUOUS); "Throughout the API" suggests yes, and
  Canvas's ``enrollments_api_controller`` resolves the value with ``api_find``, so both work here.
- ``DELETE /api/v1/courses/:course_id/enrollments/:id`` (``task`` conclude|delete|inactivate|deactivate),
  ``PUT /api/v1/courses/:course_id/enrollments/:id/reactivate``.
- ``GET /api/v1/courses/:course_id/enrollments``, ``GET /api/v1/sections/:section_id/enrollments``,
  ``GET /api/v1/users/:user_id/enrollments`` with ``state[]``, ``type[]``, ``role[]``, ``user_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import begin
from simulators.canvas.enrollment_store import EnrollmentRecord, bad_request
from simulators.canvas.paging import paginate
from simulators.canvas.params import nested, text
from simulators.canvas.responses import CanvasJSONResponse
from simulators.canvas.users import user_json

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def _grades(sim: CanvasSimulator, enrollment: EnrollmentRecord, base: str) -> dict[str, Any]:
    """Current (graded only) and final (ungraded count as 0) scores over published assignments."""
    course = sim.courses.courses[enrollment.course_id]
    graded_points = earned = total_points = 0.0
    for assignment in sim.assignments.of_course(course, {}):
        if assignment.grading_type == "not_graded":
            continue
        submission = sim.submissions.submissions.get((assignment.id, enrollment.user_id))
        if submission is not None and submission.excused:
            continue
        pp = assignment.points_possible or 0.0
        total_points += pp
        if submission is not None and submission.score is not None:
            earned += submission.score
            graded_points += pp
    current = round(earned / graded_points * 100, 2) if graded_points else None
    final = round(earned / total_points * 100, 2) if total_points else None
    return {
        "html_url": f"{base}/courses/{course.id}/grades/{enrollment.user_id}", "current_score": current,
        "final_score": final, "current_grade": None, "final_grade": None, "unposted_current_score": current,
        "unposted_final_score": final, "unposted_current_grade": None, "unposted_final_grade": None,
    }


def enrollment_json(sim: CanvasSimulator, enrollment: EnrollmentRecord, base: str) -> dict[str, Any]:
    """An Enrollment with its user and, for students, grades."""
    course = sim.courses.courses[enrollment.course_id]
    section = sim.sections.sections[enrollment.course_section_id]
    user = sim.users.record(enrollment.user_id)
    login = sim.users.primary_login(user)
    data: dict[str, Any] = {
        "id": enrollment.id, "user_id": enrollment.user_id, "course_id": enrollment.course_id,
        "type": enrollment.type, "created_at": enrollment.created_at, "updated_at": enrollment.updated_at,
        "associated_user_id": enrollment.associated_user_id, "start_at": enrollment.start_at,
        "end_at": enrollment.end_at, "course_section_id": enrollment.course_section_id,
        "root_account_id": enrollment.root_account_id,
        "limit_privileges_to_course_section": enrollment.limit_privileges_to_course_section,
        "enrollment_state": enrollment.enrollment_state, "role": enrollment.role, "role_id": enrollment.role_id,
        "last_activity_at": None, "last_attended_at": None, "total_activity_time": 0, "sis_import_id": None,
        "sis_account_id": sim.accounts.accounts[course.account_id].sis_account_id,
        "sis_course_id": course.sis_course_id, "course_integration_id": course.integration_id,
        "sis_section_id": section.sis_section_id, "section_integration_id": section.integration_id,
        "sis_user_id": login.sis_user_id if login else None,
        "html_url": f"{base}/courses/{course.id}/users/{enrollment.user_id}",
        "user": {k: v for k, v in user_json(sim.users, user).items() if k != "email"},
    }
    if enrollment.type == "StudentEnrollment":
        data["grades"] = _grades(sim, enrollment, base)
    return data


class EnrollmentRoutes:
    """Enrollment handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        course = "/api/v1/courses/{course_id}/enrollments"
        section = "/api/v1/sections/{section_id}/enrollments"
        return [
            Route(course, self.enroll, methods=["POST"]),
            Route(section, self.enroll, methods=["POST"]),
            Route(course, self.list_enrollments, methods=["GET"]),
            Route(section, self.list_enrollments, methods=["GET"]),
            Route("/api/v1/users/{user_id}/enrollments", self.list_enrollments, methods=["GET"]),
            Route(course + "/{enrollment_id}", self.end, methods=["DELETE"]),
            Route(course + "/{enrollment_id}/reactivate", self.reactivate, methods=["PUT"]),
        ]

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def enroll(self, request: Request) -> Response:
        """Create an enrollment (course URL: ``enrollment[course_section_id]`` or the default section)."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            enrollment_p = nested(call.params, "enrollment")
            if "section_id" in request.path_params:
                section = self.sim.sections.resolve(request.path_params["section_id"])
                course = self.sim.courses.resolve(str(section.course_id))
            else:
                course = self.sim.courses.resolve(request.path_params["course_id"])
                section_raw = text(enrollment_p, "course_section_id")
                section = (self.sim.sections.resolve(section_raw, course=course) if section_raw
                           else self.sim.sections.default_section(course))
            user_raw = text(enrollment_p, "user_id")
            if not user_raw:
                raise bad_request("Can't create an enrollment without a user. Include enrollment[user_id] "
                                  "to create an enrollment")
            user = self.sim.users.resolve(user_raw, call.principal.user_id)
            enrollment = self.sim.enrollments.enroll(course, section, user, call.params)
            return CanvasJSONResponse(enrollment_json(self.sim, enrollment, self._base(request)))

    async def list_enrollments(self, request: Request) -> Response:
        """Enrollments of a course, section or user; default states active and invited."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            scope: dict[str, int] = {}
            if "course_id" in request.path_params:
                scope["course_id"] = self.sim.courses.resolve(request.path_params["course_id"]).id
            elif "section_id" in request.path_params:
                scope["section_id"] = self.sim.sections.resolve(request.path_params["section_id"]).id
            else:
                scope["user_id"] = self.sim.users.resolve(request.path_params["user_id"], call.principal.user_id).id
            found = self.sim.enrollments.listing(call.params, **scope)
            page, headers = paginate(request, found, self.sim.paging)
            base = self._base(request)
            return CanvasJSONResponse([enrollment_json(self.sim, e, base) for e in page], headers=headers)

    async def end(self, request: Request) -> Response:
        """Conclude (default), delete or deactivate an enrollment."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            enrollment = self.sim.enrollments.get(course, request.path_params["enrollment_id"])
            self.sim.enrollments.end(enrollment, text(call.params, "task"))
            return CanvasJSONResponse(enrollment_json(self.sim, enrollment, self._base(request)))

    async def reactivate(self, request: Request) -> Response:
        """Activate an inactive enrollment."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            enrollment = self.sim.enrollments.get(course, request.path_params["enrollment_id"])
            self.sim.enrollments.reactivate(enrollment)
            return CanvasJSONResponse(enrollment_json(self.sim, enrollment, self._base(request)))
