"""The Canvas objects of the roster flow, each created once with its SIS id and remembered.

The ledger is the handler's picture of Canvas (keys under ``canvas/<tenant>/``): the Canvas id of
every term, course, section and user edusync made (the crosswalk from our SIS id) and what was last
written to it, and every enrolment with its Canvas id and state. An object whose entry matches costs
no request, so a replay writes nothing; a missing one is created POST-first (FLOWS.md 2.3 trap 1):
one request, and Canvas's own SIS-id uniqueness catches a second create. Canvas is read only then:

- a create answered "SIS id taken" (``ConflictError``) or lost (``AmbiguousWriteError``): the object
  is looked up by ``sis_*_id:`` and adopted; a login taken by someone else is dead-lettered;
- a create Canvas answered without our SIS id (``SisIdNotStoredError``, a token without
  ``manage_sis``) is never repeated: the entry is marked, later events look the SIS id up (an
  operator may have fixed the object by hand) and dead-letter with the reason while it is absent.

One lock per ledger key serialises the lanes of this process that want the same object (a student's
three roster rows, its student event), so none of them pays a failed POST; other processes are
caught by Canvas's uniqueness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import partial
from typing import Any, Literal, TypeVar

import structlog

from handlers.roster_identity import RosterIds
from worker.clients.canvas import CanvasClient, sis
from worker.clients.canvas_errors import SisIdNotStoredError
from worker.clients.canvas_roster_models import Course, Enrollment, Section, Term, User
from worker.clients.errors import AmbiguousWriteError, ConflictError, NotFoundError, PermanentUpstreamError
from worker.concurrency import KeyedLocks
from worker.errors import PermanentFailure
from worker.ledger import Ledger

log = structlog.get_logger(__name__)

T = TypeVar("T")
EnrollmentKind = Literal["StudentEnrollment", "TeacherEnrollment"]
ACTIVE, CONCLUDED = "active", "completed"


@dataclass(frozen=True)
class CanvasTenant:
    """One tenant's Canvas: the shared client, the account edusync writes to, and the id scheme."""

    client: CanvasClient
    account: str
    ids: RosterIds


@dataclass(frozen=True)
class UserSpec:
    """A Canvas user as Illuminate describes the person; ``what`` names the record in errors."""

    what: str
    sis_user_id: str
    login: str
    name: str
    sortable_name: str
    email: str | None = None
    integration_id: str | None = None


def person_names(first: str | None, last: str | None, fallback: str) -> tuple[str, str]:
    """(name, sortable name): "First Last" and "Last, First", whatever of them Illuminate has."""
    first, last = (first or "").strip(), (last or "").strip()
    name = " ".join(p for p in (first, last) if p) or fallback
    sortable = f"{last}, {first}" if first and last else (last or first or fallback)
    return name, sortable


