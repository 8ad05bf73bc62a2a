"""Typed results of the MatrixLMS API 1.0 client and the pure functions that parse them.

Field names are the seed's (matrix_class.md A.6.2 user info, A.6.3 course and student info,
A.6.7 assignment info, A.6.8 grade info). Success bodies of writes are undocumented ("Returns
the ID ...", "the number of users ... is returned", nothing at all; A.3), so each write parser
accepts the documented readings (a bare id, an object, ``true``); reads are typed strictly: a
number where the seed's examples have a string is a malformed answer, never coerced. Every
parse function raises ``MalformedResponseError`` naming the function and the field, never a bare
``ValidationError``, and never quotes a value: bodies carry personal data.
"""

from __future__ import annotations

from typing import Any, TypeGuard, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.clients.errors import MalformedResponseError

SYSTEM = "matrixlms"

M = TypeVar("M", bound=BaseModel)


def malformed(function: str, message: str) -> MalformedResponseError:
    """A ``MalformedResponseError`` for MatrixLMS naming the function."""
    return MalformedResponseError(SYSTEM, f"{function}: {message}")


class MatrixModel(BaseModel):
    """Base: strict types, unknown fields (custom fields, later additions) ignored, immutable."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _pii() -> Any:
    # Personal data stays out of reprs, so a logged model leaks nothing.
    return Field(default=None, repr=False)


class User(MatrixModel):
    """User info (A.6.2). ``student_id``/``teacher_id`` are the school's numbers, not Matrix ids."""

    id: int
    userid: str | None = None
    first_name: str | None = _pii()
    last_name: str | None = _pii()
    email: str | None = _pii()
    birthdate: str | None = _pii()
    student_id: str | None = None
    teacher_id: str | None = None
    organization_id: int | None = None
    student: bool = False
    teacher: bool = False
    administrator: bool = False
    archived: bool = False
    archived_at: str | None = None


class Student(User):
    """Student info: user info plus the enrolment fields (A.6.3). Unenrolled students stay listed
    with ``unenrolled`` true (FLOWS.md 2.5 trap 5)."""

    enroll_type: str | None = None
    enrolled_at: str | None = None
    unenrolled: bool = False
    unenrolled_at: str | None = None
    deactivated: bool = False
    completed_at: str | None = None
    percent: float | None = None
    grade: str | None = None

    @property
    def enrolled(self) -> bool:
        """Enrolled now (a deactivated student still is)."""
        return not self.unenrolled


class Teacher(User):
    """A class's teacher: user info plus ``coteacher`` (A.6.3)."""

    coteacher: bool = False


class MatrixClass(MatrixModel):
    """Course info (A.6.3). There is no external id: the name is the only look-up key (A.7)."""

    id: int
    name: str
    style: str | None = None
    course_code: str | None = None
    section_code: str | None = None
    semester: str | None = None
    start: str | None = None
    finish: str | None = None
    archived: bool = False


class Assignment(MatrixModel):
    """Assignment info (A.6.7); the API cannot create assignments, only list them."""

    id: int
    name: str
    type: str | None = None
    points: float | None = None
    category: str | None = None
    grading: str | None = None
    lesson: int | None = None


class GradeCell(MatrixModel):
    """One assignment's grade of one student (A.6.8 ``assignment_info``)."""

    id: int
    percent: float | None = None
    grade: str | None = None
    score: float | None = None
    points: float | None = None
    comment: str | None = None
    submitted_at: str | None = None
    grader_id: int | None = None
    gradebook: bool = False


class GradingPeriod(MatrixModel):
    """A grading period of a student's grade info (A.6.8)."""

    name: str | None = None
    percent: float | None = None
    grade: str | None = None
    assignments: list[GradeCell] = Field(default_factory=list)


class GradeInfo(MatrixModel):
    """One student's grades in a class (A.6.8)."""

    user_id: int
    percent: float | None = None
    grade: str | None = None
    grading_periods: list[GradingPeriod] = Field(default_factory=list)

    def cell(self, assignment_id: int) -> GradeCell | None:
        """The student's grade for one assignment, from whichever period holds it."""
        for period in self.grading_periods:
            for cell in period.assignments:
                if cell.id == assignment_id:
                    return cell
        return None


