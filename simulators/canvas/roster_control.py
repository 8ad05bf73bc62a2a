"""Control routes for the changes a person (or a SIS import) makes in Canvas, not the worker.

- ``POST /_sim/courses/:course_id/change`` ``{"user_id", "event_source": "manual"|"sis",
  "sis_batch_id"?, "course": {...}, "event"?}``: a course edit recorded as that user.
- ``POST /_sim/grades`` ``{"course_id", "assignment_id", "user_id" (id or sis_user_id:), "grader_id",
  "posted_grade"?, "excuse"?}``: a teacher's grade change (its own request id).
- ``PUT /_sim/assignments/:assignment_id`` ``{"anonymous_grading": bool}``.
- ``PUT /_sim/progress`` ``{"running_polls": n}``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.audit_store import Actor
from simulators.canvas.courses import course_json
from simulators.canvas.progress_store import ProgressConfig
from simulators.canvas.responses import CanvasHTTPError, CanvasJSONResponse
from simulators.canvas.submission_store import GradeChange
from simulators.canvas.submissions import submission_json

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


class CourseChange(BaseModel):
    """A course edit made outside the worker."""

    user_id: int
    event_source: str = Field(default="manual", pattern="^(manual|sis|api)$")
    sis_batch_id: int | None = None
    course: dict[str, Any] = Field(default_factory=dict)
    event: str | None = None


class GradeEdit(BaseModel):
    """A grade change made by a teacher in Canvas."""

    course_id: str
    assignment_id: str
    user_id: str
    grader_id: int
    posted_grade: str | None = None
    excuse: bool | None = None


def _invalid(exc: ValidationError) -> Response:
    return CanvasJSONResponse({"errors": exc.errors(include_url=False, include_context=False)}, status_code=422)


def _error(exc: CanvasHTTPError) -> Response:
    return CanvasJSONResponse(exc.body, status_code=exc.status)


class RosterControlRoutes:
    """The ``/_sim/`` routes for human-made roster and gradebook changes."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def control_routes(self) -> list[BaseRoute]:
        """The control routes."""
        return [
            Route("/_sim/courses/{course_id}/change", self.change_course, methods=["POST"]),
            Route("/_sim/grades", self.change_grade, methods=["POST"]),
            Route("/_sim/assignments/{assignment_id}", self.flag_assignment, methods=["PUT"]),
            Route("/_sim/progress", self.progress_config, methods=["GET", "PUT"]),
        ]

    async def change_course(self, request: Request) -> Response:
        """Apply a course edit as another user; answers the course and the events it recorded."""
        try:
            change = CourseChange.model_validate(await request.json())
        except ValidationError as exc:
            return _invalid(exc)
        actor = Actor(change.user_id, change.event_source, change.sis_batch_id)  # type: ignore[arg-type]
        course_p = dict(change.course)
        if change.event:
            course_p["event"] = change.event
        try:
            with self.sim.lock:
                self.sim.accounts.add_user(change.user_id)
                course = self.sim.courses.resolve(request.path_params["course_id"], include_deleted=True)
                before = self.sim.audit.counts()["course_events"]
                self.sim.courses.update(course, {"course": course_p}, actor, can_manage_sis=True)
                recorded = self.sim.audit.counts()["course_events"] - before
                return CanvasJSONResponse({**course_json(course), "events_recorded": recorded})
        except CanvasHTTPError as exc:
            return _error(exc)

    async def change_grade(self, request: Request) -> Response:
        """Grade a submission as ``grader_id`` (a teacher in the Canvas UI)."""
        try:
            edit = GradeEdit.model_validate(await request.json())
        except ValidationError as exc:
            return _invalid(exc)
        actor = Actor(edit.grader_id, "manual", request_id=str(uuid.uuid4()))
        try:
            with self.sim.lock:
                self.sim.accounts.add_user(edit.grader_id)
                course = self.sim.courses.resolve(edit.course_id, include_deleted=True)
                assignment = self.sim.assignments.get(course, edit.assignment_id)
                user = self.sim.users.resolve(edit.user_id, edit.grader_id)
                change = GradeChange(edit.posted_grade, edit.excuse)
                submission = self.sim.submissions.grade(assignment, user.id, change, actor)
                base = str(request.base_url).rstrip("/")
                return CanvasJSONResponse({**submission_json(submission, base), "request_id": actor.request_id})
        except CanvasHTTPError as exc:
            return _error(exc)

    async def flag_assignment(self, request: Request) -> Response:
        """Mark an assignment anonymous (or not)."""
        body = await request.json()
        with self.sim.lock:
            raw = request.path_params["assignment_id"]
            assignment = self.sim.assignments.assignments.get(int(raw)) if raw.isdigit() else None
            if assignment is None:
                return CanvasJSONResponse({"errors": [{"message": "unknown assignment"}]}, status_code=404)
            if "anonymous_grading" in body:
                assignment.anonymous_grading = bool(body["anonymous_grading"])
            return CanvasJSONResponse({"id": assignment.id, "anonymous_grading": assignment.anonymous_grading})

    async def progress_config(self, request: Request) -> Response:
        """GET shows, PUT changes how many polls answer ``running``."""
        if request.method == "PUT":
            try:
                config = ProgressConfig.model_validate(await request.json())
            except ValidationError as exc:
                return _invalid(exc)
            with self.sim.lock:
                self.sim.progress.config = config
        return CanvasJSONResponse(self.sim.progress.config.model_dump())
