"""Typed results of the "Class" client and the pure functions that parse them from JSON.

Field names are Class's own (matrix_class.md B.6; seed 001 line numbers as ``seed L<n>``). Types
are strict: a number where Class documents a string (``meeting_id`` is ``"92117646134"``) is a
malformed answer, never coerced. Shapes the seed itself varies are read as it varies them:
single reads answer a one-element array (B.2), a PATCH an object or, for a deferred record, an
array (B.6.4), Get All Users a bare array or the paginated envelope (B.5). Every parse function
returns its model or raises an ``UpstreamError`` (``MalformedResponseError`` naming the field),
nothing else, whatever JSON it is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from worker.clients.classroom_errors import SYSTEM
from worker.clients.errors import MalformedResponseError, NotFoundError

M = TypeVar("M", bound=BaseModel)


def malformed(message: str) -> MalformedResponseError:
    """A ``MalformedResponseError`` of Class."""
    return MalformedResponseError(SYSTEM, message)


def parse_class_time(value: Any) -> datetime | None:
    """``"2023-03-03T14:48:06.312Z"`` (ISO 8601, ms, Z; B.2) as an aware datetime; null stays null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Strict(BaseModel):
    """Class JSON: strict types, unknown fields ignored (new Class fields never break parsing)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Timestamped(_Strict):
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("created_at", "updated_at", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> datetime | None:
        return parse_class_time(value)


class ClassInfo(_Strict):
    """A live class (Get Single Class Info, seed L414-425; B.6.2)."""

    class_id: str  # UUID
    ext_class_id: str | None = None
    class_name: str
    class_description: str | None = None
    meeting_id: str | None = None  # numeric string
    host: str | None = None  # the instructor's display name
    invite_link: str | None = None
    password: str | None = None  # the meeting passcode


class DeferredClass(_Timestamped):
    """A deferred ("scheduled") class record (seed L305-328, L427-440): no meeting yet."""

    class_deferred_id: int
    class_id: str
    ext_class_id: str | None = None
    email: str | None = None  # the instructor's
    class_name: str
    class_description: str | None = None


AnyClass = ClassInfo | DeferredClass


class CreatedClass(_Strict):
    """The 201 of Create a Class, either variant (seed L227-240).

    The regular answer has no ``class_id``: it is taken from the ``invite_link``'s ``class_uuid``
    (B.6.1) and is ``None`` when the link carries none. The deferred answer names the external
    id ``ext_id``; it is given here as ``ext_class_id``.
    """

    deferred: bool
    class_id: str | None = None
    meeting_id: str | None = None
    invite_link: str | None = None
    class_deferred_id: int | None = None
    ext_class_id: str | None = None


class Enrollment(_Strict):
    """One person of a class roster (Get Enrollments, seed L643-665); the host is one, role ``teacher``."""

    student_id: str  # UUID, for every role (B.6.7)
    meeting_id: str | None = None
    user_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    ext_person_id: str | None = None
    role: str


class DeferredEnrollmentUser(_Strict):
    """``user`` of a deferred enrollment (seed L540-547)."""

    role: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    user_name: str | None = None
    ext_person_id: str | None = None


class DeferredEnrollment(_Timestamped):
    """The 200 (Deferred) of Create an Enrollment into a deferred class (seed L527-552).

    ``class_deferred_id`` is a string there (``"7"``) and an integer elsewhere; it is kept as text.
    """

    id: int
    class_deferred_id: str
    email_user: str | None = None
    role: str | None = None
    user: DeferredEnrollmentUser | None = None
    ext_class_id: str | None = None  # enroll_params.class.ext_id

    @field_validator("class_deferred_id", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class User(_Strict):
    """A staff (non-learner) user (seed L1227-1253, B.6.21); compare ``roles`` as a set (B.6.21)."""

    id: int
    ext_user_id: str | None = None
    email: str | None = None
    user_name: str
    roles: list[str] = Field(default_factory=list)
    is_zoom_configured: bool | None = None

    @property
    def role_set(self) -> frozenset[str]:
        """The roles, order ignored (Class reorders them, B.6.21)."""
        return frozenset(self.roles)


class UsersPage(_Strict):
    """One page of Get All Users (seed L94-131): the envelope's pagination, or one page of all."""

    users: list[User]
    current_page: int
    total_records: int | None = None
    total_pages: int | None = None
    next_page: int | None = None
    prev_page: int | None = None


class _RawPagination(_Strict):
    total_records: int | None = None
    current_page: int | None = None
    total_pages: int | None = None
    next_page: int | None = None
    prev_page: int | None = None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"field '{where}': {err['msg']} (got {type(err.get('input')).__name__})"


