"""The records of one MatrixLMS site (field names from matrix_class.md A.6.2, A.6.3, A.6.7, A.6.8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLE_FLAGS = ("student", "teacher", "assistant", "administrator", "monitor", "manager")

# User-info fields a caller may set through add_user/update_user (A.6.2; the ordinary attributes
# are undocumented, these are the user-info names, matrix_class.md A.6.2 "NOT DOCUMENTED").
USER_TEXT_FIELDS = (
    "first_name", "last_name", "userid", "password", "email", "sms_email", "year_of_graduation",
    "student_id", "teacher_id", "birthdate", "nick_name", "skype", "phone", "gender", "street_1",
    "street_2", "city", "state", "zip", "country", "picture",
)
USER_INT_FIELDS = ("organization_id", "job_title_id")


@dataclass
class User:
    """A site account; ``custom`` holds the site's custom fields (e.g. the seed's ``ssn``)."""

    id: int
    first_name: str | None = None
    last_name: str | None = None
    userid: str | None = None
    password: str | None = None
    email: str | None = None
    sms_email: str | None = None
    student: bool = False
    teacher: bool = False
    assistant: bool = False
    administrator: bool = False
    monitor: bool = False
    manager: bool = False
    year_of_graduation: str | None = None
    student_id: str | None = None
    teacher_id: str | None = None
    organization_id: int | None = None
    birthdate: str | None = None
    nick_name: str | None = None
    skype: str | None = None
    phone: str | None = None
    gender: str | None = None
    street_1: str | None = None
    street_2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    picture: str | None = None
    joined_at: float = 0.0
    first_login_at: float | None = None
    last_login_at: float | None = None
    logins: int = 0
    archived: bool = False
    archived_at: float | None = None
    job_title_id: int | None = None
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass
class Course:
    """A class (course). ``trashed`` is "placed into the trash can" by delete_classes (A.6.5)."""

    id: int
    name: str
    description: str | None = None
    style: str = "Self paced"
    start: str | None = None
    finish: str | None = None
    private: bool = True
    top_tab: str = "Lessons"
    picture: str | None = None
    tabs: list[str] | None = None
    course_code: str | None = None
    section_code: str | None = None
    semester: str | None = None
    archived: bool = False
    archived_at: float | None = None
    trashed: bool = False
    created_at: float = 0.0


@dataclass
class Enrollment:
    """A student's enrollment; kept (with ``unenrolled=True``) after removal (A.6.3 student info)."""

    class_id: int
    user_id: int
    enrolled_at: float
    enrolled_by_id: int | None
    enroll_type: str = "API"
    unenrolled: bool = False
    unenrolled_at: float | None = None
    unenrolled_by_id: int | None = None
    deactivated: bool = False
    deactivated_at: float | None = None
    reactivated_at: float | None = None
    completed_at: float | None = None
    percent: float | None = None
    grade: str | None = None

    @property
    def active(self) -> bool:
        """Enrolled now (a deactivated student is still enrolled)."""
        return not self.unenrolled


@dataclass
class Assignment:
    """An assignment; the API cannot create these (A.6.7), only the seed and the control API."""

    id: int
    class_id: int
    name: str
    type: str = "Freeform"
    points: float = 100.0
    category: str | None = None
    grading: str = "Normal"
    begin: float | None = None
    end: float | None = None
    given: bool = True
    gateway: bool = False
    lesson: int | None = None


@dataclass
class Grade:
    """One gradebook cell (assignment, user) as set by set_grades_for_assignment (A.6.8)."""

    grade: str
    percent: float | None
    score: float | None
    submitted_at: float
    grader_id: int | None
    comment: str | None = None
