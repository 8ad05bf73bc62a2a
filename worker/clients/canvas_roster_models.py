"""Typed roster and gradebook objects returned by ``CanvasClient``.

Seed shapes (canvas.md §3.2-§3.6, §3.10, §1.9): Account, EnrollmentTerm, Course, Enrollment,
Assignment, Progress. Not in the seeds, from Canvas's public REST API documentation: User and
Login (https://canvas.instructure.com/doc/api/users.html, .../logins.html), Section
(.../sections.html) and Submission (.../submissions.html). Only the fields edusync uses or shows
are declared; unknown fields are ignored so new Canvas fields never break parsing. Ids are strings
(``canvas_types``), timestamps aware UTC.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from worker.clients.canvas_models import CanvasModel
from worker.clients.canvas_types import CanvasId, OptionalId, OptionalTime

EnrollmentType = Literal[
    "StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "ObserverEnrollment", "DesignerEnrollment",
]
# Every documented state[] value of the list-enrollments endpoints (canvas.md §4): "If omitted,
# 'active' and 'invited' enrollments are returned", so a sync passes them all.
ENROLLMENT_STATES: tuple[str, ...] = (
    "active", "invited", "creation_pending", "deleted", "rejected", "completed", "inactive",
)
EnrollmentTask = Literal["conclude", "delete", "inactivate", "deactivate"]


class Account(CanvasModel):
    """An account (seed 002:L16845-16880)."""

    id: CanvasId
    name: str
    parent_account_id: OptionalId = None
    root_account_id: OptionalId = None
    sis_account_id: str | None = None
    workflow_state: str | None = None
    default_time_zone: str | None = None


class User(CanvasModel):
    """A user with the SIS fields of its primary login (PUBLIC: users.html "User")."""

    id: CanvasId
    name: str
    sortable_name: str | None = None
    short_name: str | None = None
    sis_user_id: str | None = None
    integration_id: str | None = None
    login_id: str | None = None
    email: str | None = None
    created_at: OptionalTime = None


class Login(CanvasModel):
    """A login, Canvas's pseudonym (PUBLIC: logins.html)."""

    id: CanvasId
    user_id: CanvasId
    account_id: OptionalId = None
    unique_id: str
    sis_user_id: str | None = None
    integration_id: str | None = None
    workflow_state: str | None = None


class Term(CanvasModel):
    """An enrollment term (seed 002:L8384-8430)."""

    id: CanvasId
    name: str
    sis_term_id: str | None = None
    start_at: OptionalTime = None
    end_at: OptionalTime = None
    workflow_state: str | None = None
    overrides: dict[str, Any] | None = None


class Course(CanvasModel):
    """A course (seed 002:L19283-19400)."""

    id: CanvasId
    name: str
    course_code: str | None = None
    account_id: OptionalId = None
    root_account_id: OptionalId = None
    enrollment_term_id: OptionalId = None
    sis_course_id: str | None = None
    integration_id: str | None = None
    workflow_state: str | None = Field(None, description="unpublished, available, completed or deleted")
    start_at: OptionalTime = None
    end_at: OptionalTime = None


class Section(CanvasModel):
    """A course section (PUBLIC: sections.html "Section")."""

    id: CanvasId
    name: str
    course_id: CanvasId
    sis_section_id: str | None = None
    integration_id: str | None = None
    sis_course_id: str | None = None
    start_at: OptionalTime = None
    end_at: OptionalTime = None
    total_students: int | None = None


class Enrollment(CanvasModel):
    """An enrollment of a user in one section (seed 002:L14730-14932)."""

    id: CanvasId
    user_id: CanvasId
    course_id: CanvasId
    course_section_id: OptionalId = None
    type: str
    role: str | None = None
    enrollment_state: str
    sis_user_id: str | None = None
    sis_section_id: str | None = None
    sis_course_id: str | None = None
    limit_privileges_to_course_section: bool | None = None
    created_at: OptionalTime = None
    updated_at: OptionalTime = None
    grades: dict[str, Any] | None = None


class Assignment(CanvasModel):
    """An assignment (seed 002:L18330-18620)."""

    id: CanvasId
    course_id: CanvasId
    name: str
    points_possible: float | None = None
    grading_type: str | None = None
    published: bool | None = None
    workflow_state: str | None = None
    integration_id: str | None = None
    sis_assignment_id: str | None = None
    anonymous_grading: bool | None = None
    updated_at: OptionalTime = None


class Submission(CanvasModel):
    """A student's submission for one assignment (PUBLIC: submissions.html "Submission")."""

    id: CanvasId
    assignment_id: CanvasId
    user_id: CanvasId
    course_id: OptionalId = None
    score: float | None = None
    grade: str | None = None
    excused: bool | None = None
    grader_id: OptionalId = None
    graded_at: OptionalTime = None
    workflow_state: str | None = None


class Progress(CanvasModel):
    """An asynchronous job (seed 002:L9428-9452): queued, running, completed or failed."""

    id: CanvasId
    workflow_state: Literal["queued", "running", "completed", "failed"]
    completion: float | None = None
    tag: str | None = None
    message: str | None = None
    results: Any = None
    url: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job is over (completed or failed)."""
        return self.workflow_state in ("completed", "failed")
