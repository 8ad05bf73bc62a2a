"""Canvas client methods for accounts, users and logins, terms, courses, sections and enrollments.

Seed endpoints (canvas.md §3.2-§3.6, §4): accounts, terms, courses, enrollments. Not in the seeds,
following Canvas's public REST API documentation (cited per method): users, logins, sections.
Writes send JSON bodies (canvas.md §1.1: "JSON is optional, with Content-Type: application/json")
and answer ``Written`` with the request id. A create or SIS update that comes back without the
SIS id sent raises ``SisIdNotStoredError``; a SIS id another object holds raises ``ConflictError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from worker.clients.canvas_base import CanvasBase, Written, compact, request_id, require_sis, seg
from worker.clients.canvas_roster_models import (
    ENROLLMENT_STATES,
    Account,
    Course,
    Enrollment,
    EnrollmentTask,
    EnrollmentType,
    Login,
    Section,
    Term,
    User,
)
from worker.clients.canvas_types import canvas_time

COURSE_FIELDS = frozenset({
    "name", "course_code", "start_at", "end_at", "term_id", "sis_course_id", "integration_id", "account_id",
    "is_public", "restrict_enrollments_to_course_dates", "time_zone", "default_view", "license",
})
SECTION_FIELDS = frozenset({
    "name", "sis_section_id", "integration_id", "start_at", "end_at", "restrict_enrollments_to_section_dates",
})
TERM_FIELDS = frozenset({"name", "start_at", "end_at", "sis_term_id"})
USER_FIELDS = frozenset({"name", "short_name", "sortable_name", "email"})
CourseEvent = Literal["claim", "offer", "conclude", "delete", "undelete"]


def _values(fields: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Fields checked against ``allowed`` (a typo must not pass silently), datetimes rendered."""
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown Canvas field(s) {unknown}; allowed: {sorted(allowed)}")
    return {k: canvas_time(v) if isinstance(v, datetime) else v for k, v in compact(fields).items()}


