"""The JSON shapes of user, course, student, teacher, assignment and grade info (matrix_class.md A.6).

Times are rendered as "YYYY-MM-DDThh:mmTZD" and dates as "YYYY-MM-DD" (seed 000:L27), in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from simulators.matrixlms.records import Assignment, Course, Enrollment, Grade, User
from simulators.matrixlms.store import SiteStore

# A conventional grade map (the seed shows only its shape: grade + minimum_percent, descending).
GRADEMAP = (
    ("A", 93.0), ("A-", 90.0), ("B+", 87.0), ("B", 83.0), ("B-", 80.0), ("C+", 77.0), ("C", 73.0),
    ("C-", 70.0), ("D+", 67.0), ("D", 63.0), ("D-", 60.0), ("F", 0.0),
)


def fmt_time(epoch: float | None) -> str | None:
    """``YYYY-MM-DDThh:mmZ`` (minute precision, TZD ``Z``)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%MZ")


def letter_for(percent: float | None) -> str | None:
    """The grade-map letter of a percentage."""
    if percent is None:
        return None
    for letter, minimum in GRADEMAP:
        if percent >= minimum:
            return letter
    return "F"


def user_info(user: User, store: SiteStore) -> dict[str, Any]:
    """User info, field order as in the seed (families disabled, so no parent fields)."""
    body: dict[str, Any] = {
        "id": user.id, "first_name": user.first_name, "last_name": user.last_name, "userid": user.userid,
        "password": user.password, "email": user.email, "sms_email": user.sms_email,
        "student": user.student, "teacher": user.teacher, "assistant": user.assistant,
        "administrator": user.administrator, "monitor": user.monitor, "manager": user.manager,
        "year_of_graduation": user.year_of_graduation, "student_id": user.student_id,
        "teacher_id": user.teacher_id, "organization_id": user.organization_id, "birthdate": user.birthdate,
        "nick_name": user.nick_name, "skype": user.skype, "phone": user.phone, "gender": user.gender,
        "street_1": user.street_1, "street_2": user.street_2, "city": user.city, "state": user.state,
        "zip": user.zip, "country": user.country, "picture": user.picture,
        "joined_at": fmt_time(user.joined_at), "first_login_at": fmt_time(user.first_login_at),
        "last_login_at": fmt_time(user.last_login_at), "logins": user.logins, "archived": user.archived,
        "archived_at": fmt_time(user.archived_at), "job_title_id": user.job_title_id,
    }
    for name in store.custom_user_fields:
        body[name] = user.custom.get(name)
    return body


def class_info(course: Course) -> dict[str, Any]:
    """Course info (A.6.3). ``description`` is settable but not a listed field, so not rendered."""
    paced = course.style == "Self paced"
    return {
        "id": course.id, "name": course.name, "style": course.style, "course_code": course.course_code,
        "section_code": course.section_code, "picture": course.picture, "semester": course.semester,
        "start": None if paced else course.start, "finish": None if paced else course.finish,
        "class_times": [], "weighting_using_categories": False, "weighting_style": "Points",
        "display_in_catalog": False, "archived": course.archived, "catalog_category": None,
        "grademap": [{"grade": g, "minimum_percent": p} for g, p in GRADEMAP],
        "grading_periods": [{"name": "Full course", "percent": 100, "start": course.start}],
    }


def student_info(user: User, enrollment: Enrollment, store: SiteStore) -> dict[str, Any]:
    """User info plus the enrollment fields (A.6.3 "Student info")."""
    return {
        **user_info(user, store),
        "notes": [], "enroll_type": enrollment.enroll_type, "enrolled_at": fmt_time(enrollment.enrolled_at),
        "enrolled_by_id": enrollment.enrolled_by_id, "started_at": None, "last_visited_at": None,
        "time_spent": 0, "completed_at": fmt_time(enrollment.completed_at), "unenrolled": enrollment.unenrolled,
        "unenrolled_at": fmt_time(enrollment.unenrolled_at), "unenrolled_by_id": enrollment.unenrolled_by_id,
        "deactivated": enrollment.deactivated, "deactivated_at": fmt_time(enrollment.deactivated_at),
        "reactivated_at": fmt_time(enrollment.reactivated_at), "percent": enrollment.percent,
        "grade": enrollment.grade,
    }


def assignment_info(assignment: Assignment, course: Course) -> dict[str, Any]:
    """Assignment info (A.6.7); begin/end/given are absent for self-paced courses."""
    body: dict[str, Any] = {
        "id": assignment.id, "name": assignment.name, "type": assignment.type, "points": float(assignment.points),
        "category": assignment.category, "grading": assignment.grading,
    }
    if course.style != "Self paced":
        body.update(begin=fmt_time(assignment.begin), end=fmt_time(assignment.end), given=assignment.given)
    body.update(gateway=assignment.gateway, lesson=assignment.lesson)
    return body


def _cell(assignment: Assignment, grade: Grade | None) -> dict[str, Any]:
    return {
        "id": assignment.id, "percent": grade.percent if grade else None, "grade": grade.grade if grade else None,
        "score": grade.score if grade else None, "points": float(assignment.points),
        "comment": grade.comment if grade else None,
        "submitted_at": fmt_time(grade.submitted_at) if grade else None,
        "grader_id": grade.grader_id if grade else None,
    }


def grade_info(user_id: int, assignments: list[Assignment], store: SiteStore) -> dict[str, Any]:
    """Grade info of one student (A.6.8): overall, one grading period, one cell per assignment."""
    cells = [_cell(a, store.grades.get((a.id, user_id))) for a in assignments]
    scored = [(c["score"], c["points"]) for c in cells if c["score"] is not None and c["points"]]
    percent = round(100.0 * sum(s for s, _ in scored) / sum(p for _, p in scored), 2) if scored else None
    grade = letter_for(percent)
    return {
        "user_id": user_id, "percent": percent, "grade": grade,
        "grading_periods": [{"name": "Full course", "percent": percent, "grade": grade, "assignments": cells}],
    }
