"""The JSON shapes of seed 001 (key order as in its examples), matrix_class.md B.6."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from simulators.classroom.records import ClassRecord, Enrollment, Schedule, Template, UserRecord

# The deferred-enrollment example's infrastructure metadata, verbatim (seed 001, B.6.6).
POD = {"name": "pod-3", "region": "us-east-1", "account": "mydemo", "environment": "dev",
       "databaseName": "customer_mydemo"}
ROLE_ORDER = ("instructor", "admin", "instructional-designer")  # the order the seed's responses use


def iso_now() -> str:
    """``2023-03-03T14:48:06.312Z`` (ISO-8601, milliseconds, Z)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def invite_link(host: str, class_id: str) -> str:
    """``https://<org-host>/class.html?class_uuid=<class_id>`` (B.9.5)."""
    return f"https://{host}/class.html?class_uuid={class_id}"


def launch_url(host: str, record: ClassRecord, enrollment: Enrollment, code: str) -> str:
    """The launch link (B.6.10)."""
    return (f"{invite_link(host, record.class_id)}&student_id={enrollment.student_id}"
            f"&username={quote_plus(enrollment.user_name)}&code={code}")


def class_json(record: ClassRecord, host: str) -> dict[str, Any]:
    """A class record (B.6.2)."""
    return {
        "class_id": record.class_id, "ext_class_id": record.ext_class_id, "class_name": record.class_name,
        "class_description": record.class_description, "meeting_id": record.meeting_id, "host": record.host,
        "invite_link": invite_link(host, record.class_id), "password": record.password,
    }


def deferred_json(record: ClassRecord) -> dict[str, Any]:
    """A deferred class record (B.6.2 "deferred")."""
    return {
        "class_deferred_id": record.deferred_id, "class_id": record.class_id, "ext_class_id": record.ext_class_id,
        "email": record.email, "class_name": record.class_name, "class_description": record.class_description,
        "created_at": record.created_at, "updated_at": record.updated_at,
    }


def enrollment_json(e: Enrollment) -> dict[str, Any]:
    """An entry of Get Enrollments (B.6.7)."""
    return {"student_id": e.student_id, "meeting_id": e.meeting_id, "user_name": e.user_name,
            "first_name": e.first_name, "last_name": e.last_name, "email": e.email,
            "ext_person_id": e.ext_person_id, "role": e.role}


def enrollment_created_json(e: Enrollment) -> dict[str, Any]:
    """The 200 of Create an Enrollment (B.6.6)."""
    return {"student_id": e.student_id, "meeting_id": e.meeting_id, "first_name": e.first_name,
            "last_name": e.last_name, "user_name": e.user_name, "role": e.role, "email": e.email,
            "ext_person_id": e.ext_person_id}


def enrollment_updated_json(e: Enrollment) -> dict[str, Any]:
    """The 200 of Update an Enrollment (B.6.8)."""
    return {"student_id": e.student_id, "ext_person_id": e.ext_person_id, "meeting_id": e.meeting_id,
            "first_name": e.first_name, "last_name": e.last_name, "user_name": e.user_name, "role": e.role,
            "email": e.email}


def deferred_enrollment_json(record: ClassRecord, e: Enrollment) -> dict[str, Any]:
    """The 200 (Deferred) of Create an Enrollment; ``class_deferred_id`` is a string there (B.6.6)."""
    return {
        "id": e.deferred_id, "class_deferred_id": str(record.deferred_id), "email_user": e.email,
        "enroll_params": {"pod": dict(POD), "class": {"ext_id": record.ext_class_id}},
        "user": {"role": e.role, "email": e.email, "last_name": e.last_name, "user_name": e.user_name,
                 "first_name": e.first_name, "ext_person_id": e.ext_person_id},
        "created_at": e.created_at, "updated_at": e.created_at, "role": e.role,
    }


def user_json(user: UserRecord) -> dict[str, Any]:
    """A user (B.6.21); roles in the seed's response order."""
    roles = sorted(user.roles, key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER else len(ROLE_ORDER))
    return {"id": user.id, "ext_user_id": user.ext_user_id, "email": user.email, "user_name": user.user_name,
            "roles": roles, "is_zoom_configured": user.is_zoom_configured}


def template_json(t: Template) -> dict[str, Any]:
    """A template (B.6.16)."""
    return {"template_id": t.template_id, "name": t.name, "description": t.description, "status": t.status}


def schedule_json(s: Schedule) -> dict[str, Any]:
    """A class date (B.6.14), Unix-second times."""
    return {"schedule_id": s.schedule_id, "class_id": s.class_id, "start_time": s.start_time, "end_time": s.end_time}
