"""Students and teachers of a class (seed 000:L223-368, matrix_class.md A.6.3, A.6.4).

``add_students_to_class`` "either succeeds completely or fails completely" (000:L307): every id is
checked before anyone is enrolled, and an already-enrolled student fails the whole batch unless
``ignore_already_enrolled`` is true (the seed's "not enrolled" wording is taken to mean "already
enrolled", A.6.4). Counts are returned as bare integers ("the number of users that were enrolled
is returned"; bare integer chosen, A.3). See ``config.py`` for the two undocumented switches
(re-adding an unenrolled student, removing a non-member).
"""

from __future__ import annotations

from typing import Any

from simulators.matrixlms.errors import bad_request
from simulators.matrixlms.functions.base import Call, Function
from simulators.matrixlms.records import Course, Enrollment, User
from simulators.matrixlms.render import student_info, user_info


def _target(call: Call) -> tuple[Course, list[User]]:
    course = call.store.course(call.args.required_int("class_id"))
    ids = list(dict.fromkeys(call.args.id_list("user_ids")))  # a repeated id counts once
    return course, [call.store.user(i) for i in ids]


def add_students_to_class(call: Call) -> Any:
    """Enroll the users, all or none; returns how many were enrolled (000:L306-314)."""
    course, users = _target(call)
    ignore = call.args.boolean("ignore_already_enrolled")
    store = call.store
    to_enroll: list[User] = []
    for user in users:
        current = store.enrollments.get((course.id, user.id))
        already = current is not None and (current.active or call.config.readd_unenrolled == "error")
        if already and not ignore:
            raise bad_request(f"User {user.id} is already enrolled in class {course.id}")
        if not already:
            to_enroll.append(user)
    for user in to_enroll:
        store.enrollments[(course.id, user.id)] = Enrollment(
            class_id=course.id, user_id=user.id, enrolled_at=call.now, enrolled_by_id=call.caller_id,
        )
    return len(to_enroll)


def remove_students_from_class(call: Call) -> Any:
    """Unenroll the users (their enrollments stay, flagged ``unenrolled``); returns the count."""
    course, users = _target(call)
    store = call.store
    members: list[Enrollment] = []
    for user in users:
        current = store.enrollments.get((course.id, user.id))
        if current is None or not current.active:
            if call.config.remove_non_member == "error":
                raise bad_request(f"User {user.id} is not enrolled in class {course.id}")
            continue
        members.append(current)
    for enrollment in members:
        enrollment.unenrolled, enrollment.unenrolled_at = True, call.now
        enrollment.unenrolled_by_id = call.caller_id
    return len(members)


def _set_deactivated(call: Call, deactivated: bool) -> Any:
    course, users = _target(call)
    enrollments = []
    for user in users:
        current = call.store.enrollments.get((course.id, user.id))
        if current is None or not current.active:
            raise bad_request(f"User {user.id} is not enrolled in class {course.id}")
        enrollments.append(current)
    for enrollment in enrollments:
        if deactivated and not enrollment.deactivated:
            enrollment.deactivated, enrollment.deactivated_at = True, call.now
        elif not deactivated and enrollment.deactivated:
            enrollment.deactivated, enrollment.reactivated_at = False, call.now
    return True


def deactivate_students_in_class(call: Call) -> Any:
    """Deactivate enrolled students (return undocumented: ``true``)."""
    return _set_deactivated(call, True)


def reactivate_students_in_class(call: Call) -> Any:
    """Reactivate deactivated students (return undocumented: ``true``)."""
    return _set_deactivated(call, False)


def add_teachers_to_class(call: Call) -> Any:
    """Add instructors, all or none; the first teacher of a class is the main one, later ones
    co-teachers; someone already teaching is skipped and not counted (inferred)."""
    course, users = _target(call)
    teachers = call.store.teachers.setdefault(course.id, {})
    added = 0
    for user in users:
        if user.id not in teachers:
            teachers[user.id] = bool(teachers)
            added += 1
    return added


def remove_teachers_from_class(call: Call) -> Any:
    """Remove instructors; someone not teaching is skipped (inferred). Returns the count."""
    course, users = _target(call)
    teachers = call.store.teachers.setdefault(course.id, {})
    removed = 0
    for user in users:
        if teachers.pop(user.id, None) is not None:
            removed += 1
    return removed


def get_students_for_class(call: Call) -> Any:
    """Student info of every enrollment, unenrolled ones included (``unenrolled: true``); not paged."""
    store = call.store
    course = store.course(call.args.required_int("class_id"))
    return [student_info(store.users[e.user_id], e, store) for e in store.class_enrollments(course.id)]


def get_teachers_for_class(call: Call) -> Any:
    """User info of the class's teachers, each with ``coteacher``."""
    store = call.store
    course = store.course(call.args.required_int("class_id"))
    teachers = store.teachers.get(course.id, {})
    return [{**user_info(store.users[uid], store), "coteacher": co} for uid, co in teachers.items()]


def get_status_of_classes(call: Call) -> Any:
    """``{"enrolled": [...], "deactivated": [...], "completed": [...]}`` class ids of a user (000:L227)."""
    store = call.store
    user = store.user(call.args.required_int("user_id"))
    status: dict[str, list[int]] = {"enrolled": [], "deactivated": [], "completed": []}
    for course in store.live_classes():
        enrollment = store.enrollments.get((course.id, user.id))
        if enrollment is None or not enrollment.active:
            continue
        key = "completed" if enrollment.completed_at else "deactivated" if enrollment.deactivated else "enrolled"
        status[key].append(course.id)
    return status


FUNCTIONS: dict[str, Function] = {
    "add_students_to_class": add_students_to_class, "remove_students_from_class": remove_students_from_class,
    "deactivate_students_in_class": deactivate_students_in_class,
    "reactivate_students_in_class": reactivate_students_in_class,
    "add_teachers_to_class": add_teachers_to_class, "remove_teachers_from_class": remove_teachers_from_class,
    "get_students_for_class": get_students_for_class, "get_teachers_for_class": get_teachers_for_class,
    "get_status_of_classes": get_status_of_classes,
}
