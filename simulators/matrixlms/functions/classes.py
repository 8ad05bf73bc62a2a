"""Class (course) functions (seed 000:L197-411, matrix_class.md A.6.3, A.6.5, A.7).

``add_class`` is not idempotent: every call creates a new class, so a retried or lost call makes
a duplicate (A.7). ``add_class``/``edit_class`` return the bare class id ("Returns the ID of the
newly added course"; bare integer chosen, A.3); archive/reactivate/delete/restore return ``true``
(undocumented) and check every id before changing any (inferred).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from simulators.matrixlms.errors import bad_request
from simulators.matrixlms.functions.base import RESERVED, Call, Function, page_of
from simulators.matrixlms.params import to_bool
from simulators.matrixlms.records import Course
from simulators.matrixlms.render import class_info

STYLES = {"instructor": "Instructor", "self paced": "Self paced", "self-paced": "Self paced", "blended": "Blended"}
TOP_TABS = ("News", "Lessons", "Custom", "CurrentLesson", "Agenda")
TABS = frozenset({
    "custom", "news", "lessons", "calendar", "blogs", "resources", "forums", "wikis", "chat", "attendance",
    "groups", "portfolios", "reviews", "syllabus_tab", "students_tab", "parents_tab", "teachers_tab",
})
ATTRIBUTES = frozenset({"name", "description", "style", "start_at", "finish_at", "private", "top_tab",
                        "picture", "tabs"})
CODES = frozenset({"course_code", "section_code", "semester"})
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)?$")


def _date(value: Any, name: str) -> str | None:
    text = str(value).strip()
    if text == "":
        return None
    match = _DATE.match(text)
    if match is None:
        raise bad_request(f"Invalid date for {name} (expected YYYY-MM-DD): {text}")
    return match.group(1)


def _attributes(call: Call, reserved: frozenset[str]) -> dict[str, Any]:
    attrs = call.args.bag("attributes", RESERVED | reserved)
    allowed = ATTRIBUTES | CODES if call.config.class_codes_settable else ATTRIBUTES
    call.reject_unknown(list(attrs), allowed)
    return {k: v for k, v in attrs.items() if k in allowed}


def _apply(course: Course, attrs: dict[str, Any]) -> None:
    for name, value in attrs.items():
        if isinstance(value, dict | list) and name != "tabs":
            raise bad_request(f"Attribute {name} must be a single value")
        text = None if value is None else str(value)
        if name == "name":
            if not text:
                raise bad_request("Missing attribute: name")
            course.name = text
        elif name == "style":
            style = STYLES.get((text or "").strip().lower())
            if style is None:
                raise bad_request(f"Invalid style: {text}")
            course.style = style
        elif name == "start_at":
            course.start = _date(value, name)
        elif name == "finish_at":
            course.finish = _date(value, name)
        elif name == "private":
            course.private = to_bool(value, name)
        elif name == "top_tab":
            if text not in TOP_TABS:
                raise bad_request(f"Invalid top_tab: {text}")
            course.top_tab = text
        elif name == "tabs":
            tabs = value if isinstance(value, list) else [t for t in (text or "").split(",")]
            tabs = [str(t).strip() for t in tabs if str(t).strip()]
            unknown = [t for t in tabs if t not in TABS]
            if unknown:
                raise bad_request(f"Invalid tab: {unknown[0]}")
            course.tabs = tabs
        else:
            setattr(course, name, text or None)


def add_class(call: Call) -> Any:
    """Create a class, every time (no uniqueness rule, A.7). Returns the new id."""
    attrs = _attributes(call, frozenset())
    if not attrs.get("name"):
        raise bad_request("Missing attribute: name")
    store = call.store
    course = Course(id=store.next_id("class", store.classes), name=str(attrs["name"]), created_at=call.now)
    _apply(course, attrs)
    store.classes[course.id] = course
    store.teachers[course.id] = {}
    return course.id


def edit_class(call: Call) -> Any:
    """Change a class's attributes; returns its id (000:L400-401)."""
    course = replace(call.store.course(call.args.required_int("class_id")))
    _apply(course, _attributes(call, frozenset({"class_id"})))
    call.store.classes[course.id] = course  # stored only once every attribute was valid
    return course.id


