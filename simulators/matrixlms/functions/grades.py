"""Assignments and grades (seed 000:L526-574, matrix_class.md A.6.7, A.6.8).

Assignments cannot be created through the API (A.6.7); the seed generator and ``POST
/_sim/assignments`` make them. ``set_grades_for_assignment`` is a setter (idempotent per
assignment and user), all-or-nothing over its entries (inferred), and returns ``true``
(undocumented, A.3).
"""

from __future__ import annotations

import re
from typing import Any

from simulators.matrixlms.errors import bad_request
from simulators.matrixlms.functions.base import Call, Function
from simulators.matrixlms.params import to_int
from simulators.matrixlms.records import Assignment, Grade
from simulators.matrixlms.render import GRADEMAP, assignment_info, grade_info

SPECIAL_GRADES = ("X", "M", "I", "AB")
_LETTER = re.compile(r"^[A-F][+-]?$")
_MINIMUM = dict(GRADEMAP)


def parse_grade(raw: Any, points: float) -> tuple[str, float | None, float | None] | None:
    """(grade, percent, score) of a grade value, or None for a blank (which clears the cell).

    "A grade can be a letter grade (B+), a floating point number (3.1), a percentage (15%), a
    blank ('') or a special grade (X/M/I/AB)" (000:L574). A number is taken as the score in
    points; a letter as its grade-map minimum percent (inferred).
    """
    text = "" if raw is None else str(raw).strip()
    if text == "":
        return None
    upper = text.upper()
    if upper in SPECIAL_GRADES:
        return upper, None, None
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            return text, percent, round(percent * points / 100.0, 4)
        if _LETTER.match(upper):
            percent = _MINIMUM.get(upper, _MINIMUM.get(upper[0], 0.0))
            return upper, percent, round(percent * points / 100.0, 4)
        score = float(text)
    except ValueError:
        raise bad_request(f"Invalid grade: {text}") from None
    return text, (round(100.0 * score / points, 2) if points else None), score


def get_assignments_for_class(call: Call) -> Any:
    """Assignment info "in the order that they appear" (000:L526)."""
    store = call.store
    course = store.course(call.args.required_int("class_id"))
    return [assignment_info(a, course) for a in store.class_assignments(course.id)]


def set_grades_for_assignment(call: Call) -> Any:
    """Set the grades of students in an assignment (000:L573-574)."""
    store = call.store
    assignment: Assignment = store.assignment(call.args.required_int("assignment_id"))
    entries = call.args.objects("grades")
    changes: list[tuple[int, tuple[str, float | None, float | None] | None]] = []
    for entry in entries:
        if "user_id" not in entry or "grade" not in entry:
            raise bad_request("Each grade needs user_id and grade")
        user_id = to_int(entry["user_id"], "user_id")
        store.user(user_id)
        enrollment = store.enrollments.get((assignment.class_id, user_id))
        if enrollment is None or not enrollment.active:
            raise bad_request(f"User {user_id} is not a student of class {assignment.class_id}")
        changes.append((user_id, parse_grade(entry["grade"], assignment.points)))
    for user_id, parsed in changes:
        if parsed is None:
            store.grades.pop((assignment.id, user_id), None)
        else:
            grade, percent, score = parsed
            store.grades[(assignment.id, user_id)] = Grade(grade, percent, score, call.now, call.caller_id)
    return True


def get_grades_for_class(call: Call) -> Any:
    """Grade info for each enrolled student of the class (000:L564)."""
    store = call.store
    course = store.course(call.args.required_int("class_id"))
    assignments = store.class_assignments(course.id)
    return [grade_info(e.user_id, assignments, store) for e in store.class_enrollments(course.id) if e.active]


def get_grades_for_user(call: Call) -> Any:
    """``[{"class_id": id, "grades": <grade info>}]`` over the user's classes, archived excluded (000:L566)."""
    store = call.store
    user = store.user(call.args.required_int("user_id"))
    return [
        {"class_id": c.id, "grades": grade_info(user.id, store.class_assignments(c.id), store)}
        for c in store.live_classes()
        if not c.archived and (e := store.enrollments.get((c.id, user.id))) is not None and e.active
    ]


FUNCTIONS: dict[str, Function] = {
    "get_assignments_for_class": get_assignments_for_class,
    "set_grades_for_assignment": set_grades_for_assignment,
    "get_grades_for_class": get_grades_for_class, "get_grades_for_user": get_grades_for_user,
}
