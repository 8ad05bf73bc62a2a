"""Does Class hold exactly Illuminate's roster? One class per section, its active students as
student enrolments with current names, its teacher as host (or, after a change of primary
teacher, as a teacher enrolment: Class cannot change a host), and every staff member as a user.

Only classes whose ``ext_class_id`` carries the tenant's prefix are edusync's; others (the seed's
examples, classes made by hand) are left out of the comparison.
"""

from __future__ import annotations

from collections import Counter

from simulators.classroom import ClassSimulator
from simulators.roster_projection import RosterProjection, RosterReport


def compare_class(projection: RosterProjection, sim: ClassSimulator) -> RosterReport:
    """The differences between ``sim``'s organisation and ``projection``."""
    report = RosterReport("class")
    marker = f"{projection.prefix}-section-"
    with sim.lock:
        ours = {c.ext_class_id: c for c in sim.store.classes.values()
                if c.ext_class_id and c.ext_class_id.startswith(marker)}
        users = {u.ext_user_id: u for u in sim.store.users.values() if u.ext_user_id}
        enrolments = 0
        for section in projection.sections.values():
            ext = projection.section_sis_id(section.section_id)
            record = ours.pop(ext, None)
            if section.teacher is None or not section.teacher.email:
                continue  # unmappable: dead-lettered by the handler, nothing to expect
            if record is None:
                report.add("missing_classes", ext)
                continue
            wanted_name = f"{section.course_name} - P{section.period}" if section.period else section.course_name
            if record.class_name != wanted_name:
                report.add("wrong_class_names", f"{ext}: {record.class_name!r} != {wanted_name!r}")
            teachers = {(e.email or "").lower() for e in record.enrollments if e.role == "teacher"}
            if record.email.lower() != section.teacher.email.lower() and section.teacher.email.lower() not in teachers:
                report.add("missing_teachers", f"{ext}: {section.teacher.email}")
            students = [e for e in record.enrollments if e.role == "student"]
            enrolments += len(students)
            seen = Counter(e.ext_person_id for e in students)
            report.problems.setdefault("duplicate_enrollments", []).extend(
                f"{ext}/{p}" for p, n in seen.items() if n > 1)
            wanted = projection.members.get(section.section_id, set())
            for p in sorted(wanted - set(seen)):
                report.add("missing_enrollments", f"{ext}/{p}")
            for e in students:
                person = projection.students.get(e.ext_person_id or "")
                if e.ext_person_id not in wanted:
                    report.add("extra_enrollments", f"{ext}/{e.ext_person_id}")
                elif person is not None and (e.first_name, e.last_name) != (person.first, person.last):
                    report.add("wrong_names", f"{ext}/{e.ext_person_id}: {e.first_name} {e.last_name} != "
                                              f"{person.first} {person.last}")
        for ext in sorted(ours):
            report.add("extra_classes", ext)
        for sis_id, person in projection.staff.items():
            user = users.get(sis_id)
            if user is None:
                report.add("missing_users", sis_id)
            elif user.user_name != f"{person.first} {person.last}" or user.email != person.email:
                report.add("wrong_users", f"{sis_id}: {user.user_name} <{user.email}>")
        report.counts = {"classes": len(projection.sections), "student enrolments": enrolments,
                         "staff users": len(projection.staff)}
    return report