def get_all_classes(call: Call) -> Any:
    """All classes, archived included unless ``archived`` says otherwise; 100 per page (000:L200)."""
    archived = call.args.raw("archived")
    courses = list(call.store.live_classes())
    if archived is not None and archived != "":
        flag = to_bool(archived, "archived")
        courses = [c for c in courses if c.archived == flag]
    return [class_info(c) for c in page_of(courses, call.args.page())]


def get_classes_with_ids(call: Call) -> Any:
    """The classes with the given ids."""
    return [class_info(call.store.course(i)) for i in call.args.id_list("class_ids")]


def get_classes_that_match(call: Call) -> Any:
    """Classes matching name, course_code, section_code and archived (000:L206); 100 per page."""
    constraints = call.args.bag("constraints", RESERVED | {"page"})
    for name in constraints:
        if name not in ("name", "course_code", "section_code", "archived"):
            raise bad_request(f"Unsupported constraint: {name}")
    contains = call.config.class_name_match == "contains"

    def matches(course: Course) -> bool:
        for name, wanted in constraints.items():
            if name == "archived":
                if course.archived != to_bool(wanted, name):
                    return False
                continue
            actual = (getattr(course, name) or "").strip().lower()
            target = str(wanted).strip().lower()
            if not (target in actual if contains and name == "name" else actual == target):
                return False
        return True

    courses = [c for c in call.store.live_classes() if matches(c)]
    return [class_info(c) for c in page_of(courses, call.args.page())]


def get_classes_taught_by(call: Call) -> Any:
    """Classes the user teaches, each with ``coteacher`` (000:L208)."""
    user = call.store.user(call.args.required_int("user_id"))
    return [
        {**class_info(c), "coteacher": call.store.teachers[c.id][user.id]}
        for c in call.store.live_classes() if user.id in call.store.teachers.get(c.id, {})
    ]


def get_classes_enrolled_by(call: Call) -> Any:
    """Classes the user is enrolled in (unenrolled enrollments excluded)."""
    user = call.store.user(call.args.required_int("user_id"))
    enrollments = call.store.enrollments
    return [class_info(c) for c in call.store.live_classes()
            if (e := enrollments.get((c.id, user.id))) is not None and e.active]


def _courses(call: Call, *, trashed: bool = False) -> list[Course]:
    return [call.store.course(i, trashed=trashed) for i in call.args.id_list("class_ids")]


def archive_classes(call: Call) -> Any:
    """Archive the classes."""
    for course in _courses(call):
        if not course.archived:
            course.archived, course.archived_at = True, call.now
    return True


def reactivate_classes(call: Call) -> Any:
    """Unarchive the classes."""
    for course in _courses(call):
        course.archived, course.archived_at = False, None
    return True


def delete_classes(call: Call) -> Any:
    """Move the classes to the trash can (000:L409)."""
    for course in _courses(call):
        course.trashed = True
    return True


def restore_classes(call: Call) -> Any:
    """Bring the classes back from the trash can (000:L411)."""
    for course in _courses(call, trashed=True):
        course.trashed = False
    return True


FUNCTIONS: dict[str, Function] = {
    "add_class": add_class, "edit_class": edit_class, "get_all_classes": get_all_classes,
    "get_classes_with_ids": get_classes_with_ids, "get_classes_that_match": get_classes_that_match,
    "get_classes_taught_by": get_classes_taught_by, "get_classes_enrolled_by": get_classes_enrolled_by,
    "archive_classes": archive_classes, "reactivate_classes": reactivate_classes,
    "delete_classes": delete_classes, "restore_classes": restore_classes,
}
