"""The Class API's objects (field names from seed 001, matrix_class.md B.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Enrollment:
    """An attendee of a class; the host is one too, with role ``teacher`` (B.6.7)."""

    student_id: str
    meeting_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    ext_person_id: str | None
    role: str = "student"
    display_name: str | None = None
    deferred_id: int | None = None  # the deferred-enrollment id, when enrolled into a deferred class
    created_at: str | None = None

    @property
    def user_name(self) -> str:
        """The display name, else "first last"."""
        if self.display_name:
            return self.display_name
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass
class Schedule:
    """A class date (B.6.13-15)."""

    schedule_id: str
    class_id: str
    start_time: int
    end_time: int
    timezone: str
    session_id: str


@dataclass
class ClassRecord:
    """A live class; ``deferred_id`` is set while it is only a deferred record (B.6.2)."""

    class_id: str
    ext_class_id: str | None
    class_name: str
    class_description: str | None
    meeting_id: str
    host: str
    password: str | None
    email: str
    timezone: str
    created_at: str
    updated_at: str
    deferred_id: int | None = None
    enrollments: list[Enrollment] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class UserRecord:
    """A non-learner user (B.6.21)."""

    id: int
    ext_user_id: str | None
    email: str | None
    user_name: str
    roles: list[str]
    is_zoom_configured: bool = False


@dataclass
class Template:
    """A class template (B.6.16)."""

    template_id: str
    name: str
    description: str | None
    status: str = "published"