class CanvasRoster(CanvasBase):
    """Roster objects: what the roster flow creates and reads (FLOWS.md 2.3)."""

    # --- accounts ------------------------------------------------------------------------------

    async def get_account(self, account: str) -> Account:
        """``GET /api/v1/accounts/:id`` ("given by id or sis sis_account_id", seed 002:L16519)."""
        return await self._get_model(Account, f"/api/v1/accounts/{seg(account)}")

    # --- users and logins ----------------------------------------------------------------------
    # https://canvas.instructure.com/doc/api/users.html, https://canvas.instructure.com/doc/api/logins.html

    async def create_user(
        self, account: str, *, unique_id: str, name: str | None = None, sortable_name: str | None = None,
        short_name: str | None = None, email: str | None = None, sis_user_id: str | None = None,
        integration_id: str | None = None, enable_sis_reactivation: bool = False,
    ) -> Written[User]:
        """``POST /api/v1/accounts/:account_id/users`` ("Create a user"): the user and its login,
        ``pseudonym[unique_id]`` (required), ``pseudonym[sis_user_id]``, ``pseudonym[integration_id]``."""
        body: dict[str, Any] = {
            "user": compact({"name": name, "sortable_name": sortable_name, "short_name": short_name,
                             "skip_registration": True}),
            "pseudonym": compact({"unique_id": unique_id, "sis_user_id": sis_user_id,
                                  "integration_id": integration_id, "send_confirmation": False}),
        }
        if email:
            body["communication_channel"] = {"type": "email", "address": email, "skip_confirmation": True}
        if enable_sis_reactivation:
            body["enable_sis_reactivation"] = True
        written = await self._written(User, "POST", f"/api/v1/accounts/{seg(account)}/users", body)
        user = written.value
        require_sis("user", "sis_user_id", sis_user_id, user.sis_user_id, user.id)
        require_sis("user", "integration_id", integration_id, user.integration_id, user.id)
        return written

    async def get_user(self, user: str) -> User:
        """``GET /api/v1/users/:id`` ("Show user details"); ``user`` may be ``sis_user_id:X``."""
        return await self._get_model(User, f"/api/v1/users/{seg(user)}")

    async def update_user(self, user: str, **fields: Any) -> Written[User]:
        """``PUT /api/v1/users/:id`` ("Edit a user") with name, short_name, sortable_name or email."""
        values = _values(fields, USER_FIELDS)
        if not values:
            raise ValueError("no fields to update")
        return await self._written(User, "PUT", f"/api/v1/users/{seg(user)}", {"user": values})

    async def account_users(self, account: str, search_term: str | None = None) -> list[User]:
        """``GET /api/v1/accounts/:account_id/users`` ("List users in account")."""
        params = {"search_term": search_term} if search_term else None
        return await self._collect(User, f"/api/v1/accounts/{seg(account)}/users", params)

    async def user_logins(self, user: str) -> list[Login]:
        """``GET /api/v1/users/:user_id/logins`` ("List user logins")."""
        return await self._collect(Login, f"/api/v1/users/{seg(user)}/logins")

    async def update_login(
        self, account: str, login_id: str, *, unique_id: str | None = None, sis_user_id: str | None = None,
        integration_id: str | None = None,
    ) -> Written[Login]:
        """``PUT /api/v1/accounts/:account_id/logins/:id`` ("Edit a user login")."""
        values = compact({"unique_id": unique_id, "sis_user_id": sis_user_id, "integration_id": integration_id})
        if not values:
            raise ValueError("no fields to update")
        written = await self._written(
            Login, "PUT", f"/api/v1/accounts/{seg(account)}/logins/{seg(login_id)}", {"login": values})
        require_sis("login", "sis_user_id", sis_user_id, written.value.sis_user_id, written.value.id)
        return written

    # --- terms (seed 002:L8124-8192) -----------------------------------------------------------

    async def terms(self, account: str, states: Sequence[str] = ("active",)) -> list[Term]:
        """``GET /api/v1/accounts/:account_id/terms`` (``{"enrollment_terms": [...]}``, seed 002:L8127)."""
        return await self._collect(Term, f"/api/v1/accounts/{seg(account)}/terms",
                                   {"workflow_state[]": list(states)}, key="enrollment_terms")

    async def get_term(self, account: str, term: str) -> Term:
        """``GET /api/v1/accounts/:account_id/terms/:id`` (overrides included)."""
        return await self._get_model(Term, f"/api/v1/accounts/{seg(account)}/terms/{seg(term)}")

    async def create_term(
        self, account: str, *, name: str, start_at: datetime | None = None, end_at: datetime | None = None,
        sis_term_id: str | None = None,
    ) -> Written[Term]:
        """``POST /api/v1/accounts/:account_id/terms`` with ``enrollment_term[...]``."""
        values = _values({"name": name, "start_at": start_at, "end_at": end_at, "sis_term_id": sis_term_id},
                         TERM_FIELDS)
        written = await self._written(Term, "POST", f"/api/v1/accounts/{seg(account)}/terms",
                                      {"enrollment_term": values})
        require_sis("term", "sis_term_id", sis_term_id, written.value.sis_term_id, written.value.id)
        return written

    async def update_term(self, account: str, term: str, **fields: Any) -> Written[Term]:
        """``PUT /api/v1/accounts/:account_id/terms/:id``; fields not given stay as they are."""
        values = _values(fields, TERM_FIELDS)
        written = await self._written(Term, "PUT", f"/api/v1/accounts/{seg(account)}/terms/{seg(term)}",
                                      {"enrollment_term": values})
        require_sis("term", "sis_term_id", values.get("sis_term_id"), written.value.sis_term_id, written.value.id)
        return written

    async def delete_term(self, account: str, term: str) -> Written[Term]:
        """``DELETE /api/v1/accounts/:account_id/terms/:id``: the term becomes ``deleted``."""
        return await self._written(Term, "DELETE", f"/api/v1/accounts/{seg(account)}/terms/{seg(term)}")

    # --- courses (seed 002:L18719-19400) -------------------------------------------------------

    async def create_course(
        self, account: str, *, name: str, offer: bool = False, enable_sis_reactivation: bool = False,
        **fields: Any,
    ) -> Written[Course]:
        """``POST /api/v1/accounts/:account_id/courses`` with ``course[...]``; ``offer`` publishes it;
        ``enable_sis_reactivation`` revives a deleted course with the same ``sis_course_id``."""
        values = _values({"name": name, **fields}, COURSE_FIELDS)
        body: dict[str, Any] = {"course": values}
        if offer:
            body["offer"] = True
        if enable_sis_reactivation:
            body["enable_sis_reactivation"] = True
        written = await self._written(Course, "POST", f"/api/v1/accounts/{seg(account)}/courses", body)
        course = written.value
        require_sis("course", "sis_course_id", values.get("sis_course_id"), course.sis_course_id, course.id)
        require_sis("course", "integration_id", values.get("integration_id"), course.integration_id, course.id)
        return written

    async def get_course(self, course: str, *, include_deleted: bool = False) -> Course:
        """``GET /api/v1/courses/:id``; a deleted course only with ``include[]=all_courses``
        (seed: "The specified resource does not exist." otherwise)."""
        params = {"include[]": ["all_courses"]} if include_deleted else None
        return await self._get_model(Course, f"/api/v1/courses/{seg(course)}", params)

    async def account_courses(
        self, account: str, *, states: Sequence[str] = (), search_term: str | None = None,
        term: str | None = None,
    ) -> list[Course]:
        """``GET /api/v1/accounts/:account_id/courses`` (``state[]`` default: all but deleted)."""
        params = compact({"state[]": list(states) or None, "search_term": search_term, "enrollment_term_id": term})
        return await self._collect(Course, f"/api/v1/accounts/{seg(account)}/courses", params)

    async def update_course(self, course: str, *, event: CourseEvent | None = None, **fields: Any) -> Written[Course]:
        """``PUT /api/v1/courses/:id`` with ``course[...]`` and/or ``course[event]``
        (claim, offer, conclude, delete, undelete)."""
        values = _values(fields, COURSE_FIELDS)
        if event is not None:
            values["event"] = event
        if not values:
            raise ValueError("no fields or event to apply")
        written = await self._written(Course, "PUT", f"/api/v1/courses/{seg(course)}", {"course": values})
        require_sis("course", "sis_course_id", values.get("sis_course_id"), written.value.sis_course_id,
                    written.value.id)
        return written

    async def delete_course(self, course: str, event: Literal["delete", "conclude"] = "delete") -> Written[bool]:
        """``DELETE /api/v1/courses/:id`` with ``event=delete|conclude`` (answers ``{"delete": "true"}``)."""
        answer = await self._call("DELETE", f"/api/v1/courses/{seg(course)}", params={"event": event})
        body = answer.body
        done = isinstance(body, dict) and str(body.get(event)).lower() == "true"
        return Written(done, request_id(answer.response))

    # --- sections ------------------------------------------------------------------------------
    # https://canvas.instructure.com/doc/api/sections.html

    async def sections(self, course: str) -> list[Section]:
        """``GET /api/v1/courses/:course_id/sections`` ("List course sections")."""
        return await self._collect(Section, f"/api/v1/courses/{seg(course)}/sections")

    async def get_section(self, section: str) -> Section:
        """``GET /api/v1/sections/:id`` ("Get section information"); ``sis_section_id:X`` too."""
        return await self._get_model(Section, f"/api/v1/sections/{seg(section)}")

    async def create_section(
        self, course: str, *, name: str, enable_sis_reactivation: bool = False, **fields: Any,
    ) -> Written[Section]:
        """``POST /api/v1/courses/:course_id/sections`` ("Create course section") with
        ``course_section[...]``. Without manage_sis Canvas drops ``sis_section_id`` silently
        (``sections_controller.rb``), which raises ``SisIdNotStoredError`` here."""
        values = _values({"name": name, **fields}, SECTION_FIELDS)
        body: dict[str, Any] = {"course_section": values}
        if enable_sis_reactivation:
            body["enable_sis_reactivation"] = True
        written = await self._written(Section, "POST", f"/api/v1/courses/{seg(course)}/sections", body)
        section = written.value
        require_sis("section", "sis_section_id", values.get("sis_section_id"), section.sis_section_id, section.id)
        require_sis("section", "integration_id", values.get("integration_id"), section.integration_id, section.id)
        return written

    async def update_section(self, section: str, **fields: Any) -> Written[Section]:
        """``PUT /api/v1/sections/:id`` ("Edit a section")."""
        values = _values(fields, SECTION_FIELDS)
        if not values:
            raise ValueError("no fields to update")
        written = await self._written(Section, "PUT", f"/api/v1/sections/{seg(section)}", {"course_section": values})
        require_sis("section", "sis_section_id", values.get("sis_section_id"), written.value.sis_section_id,
                    written.value.id)
        return written

    async def delete_section(self, section: str) -> Written[Section]:
        """``DELETE /api/v1/sections/:id`` ("Delete a section"; refused while it has enrollments)."""
        return await self._written(Section, "DELETE", f"/api/v1/sections/{seg(section)}")

    # --- enrollments (seed 002:L14212-14960) ---------------------------------------------------

    @staticmethod
    def _enrollment_body(
        user: str, kind: EnrollmentType, state: Literal["active", "invited", "inactive"], notify: bool,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        values = {"user_id": user, "type": kind, "enrollment_state": state, "notify": notify,
                  **_values(extra, frozenset({"course_section_id", "limit_privileges_to_course_section",
                                              "role_id", "start_at", "end_at", "associated_user_id"}))}
        return {"enrollment": values}

    async def enroll_in_section(
        self, section: str, user: str, *, kind: EnrollmentType = "StudentEnrollment",
        state: Literal["active", "invited", "inactive"] = "active", notify: bool = False, **extra: Any,
    ) -> Written[Enrollment]:
        """``POST /api/v1/sections/:section_id/enrollments``; ``user`` is a Canvas user id (body
        SIS prefixes are ambiguous in the seed, canvas.md §7 item 12)."""
        return await self._written(Enrollment, "POST", f"/api/v1/sections/{seg(section)}/enrollments",
                                   self._enrollment_body(user, kind, state, notify, extra))

    async def enroll_in_course(
        self, course: str, user: str, *, kind: EnrollmentType = "StudentEnrollment",
        state: Literal["active", "invited", "inactive"] = "active", notify: bool = False, **extra: Any,
    ) -> Written[Enrollment]:
        """``POST /api/v1/courses/:course_id/enrollments`` (``course_section_id`` optional)."""
        return await self._written(Enrollment, "POST", f"/api/v1/courses/{seg(course)}/enrollments",
                                   self._enrollment_body(user, kind, state, notify, extra))

    async def end_enrollment(self, course: str, enrollment_id: str, task: EnrollmentTask) -> Written[Enrollment]:
        """``DELETE /api/v1/courses/:course_id/enrollments/:id?task=``: conclude, delete or
        inactivate ("If the task argument isn't given, the enrollment will be concluded": we always give it)."""
        return await self._written(Enrollment, "DELETE",
                                   f"/api/v1/courses/{seg(course)}/enrollments/{seg(enrollment_id)}",
                                   params={"task": task})

    async def conclude_enrollment(self, course: str, enrollment_id: str) -> Written[Enrollment]:
        """Conclude (the state becomes ``completed``): a drop, not a delete (FLOWS.md 2.3 trap 6)."""
        return await self.end_enrollment(course, enrollment_id, "conclude")

    async def delete_enrollment(self, course: str, enrollment_id: str) -> Written[Enrollment]:
        """Delete (the state becomes ``deleted``)."""
        return await self.end_enrollment(course, enrollment_id, "delete")

    async def inactivate_enrollment(self, course: str, enrollment_id: str) -> Written[Enrollment]:
        """Inactivate: still on the roster for admins, unable to participate."""
        return await self.end_enrollment(course, enrollment_id, "inactivate")

    async def reactivate_enrollment(self, course: str, enrollment_id: str) -> Written[Enrollment]:
        """``PUT /api/v1/courses/:course_id/enrollments/:id/reactivate`` (documented for inactive ones)."""
        return await self._written(Enrollment, "PUT",
                                   f"/api/v1/courses/{seg(course)}/enrollments/{seg(enrollment_id)}/reactivate")

    async def enrollments(
        self, *, course: str | None = None, section: str | None = None, user: str | None = None,
        states: Sequence[str] = ENROLLMENT_STATES, types: Sequence[EnrollmentType] = (),
        user_id: str | None = None,
    ) -> list[Enrollment]:
        """``GET /api/v1/{courses|sections|users}/:id/enrollments`` with every ``state[]`` by default:
        without it Canvas returns active and invited only, hiding concluded and deleted rows."""
        scopes = [(name, value) for name, value in (("courses", course), ("sections", section), ("users", user))
                  if value is not None]
        if len(scopes) != 1:
            raise ValueError("give exactly one of course, section or user")
        (scope, value), = scopes
        params = compact({"state[]": list(states) or None, "type[]": list(types) or None, "user_id": user_id})
        return await self._collect(Enrollment, f"/api/v1/{scope}/{seg(value)}/enrollments", params)