def term_dates(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """A term's dates as Canvas times: from the first day's start to the last day's end (UTC)."""
    first = datetime.combine(date.fromisoformat(start), time.min, tzinfo=UTC) if start else None
    last = datetime.combine(date.fromisoformat(end), time(23, 59, 59), tzinfo=UTC) if end else None
    return first, last


def fingerprint(*parts: object) -> str:
    """A short digest of what was written (the ledger compares it, never the object)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


async def _found(lookup: Callable[[], Awaitable[T]]) -> T | None:
    """The object a look-up by SIS id finds, None for a 404."""
    try:
        return await lookup()
    except NotFoundError:
        return None


class CanvasObjects:
    """Ensure operations on one tenant's Canvas objects, against the handler's ledger."""

    def __init__(self, tenant: CanvasTenant, ledger: Ledger, tenant_id: str, locks: KeyedLocks) -> None:
        self.client = tenant.client
        self.account = tenant.account
        self.ids = tenant.ids
        self.ledger = ledger
        self.locks = locks
        self.root = f"canvas/{tenant_id}"

    # -- ledger keys ----------------------------------------------------------------------------

    def user_key(self, sis_user_id: str) -> str:
        """A user by SIS id (students and staff share Canvas's one SIS id space)."""
        return f"{self.root}/user/{sis_user_id}"

    def term_key(self, term_id: str) -> str:
        """A term by Illuminate term id."""
        return f"{self.root}/term/{term_id}"

    def course_key(self, sis_course_id: str) -> str:
        """A course by its SIS id (which the course model decides)."""
        return f"{self.root}/course/{sis_course_id}"

    def section_key(self, section_id: str) -> str:
        """A section by Illuminate section id (roster rows wait on it)."""
        return f"{self.root}/section/{section_id}"

    def teachers_key(self, section_id: str) -> str:
        """The staff ids enrolled as teachers of a section (to conclude one who leaves it)."""
        return f"{self.root}/section_teachers/{section_id}"

    def student_enrollment_key(self, student_id: str, section_id: str) -> str:
        """Grouped by the student's internal id: a delete carries only that (FLOWS.md 1.3)."""
        return f"{self.root}/student_enrollment/{student_id}/{section_id}"

    def teacher_enrollment_key(self, user_id: str, section_id: str) -> str:
        """A teacher's enrolment, by internal staff id."""
        return f"{self.root}/teacher_enrollment/{user_id}/{section_id}"

    def student_enrollments(self, student_id: str) -> dict[str, Any]:
        """Every enrolment of one student the ledger knows, by key."""
        return self.ledger.children(f"{self.root}/student_enrollment/{student_id}")

    # -- the create-or-adopt step every object shares -----------------------------------------------

    async def _create(self, key: str, what: str, create: Callable[[], Awaitable[T]],
                      find: Callable[[], Awaitable[T]], *, conflict: str = "its SIS id is taken") -> tuple[T, bool]:
        """``create()``, or the object ``find()`` looks up when Canvas has it already; returns
        (object, adopted). Never creates without the SIS id: a drop of it marks ``key``."""
        try:
            return await create(), False
        except SisIdNotStoredError as exc:
            self.ledger.put(key, {"broken": str(exc)})
            raise PermanentFailure(f"{what}: {exc}") from exc
        except ConflictError as exc:
            found = await _found(find)
            if found is None:  # taken, and not by the object our SIS id names
                raise PermanentFailure(f"{what}: {conflict}: {exc}") from exc
            log.info("canvas object adopted after a conflict", what=what)
            return found, True
        except AmbiguousWriteError:
            found = await _found(find)
            if found is None:
                raise  # not applied: retried
            log.info("canvas object adopted after a lost answer", what=what)
            return found, True
        except PermanentUpstreamError as exc:
            raise PermanentFailure(f"{what}: {exc}") from exc

    async def _repaired(self, what: str, entry: dict[str, Any], find: Callable[[], Awaitable[T]]) -> T:
        """A marked object (created without its SIS id): adopted if Canvas now has the SIS id,
        else the event is dead-lettered again, and nothing is created."""
        found = await _found(find)
        if found is None:
            raise PermanentFailure(f"{what}: not created again: {entry['broken']}")
        return found

    # -- users ----------------------------------------------------------------------------------

    async def user(self, spec: UserSpec, *, update: bool) -> tuple[str, bool]:
        """The Canvas id of ``spec``'s user, created if the ledger has none; with ``update`` its
        name and sortable name are brought in line too (a rename). True if Canvas was written."""
        key = self.user_key(spec.sis_user_id)
        find = partial(self.client.get_user, sis("sis_user_id", spec.sis_user_id))
        wrote = False
        async with self.locks.hold(key):
            entry: dict[str, Any] | None = self.ledger.get(key)
            if entry is not None and "broken" in entry:
                entry = self._user_entry(await self._repaired(spec.what, entry, find))
                self.ledger.put(key, entry)
            if entry is None:
                user, adopted = await self._create(
                    key, spec.what, partial(self._create_user, spec), find,
                    conflict=f"login {spec.login!r} (or the SIS id) belongs to another Canvas user")
                entry = self._user_entry(user)
                self.ledger.put(key, entry)
                wrote = not adopted
            if update and (entry["name"], entry["sortable"]) != (spec.name, spec.sortable_name):
                await self._guarded(spec.what, self.client.update_user(
                    entry["id"], name=spec.name, sortable_name=spec.sortable_name))
                entry = {**entry, "name": spec.name, "sortable": spec.sortable_name}
                self.ledger.put(key, entry)
                wrote = True
            return str(entry["id"]), wrote

    @staticmethod
    def _user_entry(user: User) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "sortable": user.sortable_name}

    async def _create_user(self, spec: UserSpec) -> User:
        written = await self.client.create_user(
            self.account, unique_id=spec.login, name=spec.name, sortable_name=spec.sortable_name, email=spec.email,
            sis_user_id=spec.sis_user_id, integration_id=spec.integration_id)
        return written.value

    # -- terms, courses, sections -----------------------------------------------------------------

    async def _ensure(self, key: str, what: str, fp: str, find: Callable[[], Awaitable[T]],
                      create: Callable[[], Awaitable[T]], entry_of: Callable[[T], dict[str, Any]],
                      update: Callable[[dict[str, Any]], Awaitable[Any]]) -> tuple[dict[str, Any], bool]:
        """The ledger entry of an object whose wanted content is ``fp``: created if absent (or
        adopted), updated if ``fp`` changed; True if Canvas was written. The caller holds ``key``."""
        entry: dict[str, Any] | None = self.ledger.get(key)
        if entry is not None and entry.get("fp") == fp:
            return entry, False
        if entry is None or "broken" in entry:
            if entry is None:
                obj, adopted = await self._create(key, what, create, find)
            else:
                obj, adopted = await self._repaired(what, entry, find), True
            # What an adopted object holds is unknown: the update below makes it ours.
            entry = {**entry_of(obj), "fp": None if adopted else fp}
            self.ledger.put(key, entry)  # the crosswalk is kept even if the update fails
        if entry["fp"] != fp:
            await self._guarded(what, update(entry))
            entry = {**entry, "fp": fp}
            self.ledger.put(key, entry)
        return entry, True

    async def term(self, term_id: str, name: str, start: str | None, end: str | None) -> tuple[str, bool]:
        """The Canvas id of a term (``<prefix>-term-<id>``) with these name and dates; True if written."""
        sis_id = self.ids.term(term_id)
        key, what, ref = self.term_key(term_id), f"term {term_id} ({sis_id})", sis("sis_term_id", sis_id)
        start_at, end_at = term_dates(start, end)

        async def create() -> Term:
            return (await self.client.create_term(self.account, name=name, start_at=start_at, end_at=end_at,
                                                  sis_term_id=sis_id)).value

        def update(entry: dict[str, Any]) -> Awaitable[Any]:
            return self.client.update_term(self.account, entry["id"], name=name, start_at=start_at, end_at=end_at)

        async with self.locks.hold(key):
            entry, wrote = await self._ensure(key, what, fingerprint(name, start, end),
                                              partial(self.client.get_term, self.account, ref), create,
                                              lambda t: {"id": t.id}, update)
        return str(entry["id"]), wrote

    async def course(self, sis_id: str, name: str, code: str | None, term: str | None) -> tuple[str, bool]:
        """The Canvas id of a course with this name, code and Canvas term; True if written."""
        key, what, ref = self.course_key(sis_id), f"course {sis_id}", sis("sis_course_id", sis_id)
        fields: dict[str, Any] = {"name": name, "course_code": code, "term_id": term}

        async def create() -> Course:
            # Reactivation: a course deleted in Canvas by hand comes back rather than clash (trap 5).
            return (await self.client.create_course(self.account, sis_course_id=sis_id, enable_sis_reactivation=True,
                                                    **fields)).value

        def update(entry: dict[str, Any]) -> Awaitable[Any]:
            return self.client.update_course(entry["id"], **fields)

        async with self.locks.hold(key):
            entry, wrote = await self._ensure(key, what, fingerprint(name, code, term),
                                              partial(self.client.get_course, ref), create,
                                              lambda c: {"id": c.id}, update)
        return str(entry["id"]), wrote

    async def section(self, section_id: str, course_sis: str, course: str, name: str) -> tuple[dict[str, Any], bool]:
        """The ledger entry (Canvas ``id`` and ``course``) of a section in ``course``; True if
        written. A section is never moved to another course."""
        sis_id = self.ids.section(section_id)
        key, what, ref = self.section_key(section_id), f"section {section_id} ({sis_id})", sis("sis_section_id", sis_id)

        async def create() -> Section:
            return (await self.client.create_section(course, name=name, sis_section_id=sis_id,
                                                     enable_sis_reactivation=True)).value

        def update(entry: dict[str, Any]) -> Awaitable[Any]:
            return self.client.update_section(entry["id"], name=name)

        async with self.locks.hold(key):
            entry = self.ledger.get(key)
            if entry is not None and "broken" not in entry and entry["course_sis"] != course_sis:
                raise PermanentFailure(f"{what}: is in Canvas course {entry['course_sis']}, Illuminate now puts it "
                                       f"in {course_sis}; edusync does not move sections, fix by hand")
            return await self._ensure(key, what, fingerprint(name), partial(self.client.get_section, ref), create,
                                      lambda s: {"id": s.id, "course": s.course_id, "course_sis": course_sis}, update)

    # -- enrolments -----------------------------------------------------------------------------

    async def enroll(self, key: str, what: str, section: dict[str, Any], user: str, kind: EnrollmentKind) -> bool:
        """The user is actively enrolled in the section; a concluded enrolment is made active again
        by enrolling anew (Canvas's reactivate is for inactive ones only, trap 6). True if written."""
        async with self.locks.hold(key):
            entry: dict[str, Any] | None = self.ledger.get(key)
            if entry is not None and entry["state"] == ACTIVE and entry["section"] == section["id"]:
                return False
            try:
                enrollment = await self._guarded(what, self.client.enroll_in_section(
                    section["id"], user, kind=kind, state="active"))
            except AmbiguousWriteError:
                found = await self._enrollment_of(section["id"], user, kind)
                if found is None:
                    raise
                enrollment = found
            self.ledger.put(key, {"id": enrollment.id, "course": enrollment.course_id, "section": section["id"],
                                  "user": user, "state": ACTIVE})
            return True

    async def _enrollment_of(self, section: str, user: str, kind: EnrollmentKind) -> Enrollment | None:
        """The active enrolment a lost POST made, if it made one."""
        found = await self.client.enrollments(section=section, user_id=user, types=(kind,))
        return next((e for e in found if e.enrollment_state == ACTIVE), None)

    async def conclude(self, key: str, what: str) -> bool:
        """An active enrolment is concluded (a drop, not a delete: trap 6); True if written."""
        async with self.locks.hold(key):
            entry: dict[str, Any] | None = self.ledger.get(key)
            if entry is None or entry["state"] != ACTIVE:
                return False
            try:
                await self._guarded(what, self.client.conclude_enrollment(entry["course"], entry["id"]))
            except PermanentFailure as exc:
                if not isinstance(exc.__cause__, NotFoundError):
                    raise
                log.warning("enrollment to conclude is gone from Canvas", what=what)
            self.ledger.put(key, {**entry, "state": CONCLUDED})
            return True

    # -- errors ---------------------------------------------------------------------------------

    @staticmethod
    async def _guarded(what: str, call: Awaitable[Any]) -> Any:
        """``call``'s value; a permanent Canvas refusal becomes a dead letter naming the record."""
        try:
            written = await call
        except SisIdNotStoredError as exc:
            raise PermanentFailure(f"{what}: {exc}") from exc
        except PermanentUpstreamError as exc:
            raise PermanentFailure(f"{what}: {exc}") from exc
        return getattr(written, "value", written)
