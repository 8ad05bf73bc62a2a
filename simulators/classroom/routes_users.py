"""``/api/v1/users``: upsert, read (all, paged or one), remove (seed 001:L1180-1380, B.6.21-24).

PUT is an upsert keyed by ``identified_by`` (id, ext_user_id or email): 200 with the updated user,
or 201 with a new one. An ``ext_user_id`` of null keeps the stored value (the seed's 200 example
still shows "888" after a body with null; inferred). E-mail and ext_user_id are unique (inferred:
"The email has already been taken."). GET without identifiers answers a bare array, or the
``{"data", "pagination"}`` envelope when ``page`` or ``limit`` is given (B.5, B.9.8).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.classroom.errors import ClassError, validation
from simulators.classroom.records import UserRecord
from simulators.classroom.render import user_json
from simulators.classroom.responses import ClassJSONResponse
from simulators.classroom.validation import Checker, exactly_one, json_body, present

if TYPE_CHECKING:
    from simulators.classroom.state import ClassSimulator
    from simulators.classroom.store import ClassStore

USER_IDS = ("id", "ext_user_id", "email")
ROLES = ("admin", "instructor", "instructional-designer")


def _positive(query: dict[str, Any], name: str, default: int, maximum: int | None = None) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation({name: [f"The {name} must be an integer."]}) from None
    if value < 1:
        raise validation({name: [f"The {name} must be at least 1."]})
    if maximum is not None and value > maximum:
        raise validation({name: [f"The {name} may not be greater than {maximum}."]})
    return value


def _taken(store: ClassStore, user: UserRecord | None, field: str, value: str | None) -> bool:
    return value is not None and any(
        getattr(other, field) == value and other is not user for other in store.users.values()
    )


def routes(sim: ClassSimulator) -> list[BaseRoute]:
    """The routes of ``/api/v1/users``."""

    async def endpoint(request: Request) -> Response:
        method = request.method
        sim.keys.authorize(request.headers, "user:read" if method == "GET" else "user:write")
        if method == "GET":
            return read(dict(request.query_params))
        if method == "PUT":
            return upsert(await json_body(request))
        return remove(dict(request.query_params))

    def upsert(body: dict[str, Any]) -> Response:
        c = Checker(body)
        identified_by = c.choice("identified_by", USER_IDS)
        if "identified_by" not in body:
            c.add("identified_by", "The identified by field is required.")
        user_name = c.string("user_name", required=True)
        email = c.email()
        ext_user_id = c.string("ext_user_id")
        if identified_by == "id":
            c.integer("id", required=True)
        elif identified_by is not None and not present(body, identified_by):
            label = identified_by.replace("_", " ")
            c.add(identified_by, f"The {label} field is required when identified by is {identified_by}.")
        roles = body.get("roles")
        if roles is not None:
            if not isinstance(roles, list):
                c.add("roles", "The roles must be an array.")
            else:
                for i, role in enumerate(roles):
                    if role not in ROLES:
                        c.add(f"roles.{i}", f"The selected roles.{i} is invalid.")
        c.done()
        assert identified_by is not None and user_name is not None
        store = sim.store
        with sim.lock:
            try:
                user: UserRecord | None = store.find_user(identified_by, body[identified_by])
            except ClassError:
                user = None
            for field, value in (("email", email), ("ext_user_id", ext_user_id)):
                if _taken(store, user, field, value):
                    raise validation({field: [f"The {field.replace('_', ' ')} has already been taken."]})
            status = 200
            if user is None:
                status = 201
                user = UserRecord(store.ids.next("user"), None, None, user_name, ["instructor"])
                store.users[user.id] = user
            user.user_name = user_name
            if email is not None:
                user.email = email
            if ext_user_id is not None:
                user.ext_user_id = ext_user_id
            if roles is not None:
                user.roles = list(dict.fromkeys(roles))
            return ClassJSONResponse(user_json(user), status_code=status)

    def read(query: dict[str, Any]) -> Response:
        with sim.lock:
            if any(present(query, name) for name in USER_IDS):
                name, value = exactly_one(query, USER_IDS)
                return ClassJSONResponse([user_json(sim.store.find_user(name, value))])
            users = [user_json(u) for u in sim.store.users.values()]
        if not present(query, "page") and not present(query, "limit"):
            return ClassJSONResponse(users)
        page = _positive(query, "page", 1)
        limit = _positive(query, "limit", sim.config.users_page_limit, 1000)
        pages = math.ceil(len(users) / limit)
        return ClassJSONResponse({
            "data": users[(page - 1) * limit: page * limit],
            "pagination": {"total_records": len(users), "current_page": page, "total_pages": pages,
                           "next_page": page + 1 if page < pages else None,
                           "prev_page": page - 1 if page > 1 else None},
        })

    def remove(query: dict[str, Any]) -> Response:
        name, value = exactly_one(query, USER_IDS)
        with sim.lock:
            user = sim.store.find_user(name, value)
            del sim.store.users[user.id]
            return ClassJSONResponse(user_json(user))

    return [Route("/api/v1/users", endpoint, methods=["GET", "PUT", "DELETE"])]
