"""HTTP routes for courses (seed 002:L18719-19400; canvas.md §3.4, §4 "Courses", §5.6).

- ``POST /api/v1/accounts/:account_id/courses``; ``GET /api/v1/accounts/:account_id/courses``
  (``state[]``, ``search_term``, ``enrollment_term_id``, ``published``).
- ``GET /api/v1/courses/:id`` and ``GET /api/v1/accounts/:account_id/courses/:id`` (id or
  ``sis_course_id:``); a deleted course is 404 "The specified resource does not exist." unless
  ``include[]=all_courses``.
- ``PUT /api/v1/courses/:id`` (``course[...]``, ``course[event]``); ``DELETE /api/v1/courses/:id``
  with ``event=delete|conclude`` answering ``{"delete": "true"}`` / ``{"conclude": "true"}`` as the
  seed's example prints it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import begin
from simulators.canvas.audit_store import Actor
from simulators.canvas.course_store import CourseRecord
from simulators.canvas.paging import paginate
from simulators.canvas.params import text, text_list
from simulators.canvas.request_context import request_id
from simulators.canvas.responses import CanvasJSONResponse, not_found, validation_error

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def course_json(course: CourseRecord) -> dict[str, Any]:
    """A Course (the seed's field names; includes are not modelled)."""
    return {
        "id": course.id, "name": course.name, "course_code": course.course_code, "original_name": None,
        "uuid": course.uuid, "account_id": course.account_id, "root_account_id": course.root_account_id,
        "enrollment_term_id": course.enrollment_term_id, "sis_course_id": course.sis_course_id,
        "integration_id": course.integration_id, "sis_import_id": None, "workflow_state": course.workflow_state,
        "start_at": course.start_at, "end_at": course.end_at, "created_at": course.created_at,
        "is_public": course.is_public, "is_public_to_auth_users": False, "public_syllabus": False,
        "public_syllabus_to_auth": False, "storage_quota_mb": 500, "hide_final_grades": False,
        "apply_assignment_group_weights": False, "restrict_enrollments_to_course_dates":
            course.restrict_enrollments_to_course_dates, "time_zone": course.time_zone,
        "default_view": course.default_view, "license": course.license, "grading_standard_id": None,
        "blueprint": False, "template": False, "calendar": {"ics": None},
    }


class CourseRoutes:
    """Course handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        acct = "/api/v1/accounts/{account_id}/courses"
        return [
            Route(acct, self.create, methods=["POST"]),
            Route(acct, self.list_courses, methods=["GET"]),
            Route(acct + "/{course_id}", self.show, methods=["GET"]),
            Route("/api/v1/courses/{course_id}", self.show, methods=["GET"]),
            Route("/api/v1/courses/{course_id}", self.update, methods=["PUT"]),
            Route("/api/v1/courses/{course_id}", self.delete, methods=["DELETE"]),
        ]

    async def create(self, request: Request) -> Response:
        """A new course (``created`` event; ``offer`` publishes it, another event)."""
        call = await begin(request, self.sim.tokens, manage=True)
        actor = Actor(call.principal.user_id, "api", request_id=request_id(request))
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            course = self.sim.courses.create(account, call.params, actor,
                                             can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(course_json(course))

    async def list_courses(self, request: Request) -> Response:
        """Courses of the account and its sub-accounts."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            courses = self.sim.courses.in_account(account, call.params)
            page, headers = paginate(request, courses, self.sim.paging)
            return CanvasJSONResponse([course_json(c) for c in page], headers=headers)

    async def show(self, request: Request) -> Response:
        """One course; deleted ones only with ``include[]=all_courses``."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            include_deleted = "all_courses" in text_list(call.params, "include")
            course = self.sim.courses.resolve(request.path_params["course_id"], include_deleted=include_deleted)
            if "account_id" in request.path_params:
                account = self.sim.accounts.resolve(request.path_params["account_id"])
                if account.id not in self.sim.courses.account_ids(course):
                    raise not_found()
            return CanvasJSONResponse(course_json(course))

    async def update(self, request: Request) -> Response:
        """Change fields (``updated`` event) and apply ``course[event]``."""
        call = await begin(request, self.sim.tokens, manage=True)
        actor = Actor(call.principal.user_id, "api", request_id=request_id(request))
        with self.sim.lock:
            include_deleted = isinstance(call.params.get("course"), dict) and \
                text(call.params["course"], "event") == "undelete"
            course = self.sim.courses.resolve(request.path_params["course_id"], include_deleted=include_deleted)
            self.sim.courses.update(course, call.params, actor, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(course_json(course))

    async def delete(self, request: Request) -> Response:
        """``event=delete|conclude`` (required)."""
        call = await begin(request, self.sim.tokens, manage=True)
        actor = Actor(call.principal.user_id, "api", request_id=request_id(request))
        event = text(call.params, "event")
        if event not in ("delete", "conclude"):
            raise validation_error("event", "inclusion", "event must be delete or conclude")
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            self.sim.courses.apply_event(course, event, actor)
            return CanvasJSONResponse({event: "true"})