def parse_as(model: type[M], data: Any, what: str) -> M:
    """``data`` validated as ``model``, or ``MalformedResponseError`` naming ``what`` and the field."""
    if not isinstance(data, dict):
        raise malformed(f"{what}: expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise malformed(f"{what}: {_first_error(exc)}") from exc


def _list(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise malformed(f"{what}: expected a JSON array, got {type(body).__name__}")
    return body


def single(body: Any, what: str) -> Any:
    """The one record of a single read: Class answers a one-element array (B.2); an object (the
    PATCH form) is accepted as that record, an empty array is "not found", more is malformed."""
    if isinstance(body, dict):
        return body
    items = _list(body, what)
    if not items:
        raise NotFoundError(SYSTEM, f"{what}: empty answer to a single read", status=200)
    if len(items) > 1:
        raise malformed(f"{what}: a single read answered {len(items)} records")
    return items[0]


def class_uuid_of(invite_link: Any) -> str | None:
    """The ``class_uuid`` query parameter of an invite link (B.6.1), if any."""
    if not isinstance(invite_link, str):
        return None
    try:
        values = parse_qs(urlsplit(invite_link).query).get("class_uuid")
    except ValueError:
        return None
    return values[0] if values and values[0] else None


def parse_classes(body: Any) -> list[ClassInfo]:
    """Get All Classes Info (seed L280-303)."""
    return [parse_as(ClassInfo, item, "class") for item in _list(body, "classes")]


def parse_single_class(body: Any) -> ClassInfo:
    """Get Single Class Info: the one-element array unwrapped (seed L414-425)."""
    return parse_as(ClassInfo, single(body, "class"), "class")


def parse_deferred_classes(body: Any) -> list[DeferredClass]:
    """Get All Classes Info with ``deferred=true`` (seed L305-328)."""
    return [parse_as(DeferredClass, item, "deferred class") for item in _list(body, "deferred classes")]


def parse_single_deferred_class(body: Any) -> DeferredClass:
    """Get Single Class Info with ``deferred=true`` (seed L427-440)."""
    return parse_as(DeferredClass, single(body, "deferred class"), "deferred class")


def parse_patched_class(body: Any) -> AnyClass:
    """Update a Class: an object for a live class, a one-element array for a deferred record (B.6.4)."""
    if isinstance(body, list):
        return parse_as(DeferredClass, single(body, "patched deferred class"), "patched deferred class")
    return parse_as(ClassInfo, body, "patched class")


def parse_created_class(body: Any) -> CreatedClass:
    """The 201 of Create a Class, regular or deferred (seed L227-240)."""
    if not isinstance(body, dict):
        raise malformed(f"created class: expected a JSON object, got {type(body).__name__}")
    if "class_deferred_id" in body:
        raw = {"deferred": True, "class_deferred_id": body.get("class_deferred_id"),
               "class_id": body.get("class_id"), "ext_class_id": body.get("ext_id", body.get("ext_class_id"))}
        created = parse_as(CreatedClass, raw, "created deferred class")
        if created.class_deferred_id is None:
            raise malformed("created deferred class: 'class_deferred_id' is null")
        return created
    raw = {"deferred": False, "meeting_id": body.get("meeting_id"), "invite_link": body.get("invite_link")}
    created = parse_as(CreatedClass, raw, "created class")
    uuid = body.get("class_id") if isinstance(body.get("class_id"), str) else class_uuid_of(created.invite_link)
    return created.model_copy(update={"class_id": uuid})


def parse_enrollments(body: Any) -> list[Enrollment]:
    """Get Enrollments: the whole roster, teacher included (seed L643-665)."""
    return [parse_as(Enrollment, item, "enrollment") for item in _list(body, "enrollments")]


def parse_enrollment_answer(body: Any) -> Enrollment | DeferredEnrollment:
    """The 200 of Create/Update an Enrollment (seed L514-525, L690-701), or the deferred variant
    (seed L527-552), told apart by its ``class_deferred_id``."""
    if isinstance(body, dict) and "class_deferred_id" in body:
        params = body.get("enroll_params")
        klass = params.get("class") if isinstance(params, dict) else None
        ext = klass.get("ext_id") if isinstance(klass, dict) else None
        return parse_as(DeferredEnrollment, {**body, "ext_class_id": ext}, "deferred enrollment")
    return parse_as(Enrollment, body, "enrollment")


def parse_user(body: Any) -> User:
    """A user object: the answer of the upsert and of Remove a User (seed L1227-1253, L1362-1374)."""
    return parse_as(User, body, "user")


def parse_single_user(body: Any) -> User:
    """Get a User: the one-element array unwrapped (seed L1322-1335)."""
    return parse_as(User, single(body, "user"), "user")


def parse_users_page(body: Any) -> UsersPage:
    """Get All Users: a bare array (seed L1279-1302) or ``{"data", "pagination"}`` (seed L100-131)."""
    if isinstance(body, list):
        users = [parse_user(item) for item in body]
        return UsersPage(users=users, current_page=1, total_records=len(users), total_pages=1)
    if not isinstance(body, dict):
        raise malformed(f"users: expected an array or a paginated object, got {type(body).__name__}")
    users = [parse_user(item) for item in _list(body.get("data"), "users page 'data'")]
    paging = parse_as(_RawPagination, body.get("pagination"), "users page 'pagination'")
    if paging.current_page is None:
        raise malformed("users page: 'pagination.current_page' is missing")
    if paging.next_page is not None and paging.next_page <= paging.current_page:
        raise malformed(f"users page: next_page {paging.next_page} does not follow page {paging.current_page}")
    return UsersPage(users=users, **paging.model_dump(exclude={"current_page"}), current_page=paging.current_page)


def parse_message(body: Any) -> str:
    """``{"message": "Success"}``, the answer of removing a class or an enrollment (seed L469-473)."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise malformed(f"expected {{'message': <text>}}, got {type(body).__name__}")
    return str(body["message"])
