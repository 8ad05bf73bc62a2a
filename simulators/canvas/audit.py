"""HTTP routes for the course audit log and the Grade Change Log.

Course log: seed 002:L1350-1351, L1920-2208 (canvas.md §2.2): ``GET /api/v1/audit/course/courses/:course_id``
and ``GET /api/v1/audit/course/accounts/:account_id`` (this account and its sub-accounts' courses).
Grade Change Log (not in the seeds; canvas.md App. A.1, Canvas's public REST API documentation
https://canvas.instructure.com/doc/api/grade_change_log.html): ``GET /api/v1/audit/grade_change/
{assignments|courses|students|graders}/:id`` and the advanced query ``GET /api/v1/audit/grade_change``
("Must specify at least one query condition" without one). Both take ``start_time``/``end_time``
and answer a compound document, newest first, paged by bookmarks (``bookmarks.py``). Events of
anonymous assignments carry no student and are left out of every student query. Audit routes
need account admin rights; when auditors storage is "not configured" they answer 404 (App. A.3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas import bookmarks
from simulators.canvas.api import begin
from simulators.canvas.assignments import assignment_json
from simulators.canvas.audit_store import (
    Actor,
    AuditConfig,
    CourseEventRecord,
    Event,
    GradeEventRecord,
    Window,
)
from simulators.canvas.clock import iso, now, parse_time
from simulators.canvas.courses import course_json
from simulators.canvas.params import text
from simulators.canvas.refs import parse_ref
from simulators.canvas.responses import CanvasHTTPError, CanvasJSONResponse, not_found
from simulators.canvas.users import user_json

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator

COURSE_SECONDARY = ("courses", "users", "page_views")
GRADE_SECONDARY = ("assignments", "courses", "users", "page_views")


def course_event_json(event: CourseEventRecord, *, data_as_string: bool) -> dict[str, Any]:
    """A CourseEvent (lib/api/v1/course_event.rb shape)."""
    links: dict[str, Any] = {"course": event.course_id, "user": event.user_id, "page_view": None,
                             "sis_batch": event.sis_batch_id, **event.extra_links}
    data: Any = json.dumps(event.event_data) if data_as_string else event.event_data
    return {"id": event.id, "created_at": iso(event.created_at), "event_type": event.event_type,
            "event_data": data, "event_source": event.event_source, "links": links}


def grade_event_json(event: GradeEventRecord) -> dict[str, Any]:
    """A GradeChangeEvent (lib/api/v1/grade_change_event.rb shape)."""
    return {
        "id": event.id, "created_at": iso(event.created_at), "event_type": "grade_change",
        "excused_after": event.excused_after, "excused_before": event.excused_before,
        "grade_after": event.grade_after, "grade_before": event.grade_before,
        "graded_anonymously": event.graded_anonymously, "version_number": event.version_number,
        "request_id": event.request_id, "points_possible_after": event.points_possible_after,
        "points_possible_before": event.points_possible_before,
        "links": {"assignment": event.assignment_id, "course": event.course_id,
                  "student": None if event.anonymous else event.student_id, "grader": event.grader_id,
                  "page_view": None},
    }


class AuditRoutes:
    """Audit feed handlers and their ``/_sim/audit`` controls."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    @property
    def config(self) -> AuditConfig:
        """The audit switches."""
        return self.sim.audit.config

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        course = "/api/v1/audit/course"
        grade = "/api/v1/audit/grade_change"
        return [
            Route(course + "/accounts/{account_id}", self.course_for_account, methods=["GET"]),
            Route(course + "/courses/{course_id}", self.course_for_course, methods=["GET"]),
            Route(grade, self.grade_query, methods=["GET"]),
            Route(grade + "/courses/{course_id}", self.grade_for_course, methods=["GET"]),
            Route(grade + "/assignments/{assignment_id}", self.grade_for_assignment, methods=["GET"]),
            Route(grade + "/students/{student_id}", self.grade_for_student, methods=["GET"]),
            Route(grade + "/graders/{grader_id}", self.grade_for_grader, methods=["GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        """``/_sim/audit`` (switches), ``/_sim/audit/seed`` (history) and ``/_sim/audit/inject`` (head)."""
        return [
            Route("/_sim/audit", self.configure, methods=["GET", "PUT"]),
            Route("/_sim/audit/seed", self.seed, methods=["POST"]),
            Route("/_sim/audit/inject", self.inject, methods=["POST"]),
        ]

    # --- shared -------------------------------------------------------------------------------

    async def _begin(self, request: Request) -> dict[str, Any]:
        call = await begin(request, self.sim.tokens, manage=True)
        if not self.config.configured:
            raise not_found()
        return call.params

    def _window(self, params: dict[str, Any]) -> Window:
        bounds = []
        for name in ("start_time", "end_time"):
            raw = text(params, name)
            value = parse_time(raw) if raw else None
            if raw and value is None and self.config.invalid_time == "reject":
                raise CanvasHTTPError(400, {"errors": [{"message": f"{name} is not a valid time"}]})
            bounds.append(value)
        return Window(bounds[0], bounds[1])

    def _serve(self, request: Request, params: dict[str, Any], events: list[Event], grade: bool) -> Response:
        # per_page follows the simulator's paging rules; audit links are always bookmarks, never rel=last.
        size = bookmarks.per_page(request, self.sim.paging.default_per_page, self.sim.paging.max_per_page)
        after = bookmarks.decode(request.query_params.get("page"))
        page, next_key = self.sim.audit.page(events, self._window(params), after, size)
        body = self._document(request, page, grade)
        return CanvasJSONResponse(body, headers=bookmarks.link_header(request, size, next_key))

    def _document(self, request: Request, page: list[Event], grade: bool) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        as_string = self.config.event_data_as_string
        rendered = [grade_event_json(e) if isinstance(e, GradeEventRecord)
                    else course_event_json(e, data_as_string=as_string) for e in page]
        course_ids = sorted({e.course_id for e in page})
        user_ids: set[int] = set()
        assignment_ids: set[int] = set()
        for e in page:
            if isinstance(e, GradeEventRecord):
                assignment_ids.add(e.assignment_id)
                user_ids.update(u for u in (e.grader_id, None if e.anonymous else e.student_id) if u is not None)
            elif e.user_id is not None:
                user_ids.add(e.user_id)
        linked: dict[str, list[Any]] = {
            "courses": [course_json(self.sim.courses.courses[c]) for c in course_ids if c in self.sim.courses.courses],
            "users": [user_json(self.sim.users, self.sim.users.record(u)) for u in sorted(user_ids)
                      if u in self.sim.users.users or u in self.sim.accounts.users],
            "page_views": [],
        }
        if grade:
            linked["assignments"] = [assignment_json(self.sim.assignments.assignments[a], base)
                                     for a in sorted(assignment_ids) if a in self.sim.assignments.assignments]
            links: dict[str, Any] = {
                "events.assignment": {"href": None, "type": "assignment"},
                "events.course": {"href": f"{base}/api/v1/courses/{{events.course}}", "type": "course"},
                "events.student": {"href": None, "type": "user"},
                "events.grader": {"href": None, "type": "user"}, "events.page_view": None,
            }
        else:
            links = {"events.course": f"{base}/api/v1/courses/{{events.course}}", "events.user": None,
                     "events.sis_batch": None, "events.page_view": None}
        order = GRADE_SECONDARY if grade else COURSE_SECONDARY
        secondary = {name: linked[name] for name in order}
        shape = self.config.shape
        if shape == "canvas":
            return {"links": links, "events": rendered, "linked": secondary}
        meta = {"primaryCollection": "events"}
        if shape == "seed":
            return {"meta": meta, "events": rendered, **secondary}
        return {"meta": meta, "links": links, "events": rendered, "linked": secondary, **secondary}

    # --- course log ---------------------------------------------------------------------------

    async def course_for_account(self, request: Request) -> Response:
        """Course events of every course in the account or its sub-accounts."""
        params = await self._begin(request)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            events: list[Event] = list(self.sim.audit.course_events(lambda e: account.id in e.account_ids))
            return self._serve(request, params, events, grade=False)

    async def course_for_course(self, request: Request) -> Response:
        """Course events of one course (deleted courses included)."""
        params = await self._begin(request)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"], include_deleted=True)
            events: list[Event] = list(self.sim.audit.course_events(lambda e: e.course_id == course.id))
            return self._serve(request, params, events, grade=False)

    # --- grade change log ---------------------------------------------------------------------

    def _grade(self, request: Request, params: dict[str, Any], match: Callable[[GradeEventRecord], bool]) -> Response:
        events: list[Event] = list(self.sim.audit.grade_events(match))
        return self._serve(request, params, events, grade=True)

    def _user_id(self, raw: str) -> int:
        ref = parse_ref(raw)
        if ref.kind == "id":
            return ref.as_int()
        return self.sim.users.resolve(raw, 0, include_deleted=True).id

    async def grade_for_course(self, request: Request) -> Response:
        """Grade changes in one course."""
        params = await self._begin(request)
        with self.sim.lock:
            course = self.sim.courses.resolve(request.path_params["course_id"], include_deleted=True)
            return self._grade(request, params, lambda e: e.course_id == course.id)

    async def grade_for_assignment(self, request: Request) -> Response:
        """Grade changes of one assignment."""
        params = await self._begin(request)
        with self.sim.lock:
            raw = request.path_params["assignment_id"]
            if not raw.isdigit() or int(raw) not in self.sim.assignments.assignments:
                raise not_found()
            return self._grade(request, params, lambda e: e.assignment_id == int(raw))

    async def grade_for_student(self, request: Request) -> Response:
        """Grade changes of one student; anonymous events are dropped, as Canvas does."""
        params = await self._begin(request)
        with self.sim.lock:
            student = self._user_id(request.path_params["student_id"])
            return self._grade(request, params, lambda e: e.student_id == student and not e.anonymous)

    async def grade_for_grader(self, request: Request) -> Response:
        """Grade changes made by one grader."""
        params = await self._begin(request)
        with self.sim.lock:
            grader = self._user_id(request.path_params["grader_id"])
            return self._grade(request, params, lambda e: e.grader_id == grader)

    async def grade_query(self, request: Request) -> Response:
        """The advanced query: any of course_id, assignment_id, student_id, grader_id (at least one)."""
        params = await self._begin(request)
        with self.sim.lock:
            conditions: list[Callable[[GradeEventRecord], bool]] = []
            course_raw, assignment_raw = text(params, "course_id"), text(params, "assignment_id")
            student_raw, grader_raw = text(params, "student_id"), text(params, "grader_id")
            if course_raw:
                course_id = self.sim.courses.resolve(course_raw, include_deleted=True).id
                conditions.append(lambda e: e.course_id == course_id)
            if assignment_raw:
                assignment_id = int(assignment_raw) if assignment_raw.isdigit() else -1
                conditions.append(lambda e: e.assignment_id == assignment_id)
            if student_raw:
                student_id = self._user_id(student_raw)
                conditions.append(lambda e: e.student_id == student_id and not e.anonymous)
            if grader_raw:
                grader_id = self._user_id(grader_raw)
                conditions.append(lambda e: e.grader_id == grader_id)
            if not conditions:
                raise CanvasHTTPError(400, {"message": "Must specify at least one query condition"})
            return self._grade(request, params, lambda e: all(c(e) for c in conditions))

    # --- control ------------------------------------------------------------------------------

    async def configure(self, request: Request) -> Response:
        """GET shows, PUT changes the audit switches (partial update)."""
        if request.method == "PUT":
            body = await request.json()
            try:
                with self.sim.lock:
                    self.sim.audit.config = AuditConfig.model_validate({**self.config.model_dump(), **(body or {})})
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False)
                return CanvasJSONResponse({"errors": errors}, status_code=422)
        return CanvasJSONResponse(self.config.model_dump())

    def _synthesise(self, body: dict[str, Any], *, days: float, same_second: int) -> dict[str, Any]:
        """``count`` events spread evenly over ``days`` up to ``end``; ``same_second`` share one second.

        Without ``end`` and ``days`` the events are live writes: each a little after the previous one.
        """
        count = int(body.get("count", 1))
        live = body.get("end") is None and days == 0
        end = parse_time(body.get("end")) or now()
        start = end - timedelta(days=days)
        kind = body.get("kind", "course")
        actor = Actor(body.get("user_id"), body.get("event_source", "manual"), body.get("sis_batch_id"))
        span = (end - start).total_seconds()
        shared_index = count // 2
        stamps = []
        for i in range(count):
            offset = span * (i / max(1, count - 1)) if count > 1 else span
            stamps.append(start + timedelta(seconds=round(offset)))
        shared = stamps[shared_index] if stamps else end
        for i in range(shared_index, min(count, shared_index + same_second)):
            stamps[i] = shared
        at: list[datetime | None] = [None if live else stamp for stamp in stamps]
        if kind == "grade":
            course = self.sim.courses.resolve(str(body["course_id"]), include_deleted=True)
            assignment = self.sim.assignments.get(course, str(body["assignment_id"]))
            student = int(body.get("student_id", 0))
            for i, stamp in enumerate(at):
                self.sim.audit.record_grade(
                    course_id=course.id, assignment_id=assignment.id, student_id=student, actor=actor,
                    before=(str(i), False, assignment.points_possible),
                    after=(str(i + 1), False, assignment.points_possible),
                    anonymous=assignment.anonymous_grading, version_number=i + 1, at=stamp,
                )
        else:
            course = self.sim.courses.resolve(str(body["course_id"]), include_deleted=True)
            accounts = self.sim.courses.account_ids(course)
            for i, stamp in enumerate(at):
                self.sim.audit.record_course(
                    course_id=course.id, account_ids=accounts, event_type="updated",
                    event_data={"name": [f"seed {i}", f"seed {i + 1}"]}, actor=actor, at=stamp,
                )
        return {"created": count, "first": iso(min(stamps)) if stamps else None,
                "last": iso(max(stamps)) if stamps else None,
                "shared_second": iso(shared) if same_second and stamps else None}

    async def seed(self, request: Request) -> Response:
        """History: ``{"kind": "course"|"grade", "course_id", "count", "days", "same_second", "end"?}``."""
        body = await request.json()
        with self.sim.lock:
            result = self._synthesise(body, days=float(body.get("days", 1)),
                                      same_second=int(body.get("same_second", 0)))
        return CanvasJSONResponse(result)

    async def inject(self, request: Request) -> Response:
        """Events at the head: ``count`` live events now (or all at ``end`` when given)."""
        body = await request.json()
        with self.sim.lock:
            result = self._synthesise(body, days=0.0, same_second=0)
        return CanvasJSONResponse(result)
