"""Client for the "Class" virtual-classroom API (``/api/v1``) of one organisation and API key.

Reference: /work/shared/api/matrix_class.md Part B (``B.n``), seed 001 lines as ``seed L<n>``,
FLOWS.md 2.4. ``Authorization: Bearer <secret>`` (seed L43, L69); every path hangs off the
organisation's own base URL (B.1). Retries, deadlines and size caps are the shared HTTP layer's;
what Class's answers mean is ``classroom_errors``; parsing is strict (``classroom_models``).

The traps this client absorbs:

- the 201 of a create carries no ``class_id`` (taken from ``invite_link``), and may be the
  "Deferred" variant with ``ext_id`` (B.6.1); single reads answer a one-element array (B.2);
- a duplicate ``ext_class_id`` is a 400 (seed L1393-1397): ``ensure_class`` reads and compares
  rather than creating twice, also after a lost answer (``AmbiguousWriteError``);
- ``role`` defaults to student on PUT (seed L672): every enrollment body carries it;
- DELETE of an enrollment carries a JSON body (B.2, seed L681-686);
- a key without a scope gets 403 (seed L1414): ``MissingScopeError``, so the component pauses.

No rate limit is documented (B.4); at most ``concurrency`` (default 4) requests are in flight.
Share one client per API key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from worker.clients.classroom_ensure import EnsuredClass, ensure_class
from worker.clients.classroom_errors import SYSTEM, ClassroomClassifier, MissingScopeError
from worker.clients.classroom_models import (
    AnyClass,
    ClassInfo,
    CreatedClass,
    DeferredClass,
    DeferredEnrollment,
    Enrollment,
    User,
    UsersPage,
    malformed,
    parse_classes,
    parse_created_class,
    parse_deferred_classes,
    parse_enrollment_answer,
    parse_enrollments,
    parse_message,
    parse_patched_class,
    parse_single_class,
    parse_single_deferred_class,
    parse_single_user,
    parse_user,
    parse_users_page,
)
from worker.clients.classroom_scopes import READ_PROBES, REQUIRED_SCOPES, ScopeCheck, split_needed
from worker.clients.classroom_specs import (
    ClassSpec,
    EnrollmentSpec,
    PersonKey,
    UserSpec,
    class_create_body,
    enrollment_body,
    one_identifier,
    user_body,
)
from worker.clients.errors import NotFoundError, PermanentUpstreamError
from worker.clients.http import HTTPSettings, Query, UpstreamHTTP

__all__ = [
    "ClassInfo", "ClassSpec", "ClassroomClient", "CreatedClass", "DeferredClass", "DeferredEnrollment",
    "Enrollment", "EnrollmentSpec", "EnsuredClass", "UpsertedUser", "User", "UserSpec", "UsersPage",
]

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
MAX_PAGE_LIMIT = 1000  # seed L138: "Maximum: 1,000"


@dataclass(frozen=True)
class UpsertedUser:
    """The answer of ``PUT /api/v1/users``: the user and whether it was created (201) or updated (200)."""

    user: User
    created: bool


def _class_key(ext_class_id: str | None, class_id: str | None) -> tuple[str, str]:
    return one_identifier(ext_class_id=ext_class_id, class_id=class_id)


class ClassroomClient:
    """Async client for one Class organisation (base URL) and one API key secret."""

    required_scopes: frozenset[str] = REQUIRED_SCOPES

    def __init__(
        self, base_url: str, api_key: str, *, timezone: str | None = None, http: HTTPSettings | None = None,
        concurrency: int = 4,
    ) -> None:
        if not api_key:
            raise ValueError("a Class API key secret is required")
        base = base_url.rstrip("/")
        # The organisation's base URL is shown without /api/v1 (B.1); accept it with it too.
        self._prefix = "" if base.endswith(API_PREFIX) else API_PREFIX
        self.timezone = timezone
        self._http = UpstreamHTTP(
            SYSTEM, base, settings=http, classifier=ClassroomClassifier(),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            limiter=anyio.CapacityLimiter(concurrency),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> ClassroomClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(
        self, method: str, path: str, *, params: Query | None = None, json: Any = None,
        idempotent: bool | None = None,
    ) -> tuple[Any, int]:
        answer = await self._http.call(method, self._prefix + path, params=params, json=json, idempotent=idempotent)
        return answer.body, answer.response.status_code

    # --- start-up check ------------------------------------------------------------------------

    async def check_scopes(self, needed: Iterable[str] = REQUIRED_SCOPES) -> ScopeCheck:
        """Probe each needed read scope with one cheap GET; write scopes come back ``unverified``
        (see ``classroom_scopes`` for why and how). A rejected key raises ``AuthenticationError``."""
        probe, unverified = split_needed(needed)
        granted: set[str] = set()
        missing: set[str] = set()
        for scope in probe:
            path, params = READ_PROBES[scope]
            try:
                await self._call("GET", path, params=params)
            except MissingScopeError:
                missing.add(scope)
                continue
            except (NotFoundError, PermanentUpstreamError):
                pass  # the probe object is absent or refused: the request got past the scope check
            granted.add(scope)
        check = ScopeCheck(frozenset(granted), frozenset(missing), unverified)
        log.info("classroom.scopes", granted=sorted(granted), missing=sorted(missing), unverified=sorted(unverified))
        return check

    # --- classes (B.6.1-5) ---------------------------------------------------------------------

    async def create_class(self, spec: ClassSpec) -> CreatedClass:
        """``POST /api/v1/classes``. Not retried once sent: a lost answer raises ``AmbiguousWriteError``
        and a duplicate ``ext_class_id`` ``ClassExistsError``; ``ensure_class`` handles both."""
        body = class_create_body(spec, self._default_timezone(spec))
        answer, _ = await self._call("POST", "/classes", json=body)
        return parse_created_class(answer)

    def _default_timezone(self, spec: ClassSpec) -> str:
        zone = spec.timezone or self.timezone
        if zone is None:
            raise ValueError("the class has no timezone and the client has no default (configure classroom.timezone)")
        return zone

    async def get_class(self, *, ext_class_id: str | None = None, class_id: str | None = None) -> ClassInfo:
        """One live class by ``ext_class_id`` or ``class_id``, the one-element array unwrapped; 404: NotFoundError."""
        name, value = _class_key(ext_class_id, class_id)
        body, _ = await self._call("GET", "/classes", params={name: value})
        record = parse_single_class(body)
        _check_identity(record, name, value)
        return record

    async def get_deferred_class(
        self, *, ext_class_id: str | None = None, class_id: str | None = None,
    ) -> DeferredClass:
        """One deferred class record (``deferred=true``, seed L396-440)."""
        name, value = _class_key(ext_class_id, class_id)
        body, _ = await self._call("GET", "/classes", params={name: value, "deferred": "true"})
        record = parse_single_deferred_class(body)
        _check_identity(record, name, value)
        return record

    async def find_class(self, *, ext_class_id: str | None = None, class_id: str | None = None) -> AnyClass | None:
        """The live class, else the deferred record, else ``None`` (one GET, two when not live)."""
        for read in (self.get_class, self.get_deferred_class):
            try:
                return await read(ext_class_id=ext_class_id, class_id=class_id)
            except NotFoundError:
                continue
        return None

    async def list_classes(self) -> list[ClassInfo]:
        """Every live class (Get All Classes Info; no paging documented, B.6.2)."""
        body, _ = await self._call("GET", "/classes")
        return parse_classes(body)

    async def list_deferred_classes(self) -> list[DeferredClass]:
        """Every deferred class record (``deferred=true``)."""
        body, _ = await self._call("GET", "/classes", params={"deferred": "true"})
        return parse_deferred_classes(body)

    async def update_class(
        self, *, ext_class_id: str | None = None, class_id: str | None = None, class_deferred_id: int | None = None,
        class_name: str | None = None, class_description: str | None = None,
    ) -> AnyClass:
        """``PATCH /api/v1/classes``: only ``class_name`` and ``class_description`` can change (B.6.4).
        Retried like any idempotent call: setting the same values twice changes nothing more."""
        name, value = one_identifier(ext_class_id=ext_class_id, class_id=class_id, class_deferred_id=class_deferred_id)
        changes = {k: v for k, v in (("class_name", class_name), ("class_description", class_description))
                   if v is not None}
        if not changes:
            raise ValueError("nothing to update: give class_name and/or class_description")
        # class_deferred_id is documented as a String here (seed L453) though an integer elsewhere.
        key = str(value) if name == "class_deferred_id" else value
        body, _ = await self._call("PATCH", "/classes", json={name: key, **changes}, idempotent=True)
        return parse_patched_class(body)

    async def delete_class(
        self, *, ext_class_id: str | None = None, class_id: str | None = None, class_deferred_id: int | None = None,
        missing_ok: bool = False,
    ) -> bool:
        """``DELETE /api/v1/classes?<one identifier>`` (cascades to roster and dates). ``False`` when
        absent and ``missing_ok`` (a retried DELETE whose first answer was lost also ends here)."""
        name, value = one_identifier(ext_class_id=ext_class_id, class_id=class_id, class_deferred_id=class_deferred_id)
        try:
            body, _ = await self._call("DELETE", "/classes", params={name: str(value)})
        except NotFoundError:
            if missing_ok:
                return False
            raise
        parse_message(body)
        return True

    async def ensure_class(self, spec: ClassSpec, *, read_back: bool = False) -> EnsuredClass:
        """The class of ``spec.ext_class_id`` exists with ``spec``'s name and description; never
        created twice (see ``classroom_ensure.ensure_class``)."""
        return await ensure_class(self, spec, read_back=read_back)

    # --- enrollments (B.6.6-9) -----------------------------------------------------------------

    async def create_enrollment(
        self, person: EnrollmentSpec, *, ext_class_id: str | None = None, class_id: str | None = None,
    ) -> Enrollment | DeferredEnrollment:
        """``POST /api/v1/class/enrollments``; a lost answer raises ``AmbiguousWriteError``: read the
        roster before trying again (duplicate-enrollment behaviour is undocumented, B.6.6)."""
        body = enrollment_body(_class_key(ext_class_id, class_id), person)
        answer, _ = await self._call("POST", "/class/enrollments", json=body)
        return parse_enrollment_answer(answer)

    async def enrollments(self, *, ext_class_id: str | None = None, class_id: str | None = None) -> list[Enrollment]:
        """A class's whole roster, the teacher included (one GET, no paging; B.6.7)."""
        name, value = _class_key(ext_class_id, class_id)
        body, _ = await self._call("GET", "/class/enrollments", params={name: value})
        return parse_enrollments(body)

    async def update_enrollment(
        self, person: EnrollmentSpec, *, identify_by: PersonKey = "ext_person_id", student_id: str | None = None,
        ext_class_id: str | None = None, class_id: str | None = None,
    ) -> Enrollment:
        """``PUT /api/v1/class/enrollments`` with ``role`` always sent (a missing role demotes to
        student, seed L672). ``identify_by`` picks the identifier; see ``enrollment_body``."""
        body = enrollment_body(_class_key(ext_class_id, class_id), person, identify_by=identify_by,
                               student_id=student_id)
        answer, _ = await self._call("PUT", "/class/enrollments", json=body)
        result = parse_enrollment_answer(answer)
        if not isinstance(result, Enrollment):
            raise malformed("update enrollment: answered with a deferred enrollment")
        return result

    async def delete_enrollment(
        self, *, ext_class_id: str | None = None, class_id: str | None = None, student_id: str | None = None,
        ext_person_id: str | None = None, email: str | None = None, missing_ok: bool = False,
    ) -> bool:
        """``DELETE /api/v1/class/enrollments`` with a JSON body naming the class and the person
        (seed L681-686). ``False`` when absent and ``missing_ok``."""
        name, value = _class_key(ext_class_id, class_id)
        person, who = one_identifier(student_id=student_id, ext_person_id=ext_person_id, email=email)
        try:
            body, _ = await self._call("DELETE", "/class/enrollments", json={name: value, person: who})
        except NotFoundError:
            if missing_ok:
                return False
            raise
        parse_message(body)
        return True

    # --- users (B.6.21-24) ---------------------------------------------------------------------

    async def upsert_user(self, spec: UserSpec) -> UpsertedUser:
        """``PUT /api/v1/users``: updated (200) or created (201) by ``identified_by`` (B.6.21); idempotent."""
        body, status = await self._call("PUT", "/users", json=user_body(spec))
        return UpsertedUser(user=parse_user(body), created=status == 201)

    async def get_user(self, *, id: int | None = None, ext_user_id: str | None = None,
                       email: str | None = None) -> User:
        """One user by exactly one of ``id``, ``ext_user_id``, ``email``; 404: ``NotFoundError``."""
        name, value = one_identifier(id=id, ext_user_id=ext_user_id, email=email)
        body, _ = await self._call("GET", "/users", params={name: value})
        user = parse_single_user(body)
        same = str(getattr(user, name)).lower() == str(value).lower() if name == "email" else (
            str(getattr(user, name)) == str(value))
        if not same:
            raise malformed(f"user read by {name}={value!r} answered user {user.id}")
        return user

    async def find_user(self, *, id: int | None = None, ext_user_id: str | None = None,
                        email: str | None = None) -> User | None:
        """``get_user``, or ``None`` when there is no such user."""
        try:
            return await self.get_user(id=id, ext_user_id=ext_user_id, email=email)
        except NotFoundError:
            return None

    async def users_page(self, page: int = 1, limit: int = 100) -> UsersPage:
        """One page of Get All Users (``page`` from 1, ``limit`` at most 1,000; B.5)."""
        if page < 1 or not 1 <= limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"page must be >= 1 and limit within 1..{MAX_PAGE_LIMIT}")
        body, _ = await self._call("GET", "/users", params={"page": page, "limit": limit})
        return parse_users_page(body)

    async def iter_users(self, limit: int = 100) -> AsyncIterator[User]:
        """Every user, page by page, following ``next_page`` until it is null."""
        page: int | None = 1
        while page is not None:
            answer = await self.users_page(page, limit)
            for user in answer.users:
                yield user
            page = answer.next_page

    async def list_users(self) -> list[User]:
        """Every user in one unpaged request (the bare-array form, seed L1279-1302)."""
        body, _ = await self._call("GET", "/users")
        return parse_users_page(body).users

    async def delete_user(self, *, id: int | None = None, ext_user_id: str | None = None, email: str | None = None,
                          missing_ok: bool = False) -> User | None:
        """``DELETE /api/v1/users?<one identifier>``; the deleted user, or ``None`` if absent and ``missing_ok``."""
        name, value = one_identifier(id=id, ext_user_id=ext_user_id, email=email)
        try:
            body, _ = await self._call("DELETE", "/users", params={name: value})
        except NotFoundError:
            if missing_ok:
                return None
            raise
        return parse_user(body)


def _check_identity(record: AnyClass, name: str, value: str) -> None:
    # A single read that answers another class than asked for must not be taken for it.
    if getattr(record, name) != value:
        raise malformed(f"class read by {name}={value!r} answered {record.class_id}")
