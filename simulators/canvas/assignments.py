"""HTTP routes for assignments (seed 002:L17718-18620; canvas.md §3.10, §4 "Assignments").

``POST|GET /api/v1/courses/:course_id/assignments``, ``GET|PUT|DELETE .../assignments/:id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import begin
from simulators.canvas.assignment_store import AssignmentRecord
from simulators.canvas.paging import paginate
from simulators.canvas.responses import CanvasJSONResponse

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def assignment_json(assignment: AssignmentRecord, base: str) -> dict[str, Any]:
    """An Assignment (the seed's field names)."""
    return {
        "id": assignment.id, "name": assignment.name, "description": assignment.description,
        "created_at": assignment.created_at, "updated_at": assignment.updated_at, "due_at": assignment.due_at,
        "lock_at": assignment.lock_at, "unlock_at": assignment.unlock_at, "has_overrides": False,
        "course_id": assignment.course_id, "html_url": f"{base}/courses/{assignment.course_id}/assignments/"
        f"{assignment.id}", "assignment_group_id": None, "position": assignment.position,
        "points_possible": assignment.points_possible, "grading_type": assignment.grading_type,
        "submission_types": assignment.submission_types, "grading_standard_id": None,
        "published": assignment.published, "unpublishable": True, "only_visible_to_overrides": False,
        "omit_from_final_grade": False, "hide_in_gradebook": False, "post_manually": assignment.anonymous_grading,
        "anonymous_grading": assignment.anonymous_grading, "integration_id": assignment.integration_id,
        "sis_assignment_id": assignment.sis_assignment_id, "workflow_state": assignment.workflow_state,
        "graded_submissions_exist": False, "has_submitted_submissions": False,
    }


class AssignmentRoutes:
    """Assignment handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        base = "/api/v1/courses/{course_id}/assignments"
        return [
            Route(base, self.list_assignments, methods=["GET"]),
            Route(base, self.create, methods=["POST"]),
            Route(base + "/{assignment_id}", self.show, methods=["GET"]),
            Route(base + "/{assignment_id}", self.update, methods=["PUT"]),
            Route(base + "/{assignment_id}", self.delete, methods=["DELETE"]),
        ]

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def list_assignments(self, request: Request) -> Response:
        """Live assignments of the course by position."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            page, headers = paginate(request, self.sim.assignments.of_course(course, call.params), self.sim.paging)
            return CanvasJSONResponse([assignment_json(a, self._base(request)) for a in page], headers=headers)

    async def create(self, request: Request) -> Response:
        """A new assignment."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            assignment = self.sim.assignments.create(course, call.params)
            return CanvasJSONResponse(assignment_json(assignment, self._base(request)))

    async def show(self, request: Request) -> Response:
        """One assignment."""
        await begin(request, self.sim.tokens)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            assignment = self.sim.assignments.get(course, request.path_params["assignment_id"])
            return CanvasJSONResponse(assignment_json(assignment, self._base(request)))

    async def update(self, request: Request) -> Response:
        """Change the given fields."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            assignment = self.sim.assignments.get(course, request.path_params["assignment_id"])
            self.sim.assignments.update(assignment, call.params)
            return CanvasJSONResponse(assignment_json(assignment, self._base(request)))

    async def delete(self, request: Request) -> Response:
        """Delete and answer the assignment."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            assignment = self.sim.assignments.delete(
                self.sim.assignments.get(course, request.path_params["assignment_id"])
            )
            return CanvasJSONResponse(assignment_json(assignment, self._base(request)))
