"""``/api/v1/classes``: create, read (all or one), update, remove (seed 001:L186-470, B.6.1-5).

The 201 of a create carries no ``class_id``: only ``meeting_id`` and the ``invite_link`` whose
``class_uuid`` is the new id (B.6.1). Single reads answer a one-element array; PATCH answers an
object (an array for a deferred record); only ``class_name`` and ``class_description`` change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.classroom.errors import duplicate_ext_class_id
from simulators.classroom.records import ClassRecord, Enrollment, Schedule
from simulators.classroom.render import class_json, deferred_json, invite_link, iso_now
from simulators.classroom.responses import ClassJSONResponse
from simulators.classroom.validation import Checker, exactly_one, json_body, present, query_bool

if TYPE_CHECKING:
    from simulators.classroom.state import ClassSimulator

CLASS_IDS = ("class_id", "ext_class_id")
CLASS_IDS_WITH_DEFERRED = ("class_id", "ext_class_id", "class_deferred_id")
JBH_TIMES = (0, 5, 10)


def _check_create(body: dict[str, Any]) -> Checker:
    c = Checker(body)
    c.email(required=True)
    for name in ("first_name", "last_name", "class_name"):
        c.string(name, required=True)
    for name in ("display_name", "ext_class_id", "class_description", "meeting_passcode"):
        c.string(name)
    c.timezone()
    sessions = body.get("session_times")
    if sessions is not None:
        if not isinstance(sessions, list):
            c.add("session_times", "The session times must be an array.")
        else:
            for i, session in enumerate(sessions):
                if not isinstance(session, dict):
                    c.add(f"session_times.{i}", "Each session must be an object.")
                    continue
                for key in ("start_time", "end_time"):
                    value = session.get(key)
                    if isinstance(value, bool) or not isinstance(value, int):
                        c.add(f"session_times.{i}.{key}", f"The session_times.{i}.{key} must be an integer.")
    settings = body.get("settings")
    if settings is not None:
        if not isinstance(settings, dict):
            c.add("settings", "The settings must be an object.")
        else:
            for key in ("waiting_room", "join_before_host"):
                if key in settings and not isinstance(settings[key], bool):
                    c.add(f"settings.{key}", f"The settings.{key} field must be true or false.")
            if "jbh_time" in settings and settings["jbh_time"] not in JBH_TIMES:
                c.add("settings.jbh_time", "The selected settings.jbh_time is invalid.")
    instructors = body.get("additional_instructors")
    if instructors is not None:
        if not isinstance(instructors, list):
            c.add("additional_instructors", "The additional instructors must be an array.")
        else:
            for i, item in enumerate(instructors):
                if not isinstance(item, dict):
                    c.add(f"additional_instructors.{i}", "Each additional instructor must be an object.")
                else:
                    inner = Checker(item)
                    inner.email(required=True)
                    for message in inner.errors.get("email", []):
                        c.add(f"additional_instructors.{i}.email", message)
    return c


def routes(sim: ClassSimulator) -> list[BaseRoute]:
    """The routes of ``/api/v1/classes``."""

    async def endpoint(request: Request) -> Response:
        method = request.method
        sim.keys.authorize(request.headers, "class:read" if method == "GET" else "class:write")
        if method == "GET":
            return read(request)
        if method == "POST":
            return create(await json_body(request))
        if method == "PATCH":
            return update(await json_body(request))
        return remove(request)

    def create(body: dict[str, Any]) -> Response:
        _check_create(body).done()
        cfg, store = sim.config, sim.store
        with sim.lock:
            ext = body.get("ext_class_id") or None
            if ext is not None and store.ext_taken(ext, reuse_deleted=cfg.reuse_deleted_ext_class_id):
                raise duplicate_ext_class_id(ext)
            now = iso_now()
            first, last = body["first_name"], body["last_name"]
            record = ClassRecord(
                class_id=store.ids.uuid(), ext_class_id=ext, class_name=body["class_name"],
                class_description=body.get("class_description"), meeting_id=store.ids.meeting_id(),
                host=body.get("display_name") or f"{first} {last}", password=body.get("meeting_passcode"),
                email=body["email"], timezone=body["timezone"], created_at=now, updated_at=now,
                settings=dict(body.get("settings") or {}),
            )
            # The instructor is on the roster as the teacher (B.6.7); so are additional instructors.
            record.enrollments.append(Enrollment(store.ids.uuid(), record.meeting_id, first, last, body["email"],
                                                 None, "teacher", body.get("display_name"), created_at=now))
            for item in body.get("additional_instructors") or []:
                record.enrollments.append(Enrollment(store.ids.uuid(), record.meeting_id, None, None,
                                                     item["email"], None, "teacher", created_at=now))
            for session in body.get("session_times") or []:
                schedule = Schedule(store.ids.uuid(), record.class_id, session["start_time"], session["end_time"],
                                    record.timezone, store.ids.uuid())
                store.schedules[schedule.schedule_id] = schedule
            if cfg.deferred_create:
                record.deferred_id = store.ids.next("class_deferred", start=1)
            store.classes[record.class_id] = record
            sim.stats.record_class_create(ext)
            if record.deferred_id is not None:
                body_out: dict[str, Any] = {"class_deferred_id": record.deferred_id, "class_id": record.class_id,
                                            "ext_id": record.ext_class_id}
            else:
                body_out = {"meeting_id": record.meeting_id, "invite_link": invite_link(cfg.org_host, record.class_id)}
            return ClassJSONResponse(body_out, status_code=201)

    def read(request: Request) -> Response:
        query = dict(request.query_params)
        deferred = query_bool(query.get("deferred"), "deferred")
        render = deferred_json if deferred else (lambda r: class_json(r, sim.config.org_host))
        with sim.lock:
            if not any(present(query, name) for name in CLASS_IDS):
                records = [r for r in sim.store.classes.values() if (r.deferred_id is not None) == deferred]
                return ClassJSONResponse([render(r) for r in records])
            name, value = exactly_one(query, CLASS_IDS)
            return ClassJSONResponse([render(sim.store.find_class(name, value, deferred=deferred))])

    def update(body: dict[str, Any]) -> Response:
        name, value = exactly_one(body, CLASS_IDS_WITH_DEFERRED)
        c = Checker(body)
        class_name, description = c.string("class_name"), c.string("class_description")
        c.done()
        with sim.lock:
            record = sim.store.find_class(name, value)
            # "Only a small subset of attributes is allowed for update" (B.6.4): others are ignored.
            if class_name is not None:
                record.class_name = class_name
            if "class_description" in body:
                record.class_description = description
            record.updated_at = iso_now()
            if record.deferred_id is not None:
                return ClassJSONResponse([deferred_json(record)])
            return ClassJSONResponse(class_json(record, sim.config.org_host))

    def remove(request: Request) -> Response:
        name, value = exactly_one(dict(request.query_params), CLASS_IDS_WITH_DEFERRED)
        with sim.lock:
            sim.store.delete_class(sim.store.find_class(name, value))
        return ClassJSONResponse({"message": "Success"})

    return [Route("/api/v1/classes", endpoint, methods=["GET", "POST", "PATCH", "DELETE"])]
