"""MatrixLMS API 1.0 client for one site and api_key, on the shared HTTP layer.

Reference: /work/shared/api/matrix_class.md Part A (``000:Lnnn`` = seed 000_dc319d10d44f72e8.txt).

- Every call is ``GET /api/<function>?api_key=...`` (000:L27), writes included, so every request
  says ``Cache-Control: no-cache`` and arguments are encoded one way (``matrixlms_args``) in URLs
  of at most ``max_url_bytes``; calls taking many ids split only when a URL would pass it.
  ``api_version=1`` is pinned: the default is "the latest version" (000:L27), whose shapes may differ.
- The site's budget (``matrixlms_budget``): at most ``calls_per_minute / replicas`` calls in any
  rolling 60 s, one in flight, shared by every client of the site in the process. The rate-limit
  exception is recognised by its message, whatever its status (A.4), raised as ``ThrottledError``
  and followed by a pause of every call to the site for ``lockout_pause_seconds`` (65 s).
- Errors are 401 (authentication) or 400 ``{"message": ...}`` for everything else (000:L43-49):
  "Invalid API key" is ``AuthenticationError`` (the component pauses), other 400s are
  ``PermanentUpstreamError`` with the message.
- Writes are never retried blindly: a write whose repetition is not harmless raises
  ``AmbiguousWriteError`` when its answer was lost (timeout, 5xx, 504). ``add_user`` with a
  userid, student ID or teacher ID is an upsert (000:L170) and is resent; ``add_class_once``
  resolves a lost ``add_class`` by looking the class up by name before creating again (A.7).
- The api_key and personal data travel in the URL: no URL is ever logged or put in an error
  message, and values sent in the request are masked in any error text the server echoes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ConfigDict

from worker.clients.errors import (
    AmbiguousWriteError,
    ConflictError,
    ImplausibleDataError,
    PermanentUpstreamError,
)
from worker.clients.http import HTTPSettings
from worker.clients.matrixlms_args import (
    ArgValue,
    ClassAttributes,
    Element,
    GradeEntry,
    Scalar,
    UserAttributes,
    chunk_by_url,
    encode_pairs,
    query_string,
    unique,
)
from worker.clients.matrixlms_budget import (
    DEFAULT_CALLS_PER_MINUTE,
    DEFAULT_LOCKOUT_PAUSE_SECONDS,
    SITE_BUDGETS,
    BudgetClock,
    BudgetRegistry,
    SiteBudget,
    per_replica_limit,
)
from worker.clients.matrixlms_http import MatrixClassifier, MatrixHTTP
from worker.clients.matrixlms_models import (
    SYSTEM,
    Assignment,
    GradeInfo,
    MatrixClass,
    Student,
    Teacher,
    User,
    UserRef,
    malformed,
    parse_ack,
    parse_assignments,
    parse_classes,
    parse_count,
    parse_grades,
    parse_id,
    parse_students,
    parse_teachers,
    parse_user_ref,
    parse_users,
    parse_version,
)
from worker.redaction import register_secret
from worker.replica_share import BudgetShare

__all__ = [
    "Assignment", "ClassAttributes", "ClassCreated", "GradeEntry", "GradeInfo", "MatrixClass", "MatrixLMSClient",
    "Student", "Teacher", "User", "UserAttributes", "UserRef",
]

log = structlog.get_logger(__name__)

API_VERSION = "1"
PAGE_SIZE = 100  # "paginated and return data in pages of 100 results" (000:L53)
DEFAULT_MAX_URL_BYTES = 6000  # well under the 8 KiB many proxies and servers accept

R = TypeVar("R")


class ClassCreated(BaseModel):
    """The outcome of ``add_class_once``: the class's id, whether this call created it, and
    whether a look-up by name was needed to learn the id."""

    model_config = ConfigDict(frozen=True)

    id: int
    created: bool
    via_lookup: bool = False


class MatrixLMSClient:
    """Async client for one MatrixLMS site and api_key (typed methods for the roster, grades and
    courses flows); share one per credential, and one ``SiteBudget`` per site (the default)."""

    def __init__(
        self, base_url: str, api_key: str, *, http: HTTPSettings | None = None,
        calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE, replicas: int = 1,
        lockout_pause_seconds: float = DEFAULT_LOCKOUT_PAUSE_SECONDS, max_url_bytes: int = DEFAULT_MAX_URL_BYTES,
        budget: SiteBudget | None = None, clock: BudgetClock | None = None, registry: BudgetRegistry = SITE_BUDGETS,
    ) -> None:
        if not api_key:
            raise ValueError("a MatrixLMS api_key is required")
        register_secret(api_key)
        self.budget = budget if budget is not None else registry.get(
            base_url, limit=per_replica_limit(calls_per_minute, replicas), pause_seconds=lockout_pause_seconds,
            clock=clock)
        self.settings = http or HTTPSettings()
        self._http = MatrixHTTP(
            SYSTEM, base_url, settings=self.settings, classifier=MatrixClassifier(SYSTEM),
            headers={"Accept": "application/json", "Cache-Control": "no-cache"},
            pace=self.budget.acquire, observe=self._observe, limiter=self.budget.gate,
        )
        self._key = api_key  # only ever in the URL, never logged or in a message
        self._base_bytes = len(base_url.rstrip("/").encode())
        self.max_url_bytes = max_url_bytes

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def share_budget(self, share: BudgetShare) -> None:
        """Divide the site's window by ``share`` (the replicas that spend it)."""
        self.budget.share = share

    async def __aenter__(self) -> MatrixLMSClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- transport -------------------------------------------------------------------------

    def _observe(self, response: httpx.Response) -> None:
        if self._http.classifier.throttled(response):
            self.budget.lockout()
        else:
            self.budget.settle()

    def _path(self, function: str, args: Mapping[str, ArgValue]) -> str:
        pairs = [("api_key", self._key), ("api_version", API_VERSION), *encode_pairs(args)]
        return f"/api/{function}?{query_string(pairs)}"

    def _url_bytes(self, path: str) -> int:
        return self._base_bytes + len(path.encode())

    async def call(self, function: str, args: Mapping[str, ArgValue] | None = None, *, idempotent: bool = True) -> Any:
        """One API call; returns its JSON. ``idempotent=False`` for writes whose repetition could
        do harm: their lost answers raise ``AmbiguousWriteError`` instead of being resent."""
        path = self._path(function, args or {})
        size = self._url_bytes(path)
        if size > self.max_url_bytes:
            raise PermanentUpstreamError(
                SYSTEM, f"{function}: the call needs a URL of {size} bytes, over max_url_bytes={self.max_url_bytes}")
        # Every function is a GET; the get_ ones read (what a dry run lets through).
        return (await self._http.call("GET", path, idempotent=idempotent, writes=not function.startswith("get_"))).body

    async def _split_call(
        self, function: str, fixed: Mapping[str, ArgValue], name: str, items: Sequence[Any],
        encode: Callable[[Any], Element], *, idempotent: bool,
    ) -> list[Any]:
        """``function`` over ``items`` in as few calls as the URL limit allows; their bodies in order."""
        base = self._url_bytes(self._path(function, fixed))

        def item_text(item: Any) -> str:
            return query_string(encode_pairs({name: [encode(item)]}))

        try:
            chunks = chunk_by_url(base, items, item_text, self.max_url_bytes)
        except ValueError as exc:
            raise PermanentUpstreamError(SYSTEM, f"{function}: {exc} (max_url_bytes)") from None
        if len(chunks) > 1:
            log.debug("matrixlms.split_call", function=function, items=len(items), calls=len(chunks))
        return [await self.call(function, {**fixed, name: [encode(i) for i in chunk]}, idempotent=idempotent)
                for chunk in chunks]

    async def _ids_call(self, function: str, fixed: Mapping[str, ArgValue], name: str, ids: Sequence[int],
                        *, idempotent: bool) -> list[Any]:
        return await self._split_call(function, fixed, name, unique(ids), lambda i: i, idempotent=idempotent)

    async def pages(self, function: str, args: Mapping[str, ArgValue] | None = None) -> AsyncIterator[list[Any]]:
        """Every page of a paginated function: page 1, 2, ... until ``[]`` or a short page (000:L53)."""
        page = 1
        previous: list[Any] | None = None
        while True:
            body = await self.call(function, {**(args or {}), "page": page})
            if not isinstance(body, list):
                raise malformed(function, f"page {page} is not a JSON array")
            if body and body == previous:
                raise ImplausibleDataError(SYSTEM, f"{function}: page {page} repeats page {page - 1} (page ignored?)")
            yield body
            if len(body) < PAGE_SIZE:
                return
            previous, page = body, page + 1

    async def _collect(self, function: str, args: Mapping[str, ArgValue],
                       parse: Callable[[Any, str], list[R]]) -> list[R]:
        return [item async for page in self.pages(function, args) for item in parse(page, function)]

    # --- version ---------------------------------------------------------------------------

    async def get_version(self) -> int:
        """The API version, e.g. 1 (000:L33-35, L59)."""
        return parse_version(await self.call("get_version"))

    # --- users (A.6.2) ---------------------------------------------------------------------

    async def add_user(self, attributes: UserAttributes) -> UserRef:
        """Create or update the account (an upsert matched by userid, student ID, teacher ID, then
        name and birth date, 000:L170). With an id key the call is resent safely after a lost
        answer; without one it raises ``AmbiguousWriteError`` (a resend could merge twins)."""
        body = await self.call("add_user", attributes.args(), idempotent=attributes.has_id_key)
        return parse_user_ref(body, "add_user")

    async def update_user(self, attributes: UserAttributes) -> UserRef:
        """Update the matching account; ``PermanentUpstreamError`` when none matches (000:L172)."""
        return parse_user_ref(await self.call("update_user", attributes.args()), "update_user")

    async def get_users_that_match(
        self, *, userid: str | None = None, student_id: str | None = None, teacher_id: str | None = None,
        email: str | None = None, archived: bool | None = None, other: Mapping[str, Scalar] | None = None,
    ) -> list[User]:
        """Users matching every constraint, all pages (000:L79-80). Wire names are the user-info
        field names (``student_id``, not the prose's "studentID"; A.6.2)."""
        args: dict[str, ArgValue] = {"userid": userid, "student_id": student_id, "teacher_id": teacher_id,
                                     "email": email, "archived": archived, **(other or {})}
        return await self._collect("get_users_that_match", args, parse_users)

    async def get_all_users(self) -> list[User]:
        """Every user of the site, 100 a page."""
        return await self._collect("get_all_users", {}, parse_users)

    async def get_users_with_ids(self, user_ids: Sequence[int]) -> list[User]:
        """The users with these ids (split over several calls only for very long lists)."""
        if not user_ids:
            return []
        bodies = await self._ids_call("get_users_with_ids", {}, "user_ids", user_ids, idempotent=True)
        return [user for body in bodies for user in parse_users(body, "get_users_with_ids")]

    async def _ack_ids(self, function: str, name: str, ids: Sequence[int], *, idempotent: bool) -> None:
        if not ids:
            return
        for body in await self._ids_call(function, {}, name, ids, idempotent=idempotent):
            parse_ack(body, function)

    async def archive_users(self, user_ids: Sequence[int]) -> None:
        """Archive the users (reversible with ``reactivate_users``; 000:L189)."""
        await self._ack_ids("archive_users", "user_ids", user_ids, idempotent=True)

    async def reactivate_users(self, user_ids: Sequence[int]) -> None:
        """Reactivate archived users (000:L191)."""
        await self._ack_ids("reactivate_users", "user_ids", user_ids, idempotent=True)

    async def delete_users(self, user_ids: Sequence[int]) -> None:
        """Delete the users. Not resent after a lost answer: a second delete may be a 400."""
        await self._ack_ids("delete_users", "user_ids", user_ids, idempotent=False)

    # --- classes (A.6.3, A.6.5) ------------------------------------------------------------

    async def add_class(self, attributes: ClassAttributes) -> int:
        """Create a class and return its id. Every call creates one (A.7): a lost answer raises
        ``AmbiguousWriteError``; ``add_class_once`` resolves that."""
        if not attributes.name:
            raise ValueError("add_class needs a name")
        return parse_id(await self.call("add_class", attributes.args(), idempotent=False), "add_class")

    async def add_class_once(self, attributes: ClassAttributes, *, look_first: bool = True) -> ClassCreated:
        """Create the class unless it exists, never twice: after an ambiguous answer the class is
        looked up by its name (which must be unique, FLOWS.md 2.5 trap 2) before any new attempt,
        and created again only if absent.

        ``look_first`` (default) also looks before the first attempt, one call more: a caller
        retrying after a crash or an error between create and crosswalk cannot know whether its
        earlier attempt created the class (A.7: "Before a create (and before retrying one), search").
        """
        name = attributes.name
        if not name:
            raise ValueError("add_class_once needs a name")
        if look_first:
            existing = await self._class_named(name)
            if existing is not None:
                return ClassCreated(id=existing.id, created=False, via_lookup=True)
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return ClassCreated(id=await self.add_class(attributes), created=True)
            except AmbiguousWriteError:
                if attempt == attempts:
                    raise
                log.info("matrixlms.add_class.ambiguous", attempt=attempt, action="look up by name")
                found = await self._class_named(name)
                if found is not None:
                    return ClassCreated(id=found.id, created=True, via_lookup=True)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _class_named(self, name: str) -> MatrixClass | None:
        matches = await self.find_classes_by_name(name)
        if len(matches) > 1:
            raise ConflictError(SYSTEM, f"add_class: {len(matches)} classes share the name; cannot tell which is ours")
        return matches[0] if matches else None

    async def find_classes_by_name(self, name: str) -> list[MatrixClass]:
        """Classes whose name is exactly ``name`` (the server's matching rule is undocumented)."""
        wanted = name.strip()
        return [c for c in await self.get_classes_that_match(name=name) if c.name.strip() == wanted]

    async def edit_class(self, class_id: int, attributes: ClassAttributes) -> int:
        """Change the attributes given (a setter: resent safely); returns the class id (000:L400-401)."""
        return parse_id(await self.call("edit_class", {"class_id": class_id, **attributes.args()}), "edit_class")

    async def get_classes_that_match(
        self, *, name: str | None = None, course_code: str | None = None, section_code: str | None = None,
        archived: bool | None = None,
    ) -> list[MatrixClass]:
        """Classes matching every constraint, all pages: "name, course_code, section_code, and
        archived" are the only ones (000:L207)."""
        args: dict[str, ArgValue] = {"name": name, "course_code": course_code, "section_code": section_code,
                                     "archived": archived}
        return await self._collect("get_classes_that_match", args, parse_classes)

    async def iter_all_classes(self, *, archived: bool | None = None) -> AsyncIterator[MatrixClass]:
        """Every class, page by page; archived ones included unless ``archived`` says otherwise (000:L200)."""
        async for page in self.pages("get_all_classes", {"archived": archived}):
            for item in parse_classes(page, "get_all_classes"):
                yield item

    async def get_all_classes(self, *, archived: bool | None = None) -> list[MatrixClass]:
        """Every class (see ``iter_all_classes``)."""
        return [c async for c in self.iter_all_classes(archived=archived)]

    async def get_classes_with_ids(self, class_ids: Sequence[int]) -> list[MatrixClass]:
        """The classes with these ids."""
        if not class_ids:
            return []
        bodies = await self._ids_call("get_classes_with_ids", {}, "class_ids", class_ids, idempotent=True)
        return [c for body in bodies for c in parse_classes(body, "get_classes_with_ids")]

    async def archive_classes(self, class_ids: Sequence[int]) -> None:
        """Archive the classes (000:L405)."""
        await self._ack_ids("archive_classes", "class_ids", class_ids, idempotent=True)

    async def reactivate_classes(self, class_ids: Sequence[int]) -> None:
        """Unarchive the classes (000:L407)."""
        await self._ack_ids("reactivate_classes", "class_ids", class_ids, idempotent=True)

    async def delete_classes(self, class_ids: Sequence[int]) -> None:
        """Move the classes to the trash can (000:L409); not resent after a lost answer."""
        await self._ack_ids("delete_classes", "class_ids", class_ids, idempotent=False)

    async def restore_classes(self, class_ids: Sequence[int]) -> None:
        """Bring the classes back from the trash can (000:L411)."""
        await self._ack_ids("restore_classes", "class_ids", class_ids, idempotent=True)

    # --- members (A.6.3, A.6.4) ------------------------------------------------------------

    async def _count_ids(self, function: str, fixed: Mapping[str, ArgValue], user_ids: Sequence[int],
                         *, idempotent: bool) -> int | None:
        if not user_ids:
            return 0
        counts = [parse_count(body, function)
                  for body in await self._ids_call(function, fixed, "user_ids", user_ids, idempotent=idempotent)]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    async def add_students_to_class(
        self, class_id: int, user_ids: Sequence[int], *, ignore_already_enrolled: bool = True,
        send_notification: bool = False,
    ) -> int | None:
        """Enrol the users; returns how many were enrolled (None if the server gave no count).

        One call is all-or-nothing (000:L307); a split call is not, as a whole. With
        ``ignore_already_enrolled`` (default) an enrolled student does not fail the batch and a
        lost answer is resent; without it a lost answer raises ``AmbiguousWriteError``.
        """
        fixed: dict[str, ArgValue] = {"class_id": class_id, "ignore_already_enrolled": ignore_already_enrolled or None,
                                      "send_notification": send_notification or None}
        return await self._count_ids("add_students_to_class", fixed, user_ids, idempotent=ignore_already_enrolled)

    async def remove_students_from_class(
        self, class_id: int, user_ids: Sequence[int], *, send_notification: bool = False,
    ) -> int | None:
        """Unenrol the users; returns how many were unenrolled. Removing a non-member is
        undocumented (A.6.4), so a lost answer is not resent."""
        fixed: dict[str, ArgValue] = {"class_id": class_id, "send_notification": send_notification or None}
        return await self._count_ids("remove_students_from_class", fixed, user_ids, idempotent=False)

    async def add_teachers_to_class(
        self, class_id: int, user_ids: Sequence[int], *, send_notification: bool = False,
    ) -> int | None:
        """Add instructors; returns how many were added (duplicates undocumented: diff first, A.7)."""
        fixed: dict[str, ArgValue] = {"class_id": class_id, "send_notification": send_notification or None}
        return await self._count_ids("add_teachers_to_class", fixed, user_ids, idempotent=False)

    async def remove_teachers_from_class(self, class_id: int, user_ids: Sequence[int]) -> int | None:
        """Remove instructors; returns how many were removed."""
        return await self._count_ids("remove_teachers_from_class", {"class_id": class_id}, user_ids,
                                     idempotent=False)

    async def get_students_for_class(self, class_id: int) -> list[Student]:
        """Student info of the class, unenrolled students included (``unenrolled``); not paginated."""
        return parse_students(await self.call("get_students_for_class", {"class_id": class_id}))

    async def get_teachers_for_class(self, class_id: int) -> list[Teacher]:
        """The class's teachers with ``coteacher``."""
        return parse_teachers(await self.call("get_teachers_for_class", {"class_id": class_id}))

    # --- assignments and grades (A.6.7, A.6.8) ---------------------------------------------

    async def get_assignments_for_class(self, class_id: int) -> list[Assignment]:
        """The class's assignments "in the order that they appear" (000:L526)."""
        return parse_assignments(await self.call("get_assignments_for_class", {"class_id": class_id}))

    async def set_grades_for_assignment(
        self, assignment_id: int, grades: Sequence[GradeEntry] | Mapping[int, str],
    ) -> None:
        """Set grades (a setter, so resent safely after a lost answer; 000:L573-574), in as few
        calls as the URL limit allows."""
        entries = ([GradeEntry(user_id=u, grade=g) for u, g in grades.items()] if isinstance(grades, Mapping)
                   else list(grades))
        if not entries:
            return
        bodies = await self._split_call("set_grades_for_assignment", {"assignment_id": assignment_id}, "grades",
                                        entries, lambda e: e.args(), idempotent=True)
        for body in bodies:
            parse_ack(body, "set_grades_for_assignment")

    async def get_grades_for_class(self, class_id: int) -> list[GradeInfo]:
        """Grade info of every student of the class (000:L564)."""
        return parse_grades(await self.call("get_grades_for_class", {"class_id": class_id}))
