"""``/api/v1/class/enrollments`` and its launch link (seed 001:L490-735, B.6.6-10).

The class is named by exactly one of ``class_id``/``ext_class_id`` (a 400 otherwise). The person
is named by ``student_id``, ``ext_person_id`` or ``email``; when several are sent (the seed's own
PUT example sends ``ext_person_id`` and ``email``) the first in that order identifies the
enrollment and the others are new values (inferred, B.6.8). ``role`` defaults to ``student``
when omitted, on PUT too, so a PUT without ``role`` demotes a teacher (B.6.8). DELETE reads a
JSON body (B.6.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.classroom.errors import ClassError, error
from simulators.classroom.records import ClassRecord, Enrollment
from simulators.classroom.render import (
    deferred_enrollment_json,
    enrollment_created_json,
    enrollment_json,
    enrollment_updated_json,
    iso_now,
    launch_url,
)
from simulators.classroom.responses import ClassJSONResponse
from simulators.classroom.validation import Checker, exactly_one, first_of, json_body

if TYPE_CHECKING:
    from simulators.classroom.state import ClassSimulator

CLASS_IDS = ("class_id", "ext_class_id")
PERSON_IDS = ("student_id", "ext_person_id", "email")
ROLES = ("student", "assistant", "teacher")


def _person_fields(body: dict[str, Any]) -> tuple[Checker, dict[str, Any]]:
    c = Checker(body)
    fields = {
        "first_name": c.string("first_name", required=True), "last_name": c.string("last_name", required=True),
        "email": c.email(), "ext_person_id": c.string("ext_person_id"),
        "role": c.choice("role", ROLES, "student"), "display_name": c.string("display_name"),
    }
    return c, fields


def _same_person(e: Enrollment, fields: dict[str, Any]) -> bool:
    if fields["ext_person_id"] and e.ext_person_id == fields["ext_person_id"]:
        return True
    return bool(fields["email"] and e.email and e.email.lower() == fields["email"].lower())


def routes(sim: ClassSimulator) -> list[BaseRoute]:
    """The routes of ``/api/v1/class/enrollments`` and ``.../launch``."""

    async def endpoint(request: Request) -> Response:
        method = request.method
        sim.keys.authorize(request.headers, "enrollment:read" if method == "GET" else "enrollment:write")
        if method == "GET":
            return read(dict(request.query_params))
        body = await json_body(request, required=method == "DELETE")
        if method == "POST":
            return create(body)
        if method == "PUT":
            return update(body)
        return remove(body)

    def create(body: dict[str, Any]) -> Response:
        name, value = exactly_one(body, CLASS_IDS)
        c, fields = _person_fields(body)
        if not fields["email"] and not fields["ext_person_id"] and "email" not in c.errors:
            c.add("ext_person_id", "The ext person id field is required when email is not present.")
        c.done()
        store = sim.store
        with sim.lock:
            record = store.find_class(name, value)
            existing = next((e for e in record.enrollments if _same_person(e, fields)), None)
            if existing is not None:
                if sim.config.duplicate_enrollment == "error":
                    raise error(400, "Enrollment exists for the person provided.")
                _apply(existing, fields)
                enrollment = existing
            else:
                enrollment = Enrollment(store.ids.uuid(), record.meeting_id, fields["first_name"],
                                        fields["last_name"], fields["email"], fields["ext_person_id"],
                                        fields["role"], fields["display_name"], created_at=iso_now())
                if record.deferred_id is not None:
                    enrollment.deferred_id = store.ids.next("deferred_enrollment")
                record.enrollments.append(enrollment)
            if record.deferred_id is not None:
                return ClassJSONResponse(deferred_enrollment_json(record, enrollment))
            return ClassJSONResponse(enrollment_created_json(enrollment))

    def read(query: dict[str, Any]) -> Response:
        name, value = exactly_one(query, CLASS_IDS)
        with sim.lock:
            record = sim.store.find_class(name, value)
            return ClassJSONResponse([enrollment_json(e) for e in record.enrollments])

    def update(body: dict[str, Any]) -> Response:
        name, value = exactly_one(body, CLASS_IDS)
        person, person_value = first_of(body, PERSON_IDS)
        c, fields = _person_fields(body)
        c.done()
        with sim.lock:
            record = sim.store.find_class(name, value)
            try:
                enrollment = sim.store.find_enrollment(record, person, person_value)
            except ClassError:
                if not sim.config.put_creates_enrollment:
                    raise
                enrollment = Enrollment(sim.store.ids.uuid(), record.meeting_id, None, None, None, None,
                                        created_at=iso_now())
                record.enrollments.append(enrollment)
            _apply(enrollment, fields, identified_by=person)
            return ClassJSONResponse(enrollment_updated_json(enrollment))

    def remove(body: dict[str, Any]) -> Response:
        name, value = exactly_one(body, CLASS_IDS)
        person, person_value = first_of(body, PERSON_IDS)
        with sim.lock:
            record = sim.store.find_class(name, value)
            record.enrollments.remove(sim.store.find_enrollment(record, person, person_value))
        return ClassJSONResponse({"message": "Success"})

    async def launch(request: Request) -> Response:
        sim.keys.authorize(request.headers, "enrollment:read")
        query = dict(request.query_params)
        name, value = exactly_one(query, CLASS_IDS)
        person, person_value = exactly_one(query, ("email", "ext_person_id"))
        with sim.lock:
            record: ClassRecord = sim.store.find_class(name, value)
            enrollment = sim.store.find_enrollment(record, person, person_value)
            url = launch_url(sim.config.org_host, record, enrollment, sim.store.ids.uuid())
        return ClassJSONResponse({"launch_url": url})

    return [
        Route("/api/v1/class/enrollments", endpoint, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/api/v1/class/enrollments/launch", launch, methods=["GET"]),
    ]


def _apply(enrollment: Enrollment, fields: dict[str, Any], identified_by: str | None = None) -> None:
    """New names, role (student when omitted) and display name; email and ext_person_id change
    only when they were not what identified the enrollment."""
    enrollment.first_name, enrollment.last_name = fields["first_name"], fields["last_name"]
    enrollment.role = fields["role"]
    if fields["display_name"] is not None:
        enrollment.display_name = fields["display_name"]
    if fields["email"] is not None and identified_by != "email":
        enrollment.email = fields["email"]
    if fields["ext_person_id"] is not None and identified_by not in ("ext_person_id", "email"):
        enrollment.ext_person_id = fields["ext_person_id"]
