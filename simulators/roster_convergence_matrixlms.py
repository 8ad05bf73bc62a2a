"""Does MatrixLMS hold exactly Illuminate's roster? Every student and staff member as one user
(found by student ID or teacher ID), exactly one class per section (named with its ``[S<id>]``
token, so the name is unique), its active students enrolled, its teacher teaching it.

Classes without a section token (the seed's examples, classes made by hand) are left out.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping

from simulators.matrixlms import MatrixSimulator
from simulators.matrixlms.records import User
from simulators.roster_projection import RosterProjection, RosterReport

_TOKEN = re.compile(r"\[S([^\]]+)\]$")


def expected_class_name(course_name: str, period: str | None, section_id: str) -> str:
    """FLOWS.md 2.5 trap 2: course, period, and the section id as a unique token."""
    return f"{course_name}{f' - P{period}' if period else ''} [S{section_id}]"


def compare_matrixlms(projection: RosterProjection, sim: MatrixSimulator, site: str = "demo") -> RosterReport:
    """The differences between ``sim``'s site and ``projection``."""
    report = RosterReport("matrixlms")
    with sim.lock:
        store = sim.site(site)
        by_student: dict[str, list[int]] = defaultdict(list)
        by_teacher: dict[str, list[int]] = defaultdict(list)
        for user in store.users.values():
            if user.student_id:
                by_student[user.student_id].append(user.id)
            if user.teacher_id:
                by_teacher[user.teacher_id].append(user.id)
        for sis, person in projection.students.items():
            _check_user(report, store.users, by_student.get(sis, []), sis, person.first, person.last)
        for sis, person in projection.staff.items():
            _check_user(report, store.users, by_teacher.get(sis, []), sis, person.first, person.last)
        ours: dict[str, list[int]] = defaultdict(list)
        for course in store.classes.values():
            match = _TOKEN.search(course.name)
            if match and not course.trashed:
                ours[match.group(1)].append(course.id)
        # Active members per class in one pass: scanning every enrolment per class is quadratic
        # (1,836 classes x 55,080 rows in the bench district: 2 s under the simulator's lock).
        active: dict[int, set[int]] = defaultdict(set)
        for (cid, uid), e in store.enrollments.items():
            if e.active:
                active[cid].add(uid)
        members = 0
        for sid, section in projection.sections.items():
            found = ours.pop(sid, [])
            if not found:
                report.add("missing_classes", sid)
                continue
            if len(found) > 1:
                report.add("duplicate_classes", f"{sid}: {found}")
            class_id = found[0]
            course = store.classes[class_id]
            wanted_name = expected_class_name(section.course_name, section.period, sid)
            if course.name != wanted_name:
                report.add("wrong_class_names", f"{course.name!r} != {wanted_name!r}")
            enrolled = active.get(class_id, set())
            members += len(enrolled)
            wanted = {uid for p in projection.members.get(sid, set()) for uid in by_student.get(p, [])[:1]}
            for uid in sorted(wanted - enrolled):
                report.add("missing_members", f"{sid}/{uid}")
            for uid in sorted(enrolled - wanted):
                report.add("extra_members", f"{sid}/{uid}")
            if section.teacher is not None:
                teacher = by_teacher.get(section.teacher.sis_id, [])
                if not teacher or teacher[0] not in store.teachers.get(class_id, {}):
                    report.add("missing_teachers", f"{sid}/{section.teacher.sis_id}")
        for sid in sorted(ours):
            report.add("extra_classes", sid)
        report.counts = {"users": sum(len(v) for v in by_student.values()) + len(by_teacher),
                         "classes": len(projection.sections), "members": members}
    return report


def _check_user(report: RosterReport, users: Mapping[int, User], ids: list[int], sis: str, first: str,
                last: str) -> None:
    if not ids:
        report.add("missing_users", sis)
        return
    if len(ids) > 1:
        report.add("duplicate_users", f"{sis}: {ids}")
    user = users[ids[0]]
    if (user.first_name, user.last_name) != (first, last):
        report.add("wrong_names", f"{sis}: {user.first_name} {user.last_name} != {first} {last}")


def calls_by_function(sim: MatrixSimulator, site: str = "demo") -> Counter[str]:
    """Calls the site answered, by function (from the simulator's statistics)."""
    functions = sim.stats.snapshot(60.0, site)["sites"].get(site, {}).get("functions", {})
    return Counter({name: sum(by_status.values()) for name, by_status in functions.items()})


# Functions that only read: everything else the roster handler calls writes.
READ_FUNCTIONS = frozenset({"get_version", "get_all_classes", "get_classes_that_match", "get_classes_with_ids",
                            "get_all_users", "get_users_that_match", "get_users_with_ids", "get_students_for_class",
                            "get_teachers_for_class", "get_assignments_for_class", "get_grades_for_class"})
