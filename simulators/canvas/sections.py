"""HTTP routes for course sections (not in the seeds, canvas.md §3.5).

Canvas's public REST API documentation, Sections https://canvas.instructure.com/doc/api/sections.html:
"List course sections" (``GET /api/v1/courses/:course_id/sections``), "Create course section"
(``POST /api/v1/courses/:course_id/sections``), "Edit a section" (``PUT /api/v1/sections/:id``),
"Get section information" (``GET /api/v1/courses/:course_id/sections/:id``,
``GET /api/v1/sections/:id``) and "Delete a section" (``DELETE /api/v1/sections/:id``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import begin
from simulators.canvas.paging import paginate
from simulators.canvas.params import text_list
from simulators.canvas.responses import CanvasJSONResponse
from simulators.canvas.section_store import SectionRecord

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def section_json(sim: CanvasSimulator, section: SectionRecord, *, total_students: bool = False) -> dict[str, Any]:
    """A Section."""
    course = sim.courses.courses[section.course_id]
    data: dict[str, Any] = {
        "id": section.id, "name": section.name, "course_id": section.course_id,
        "sis_section_id": section.sis_section_id,
        "integration_id": section.integration_id, "sis_import_id": None, "sis_course_id": course.sis_course_id,
        "start_at": section.start_at, "end_at": section.end_at, "created_at": section.created_at,
        "restrict_enrollments_to_section_dates": section.restrict_enrollments_to_section_dates,
        "nonxlist_course_id": None,
    }
    if total_students:
        data["total_students"] = sum(
            1 for e in sim.enrollments.enrollments.values()
            if e.course_section_id == section.id and e.type == "StudentEnrollment"
            and e.enrollment_state in ("active", "invited")
        )
    return data


class SectionRoutes:
    """Section handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        course = "/api/v1/courses/{course_id}/sections"
        return [
            Route(course, self.list_sections, methods=["GET"]),
            Route(course, self.create, methods=["POST"]),
            Route(course + "/{section_id}", self.show, methods=["GET"]),
            Route("/api/v1/sections/{section_id}", self.show, methods=["GET"]),
            Route("/api/v1/sections/{section_id}", self.update, methods=["PUT"]),
            Route("/api/v1/sections/{section_id}", self.delete, methods=["DELETE"]),
        ]

    async def list_sections(self, request: Request) -> Response:
        """Active sections of the course."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            page, headers = paginate(request, self.sim.sections.of_course(course), self.sim.paging)
            totals = "total_students" in text_list(call.params, "include")
            return CanvasJSONResponse([section_json(self.sim, s, total_students=totals) for s in page],
                                      headers=headers)

    async def create(self, request: Request) -> Response:
        """A new section; without manage_sis its sis_section_id is dropped silently."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"])
            section = self.sim.sections.create(course, call.params, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(section_json(self.sim, section))

    async def show(self, request: Request) -> Response:
        """One section by id or ``sis_section_id:``."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            course = None
            if "course_id" in request.path_params:
                course = self.sim.courses.resolve(request.path_params["course_id"])
            section = self.sim.sections.resolve(request.path_params["section_id"], course=course)
            totals = "total_students" in text_list(call.params, "include")
            return CanvasJSONResponse(section_json(self.sim, section, total_students=totals))

    async def update(self, request: Request) -> Response:
        """Change name/dates; SIS fields need manage_sis (401 otherwise)."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            section = self.sim.sections.resolve(request.path_params["section_id"])
            self.sim.sections.update(section, call.params, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(section_json(self.sim, section))

    async def delete(self, request: Request) -> Response:
        """Delete an empty section and answer it."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            section = self.sim.sections.resolve(request.path_params["section_id"])
            return CanvasJSONResponse(section_json(self.sim, self.sim.sections.delete(section)))
