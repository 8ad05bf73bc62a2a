"""What edusync asks the "Class" API to hold: request specs and the pure functions that turn them
into bodies (matrix_class.md B.6; seed 001 line numbers as ``seed L<n>``).

Specs are validated when built, so a body Class would refuse for a reason we can see (a time
zone outside the tz database, a ``jbh_time`` other than 0/5/10, a role Class does not know) is a
``ValueError`` in our code, never a request.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EnrollmentRole = Literal["student", "assistant", "teacher"]  # seed L573
UserRole = Literal["admin", "instructor", "instructional-designer"]  # seed L1269
PersonKey = Literal["student_id", "ext_person_id", "email"]  # B.6.8-9
UserKey = Literal["id", "ext_user_id", "email"]  # seed L1264


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> str:
    """``name`` if it is a tz-database id ("Class uses the Time Zone ID values from the Time Zone
    Database", B.2), else ``ValueError``."""
    if name not in _timezones():
        raise ValueError(f"{name!r} is not a time-zone id of the tz database (e.g. 'America/Los_Angeles')")
    return name


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionTime(_Spec):
    """One class session in Unix seconds (seed L261-263)."""

    start_time: int
    end_time: int

    @model_validator(mode="after")
    def _ordered(self) -> SessionTime:
        if self.end_time <= self.start_time:
            raise ValueError("a session must end after it starts")
        return self


class ClassSettings(_Spec):
    """``settings`` of a create (seed L264-266)."""

    waiting_room: bool | None = None
    join_before_host: bool | None = None
    jbh_time: Literal[0, 5, 10] | None = None


class ClassSpec(_Spec):
    """A class as edusync wants it (Create a Class, B.6.1).

    ``ext_class_id`` is the idempotency key (unique in Class, B.7); ``ensure_class`` requires it.
    ``timezone`` defaults to the client's configured one (Illuminate has no source for it,
    FLOWS.md 2.4 trap 4). ``class_description`` ``None`` means "not managed": it is neither sent
    nor compared, since whether Class accepts a null description is undocumented.
    """

    ext_class_id: str | None = Field(None, min_length=1)
    class_name: str = Field(min_length=1)
    class_description: str | None = None
    email: str = Field(min_length=3, description="the instructor's e-mail (required, seed L251)")
    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    display_name: str | None = None
    timezone: str | None = None
    meeting_passcode: str | None = None
    template_id: str | int | None = None  # documented Integer, but templates carry UUID strings (B.6.1)
    session_times: tuple[SessionTime, ...] = ()
    settings: ClassSettings | None = None
    additional_instructors: tuple[str, ...] = ()  # e-mails

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @property
    def host(self) -> str:
        """The host name Class shows for this instructor: the display name, else "first last"."""
        return self.display_name or f"{self.first_name} {self.last_name}"


class EnrollmentSpec(_Spec):
    """A person in a class (Create/Update an Enrollment, B.6.6/B.6.8).

    ``role`` has no default on purpose: Class defaults a missing role to ``student``, on PUT too,
    so a PUT without it demotes a teacher (seed L672, B.6.8). Every body built from this carries it.
    """

    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    role: EnrollmentRole
    ext_person_id: str | None = Field(None, min_length=1)
    email: str | None = Field(None, min_length=3)
    display_name: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> EnrollmentSpec:
        if self.ext_person_id is None and self.email is None:
            raise ValueError("an enrollment needs ext_person_id or email (seed L569-570)")
        return self


class UserSpec(_Spec):
    """A staff user for the ``PUT /api/v1/users`` upsert (B.6.21), found by ``identified_by``."""

    identified_by: UserKey
    user_name: str = Field(min_length=1)
    id: int | None = None
    ext_user_id: str | None = Field(None, min_length=1)
    email: str | None = Field(None, min_length=3)
    roles: tuple[UserRole, ...] | None = None

    @model_validator(mode="after")
    def _key_present(self) -> UserSpec:
        if getattr(self, self.identified_by) is None:
            raise ValueError(f"identified_by is {self.identified_by!r} but {self.identified_by} is not set")
        return self


def one_identifier(**given: Any) -> tuple[str, Any]:
    """The one identifier given (not ``None``): Class requires "one and only one" (seed L80)."""
    present = [(name, value) for name, value in given.items() if value is not None]
    if len(present) != 1:
        raise ValueError(f"give exactly one of {', '.join(given)} (seed L80: 'one and only one identifier')")
    return present[0]


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def class_create_body(spec: ClassSpec, default_timezone: str) -> dict[str, Any]:
    """The ``POST /api/v1/classes`` body (seed L195-223); unset optional fields are omitted."""
    body = _compact({
        "email": spec.email, "first_name": spec.first_name, "last_name": spec.last_name,
        "display_name": spec.display_name, "timezone": spec.timezone or check_timezone(default_timezone),
        "ext_class_id": spec.ext_class_id, "class_name": spec.class_name,
        "class_description": spec.class_description, "meeting_passcode": spec.meeting_passcode,
        "template_id": spec.template_id,
    })
    if spec.session_times:
        body["session_times"] = [s.model_dump() for s in spec.session_times]
    if spec.settings is not None:
        body["settings"] = spec.settings.model_dump(exclude_none=True)
    if spec.additional_instructors:
        body["additional_instructors"] = [{"email": e} for e in spec.additional_instructors]
    return body


def enrollment_body(class_key: tuple[str, str], person: EnrollmentSpec, *,
                    identify_by: PersonKey | None = None, student_id: str | None = None) -> dict[str, Any]:
    """The body of ``POST``/``PUT /api/v1/class/enrollments`` (seed L500-510, L629-639), ``role`` always in it.

    For a PUT, ``identify_by`` names the identifier: Class (as simulated) identifies by the first
    of ``student_id``, ``ext_person_id``, ``email`` present and treats the others as new values
    (B.6.8), so a lower-precedence identifier is sent alone: identifying by e-mail leaves
    ``ext_person_id`` out, and an e-mail can only change when another identifier is used.
    """
    name, value = class_key
    body: dict[str, Any] = {name: value, "first_name": person.first_name, "last_name": person.last_name,
                            "role": person.role}
    if identify_by == "student_id":
        if student_id is None:
            raise ValueError("identify_by='student_id' needs student_id")
        body["student_id"] = student_id
    elif identify_by is not None and getattr(person, identify_by) is None:
        raise ValueError(f"identify_by={identify_by!r} but the person has no {identify_by}")
    if person.ext_person_id is not None and identify_by != "email":
        body["ext_person_id"] = person.ext_person_id
    if person.email is not None:
        body["email"] = person.email
    if person.display_name is not None:
        body["display_name"] = person.display_name
    return body


def user_body(spec: UserSpec) -> dict[str, Any]:
    """The ``PUT /api/v1/users`` body (seed L1198-1220); ``None`` fields are omitted, because
    whether ``"ext_user_id": null`` clears the stored id is undocumented (B.6.21)."""
    body = _compact(spec.model_dump(exclude={"roles"}))
    if spec.roles is not None:
        body["roles"] = list(spec.roles)
    return body
