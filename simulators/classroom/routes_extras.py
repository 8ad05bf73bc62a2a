"""Templates, class dates and reporting (seed 001:L745-1170, B.6.11-20).

A simulator hosts no live meetings, so attendance lists one session per class date that has
ended, with every student absent, and metrics are an empty list (inferred shapes from B.6.11-12).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.classroom.errors import not_found, validation
from simulators.classroom.records import Schedule, Template
from simulators.classroom.render import schedule_json, template_json
from simulators.classroom.responses import ClassJSONResponse
from simulators.classroom.validation import Checker, exactly_one, json_body, present

if TYPE_CHECKING:
    from simulators.classroom.state import ClassSimulator

CLASS_IDS = ("class_id", "ext_class_id")
STATUSES = ("published", "draft")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _required_query(query: dict[str, Any], name: str) -> str:
    if not present(query, name):
        raise validation({name: [f"The {name.replace('_', ' ')} field is required."]})
    return str(query[name])


def routes(sim: ClassSimulator) -> list[BaseRoute]:
    """The routes of ``/templates``, ``/schedules`` and ``/reporting``."""

    async def templates(request: Request) -> Response:
        method = request.method
        sim.keys.authorize(request.headers, "template:read" if method == "GET" else "template:write")
        query = dict(request.query_params)
        with sim.lock:
            store = sim.store
            if method == "GET":
                if present(query, "template_id"):
                    return ClassJSONResponse([template_json(store.template(query["template_id"]))])
                return ClassJSONResponse([template_json(t) for t in store.templates.values()])
            if method == "DELETE":
                template = store.template(_required_query(query, "template_id"))
                del store.templates[template.template_id]
                return ClassJSONResponse(template_json(template))
        body = await json_body(request)
        c = Checker(body)
        name = c.string("name", required=method == "POST")
        description = c.string("description")
        status = c.choice("status", STATUSES, "published" if method == "POST" else None)
        if method == "PATCH" and not present(body, "template_id"):
            c.add("template_id", "The template id field is required.")
        c.done()
        with sim.lock:
            if method == "POST":
                template = Template(store.ids.uuid(), name or "", description, status or "published")
                store.templates[template.template_id] = template
                return ClassJSONResponse(template_json(template), status_code=201)
            template = store.template(body["template_id"])
            template.name = name if name is not None else template.name
            template.description = description if "description" in body else template.description
            template.status = status or template.status
            return ClassJSONResponse(template_json(template))

    async def schedules(request: Request) -> Response:
        method = request.method
        sim.keys.authorize(request.headers, "schedule:read" if method == "GET" else "schedule:write")
        query = dict(request.query_params)
        store = sim.store
        if method == "GET":
            with sim.lock:
                record = store.find_class("class_id", _required_query(query, "class_id"))
                return ClassJSONResponse([schedule_json(s) for s in store.schedules.values()
                                          if s.class_id == record.class_id])
        if method == "DELETE":
            schedule_id = _required_query(query, "schedule_id")
            with sim.lock:
                if store.schedules.pop(schedule_id, None) is None:
                    raise not_found("schedule", schedule_id)
            return ClassJSONResponse({"message": "Success"})
        body = await json_body(request)
        c = Checker(body)
        class_id = c.string("class_id", required=True)
        start, end = c.integer("start_time", required=True), c.integer("end_time", required=True)
        timezone = c.timezone()
        c.done()
        assert class_id is not None and start is not None and end is not None and timezone is not None
        with sim.lock:
            record = store.find_class("class_id", class_id)
            schedule = Schedule(store.ids.uuid(), record.class_id, start, end, timezone, store.ids.uuid())
            store.schedules[schedule.schedule_id] = schedule
        return ClassJSONResponse({"schedule_id": schedule.schedule_id})

    async def attendance(request: Request) -> Response:
        sim.keys.authorize(request.headers, "attendance:read")
        name, value = exactly_one(dict(request.query_params), CLASS_IDS)
        now = datetime.now(UTC).timestamp()
        with sim.lock:
            record = sim.store.find_class(name, value)
            students = [{"student_id": e.student_id, "email": e.email, "ext_person_id": e.ext_person_id,
                         "present": False, "tardy": False, "join_time": None, "leave_time": None}
                        for e in record.enrollments if e.role == "student"]
            sessions = [{"session_id": s.session_id, "start_time": _iso(s.start_time), "end_time": _iso(s.end_time),
                         "students": students}
                        for s in sim.store.schedules.values() if s.class_id == record.class_id and s.end_time <= now]
        return ClassJSONResponse({"class_id": record.class_id, "sessions": sessions})

    async def metrics(request: Request) -> Response:
        sim.keys.authorize(request.headers, "metrics:read")
        query = dict(request.query_params)
        name, value = exactly_one(query, CLASS_IDS)
        c = Checker({k: int(v) if v.lstrip("-").isdigit() else v for k, v in query.items()})
        for key in ("starting_after", "ending_before", "limit"):
            c.integer(key)
        limit = c.body.get("limit")
        if isinstance(limit, int) and not 1 <= limit <= 1000:
            c.add("limit", "The limit must be between 1 and 1000.")
        c.done()
        with sim.lock:
            sim.store.find_class(name, value)
        return ClassJSONResponse([])

    return [
        Route("/api/v1/templates", templates, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/api/v1/schedules", schedules, methods=["GET", "POST", "DELETE"]),
        Route("/api/v1/reporting/attendance", attendance, methods=["GET"]),
        Route("/api/v1/reporting/metrics", metrics, methods=["GET"]),
    ]