class UserRef(MatrixModel):
    """What ``add_user``/``update_user`` return: "the ID and userid" (key names inferred, A.3)."""

    id: int
    userid: str | None = None


def _validate(model: type[M], data: Any, function: str, where: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = ".".join(str(p) for p in (where, *first["loc"]) if str(p)) or "(top level)"
        raise malformed(function, f"unexpected {model.__name__} shape at {loc}: {first['msg']} "
                                  f"({exc.error_count()} errors)") from None


def _json_type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_list(model: type[M], body: Any, function: str) -> list[M]:
    """A JSON array of ``model`` objects (every list function of A.6)."""
    if not isinstance(body, list):
        raise malformed(function, f"expected a JSON array, got {_json_type(body)}")
    return [_validate(model, item, function, f"[{i}]") for i, item in enumerate(body)]


def parse_users(body: Any, function: str = "get_users") -> list[User]:
    """User info list (get_users_that_match, get_users_with_ids, get_all_users)."""
    return parse_list(User, body, function)


def parse_classes(body: Any, function: str = "get_classes") -> list[MatrixClass]:
    """Course info list (get_all_classes, get_classes_that_match, get_classes_with_ids)."""
    return parse_list(MatrixClass, body, function)


def parse_students(body: Any, function: str = "get_students_for_class") -> list[Student]:
    """Student info list."""
    return parse_list(Student, body, function)


def parse_teachers(body: Any, function: str = "get_teachers_for_class") -> list[Teacher]:
    """Teacher list (user info with ``coteacher``)."""
    return parse_list(Teacher, body, function)


def parse_assignments(body: Any, function: str = "get_assignments_for_class") -> list[Assignment]:
    """Assignment info list."""
    return parse_list(Assignment, body, function)


def parse_grades(body: Any, function: str = "get_grades_for_class") -> list[GradeInfo]:
    """Grade info list, one per student."""
    return parse_list(GradeInfo, body, function)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_version(body: Any, function: str = "get_version") -> int:
    """``{"version":1}`` (seed 000:L35); a bare integer is accepted too ("a simple integer")."""
    value = body.get("version") if isinstance(body, dict) else body
    if not _is_int(value):
        raise malformed(function, f"expected {{\"version\": <int>}}, got {_json_type(body)}")
    return int(value)


def parse_user_ref(body: Any, function: str = "add_user") -> UserRef:
    """"the ID and userid" of the account: an object with ``id`` (and ``userid``), or a bare id."""
    if _is_int(body):
        return UserRef(id=body)
    if isinstance(body, dict):
        return _validate(UserRef, body, function)
    raise malformed(function, f"expected the account's id and userid, got {_json_type(body)}")


def parse_id(body: Any, function: str = "add_class") -> int:
    """"Returns the ID of the newly added course": a bare integer or an object with ``id``."""
    value = body.get("id") if isinstance(body, dict) else body
    if not _is_int(value):
        raise malformed(function, f"expected an id, got {_json_type(body)}")
    return int(value)


def parse_count(body: Any, function: str = "add_students_to_class") -> int | None:
    """"the number of users that were enrolled is returned": a bare integer or an object with
    ``count``; ``true`` (a success without a count) gives ``None``."""
    if body is True:
        return None
    value = body.get("count") if isinstance(body, dict) else body
    if not _is_int(value) or value < 0:
        raise malformed(function, f"expected a count of users, got {_json_type(body)}")
    return int(value)


def parse_ack(body: Any, function: str = "archive_users") -> None:
    """A write whose answer is undocumented (archive, delete, restore, set_grades): ``true``,
    ``null``, a number or an object without ``message`` are successes; ``false`` is not."""
    if body is True or body is None or _is_int(body):
        return
    if isinstance(body, dict) and "message" not in body:
        return
    raise malformed(function, "expected true, got " + ("false" if body is False else _json_type(body)))
