"""Does Canvas hold exactly Illuminate's roster? Read from the Canvas simulator's own state.

Expected, from the projection (FLOWS.md section 4): every student and staff member a user whose
login carries the SIS id (district id; staff ``district_user_id`` else ``staff-<user_id>``) with
"First Last" and "Last, First" as names; each section's term ``<prefix>-term-<id>`` with its name
and dates; one course per section (``<prefix>-course-<section>``, named like the section) or per
course and term (``<prefix>-course-<course>-term-<term>``, named after the course) in that term;
each section ``<prefix>-section-<id>`` in its course, named "<course> - P<period>"; its active
students actively enrolled as students, its teacher as teacher, nobody else active; a dropped
row's enrolment, if there is one, concluded (not deleted).

And what must never be: a Canvas object without its SIS id (users, terms, courses, sections other
than the Default Term), two objects for one SIS id, two enrolments of one user in one section
with one type, or one SIS id created twice (the simulator's create counts). Users edusync keeps
after Illuminate deleted the person are not extra.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from simulators.canvas import CanvasSimulator
from simulators.canvas.course_store import DELETED as COURSE_DELETED
from simulators.canvas.section_store import ACTIVE as SECTION_ACTIVE
from simulators.canvas.user_store import ACTIVE as LOGIN_ACTIVE
from simulators.roster_projection import Person, RosterProjection, RosterReport, Section


def _section_name(section: Section) -> str:
    return f"{section.course_name} - P{section.period}" if section.period else section.course_name


def _course(projection: RosterProjection, section: Section, model: str) -> tuple[str, str]:
    """(SIS id, name) of the Canvas course ``section`` belongs to."""
    if model == "section":
        return f"{projection.prefix}-course-{section.section_id}", _section_name(section)
    return f"{projection.prefix}-course-{section.course_id}-term-{section.term_id}", section.course_name


def compare_canvas(projection: RosterProjection, sim: CanvasSimulator, *, course_model: str = "section",
                   account_root: int = 1) -> RosterReport:
    """The differences between ``sim``'s root account ``account_root`` and ``projection``."""
    report = RosterReport(f"canvas ({course_model})")
    with sim.lock:
        _people(report, projection, sim, account_root)
        terms = _terms(report, projection, sim, account_root)
        sections = _courses_and_sections(report, projection, sim, course_model, terms)
        _enrollments(report, projection, sim, sections)
    return report


def _people(report: RosterReport, projection: RosterProjection, sim: CanvasSimulator, root: int) -> None:
    by_sis: dict[str, list[int]] = defaultdict(list)
    for user in sim.users.users.values():
        if not user.login_ids:
            continue  # a token owner, not made through the API
        logins = [lg for lg in sim.users.logins_of(user) if lg.account_id == root and lg.workflow_state == LOGIN_ACTIVE]
        with_sis = [lg.sis_user_id for lg in logins if lg.sis_user_id]
        if not with_sis:
            report.add("objects_without_sis_id", f"user {user.id} ({user.name})")
        for sis_id in with_sis:
            by_sis[sis_id].append(user.id)
    for sis_id, ids in by_sis.items():
        if len(ids) > 1:
            report.add("duplicate_users", f"{sis_id}: users {ids}")

    def check(person: Person, kind: str) -> None:
        ids = by_sis.get(person.sis_id)
        if not ids:
            report.add("missing_users", f"{kind} {person.sis_id}")
            return
        user = sim.users.users[ids[0]]
        want = (f"{person.first} {person.last}", f"{person.last}, {person.first}")
        if (user.name, user.sortable_name) != want:
            report.add("wrong_names", f"{kind} {person.sis_id}: {user.name!r}/{user.sortable_name!r} != {want}")
        if person.email and (user.email or "").lower() != person.email.lower():
            report.add("wrong_emails", f"{kind} {person.sis_id}: {user.email!r} != {person.email!r}")

    for person in projection.students.values():
        check(person, "student")
    for person in projection.staff.values():
        check(person, "staff")
    report.counts["users"] = len(by_sis)


def _terms(report: RosterReport, projection: RosterProjection, sim: CanvasSimulator, root: int) -> dict[str, int]:
    """Checks the terms; returns Canvas term id by Illuminate term id."""
    live = [t for t in sim.terms.terms.values() if t.root_account_id == root and t.workflow_state == "active"]
    for term in live:
        if not term.is_default and not term.sis_term_id:
            report.add("objects_without_sis_id", f"term {term.id} ({term.name})")
    seen = Counter(t.sis_term_id for t in live if t.sis_term_id)
    report.problems.setdefault("duplicate_terms", []).extend(s for s, n in seen.items() if n > 1)
    by_sis = {t.sis_term_id: t for t in live if t.sis_term_id}
    out: dict[str, int] = {}
    for term_id in sorted({s.term_id for s in projection.sections.values() if s.term_id}):
        wanted = projection.terms.get(term_id)
        record = by_sis.get(f"{projection.prefix}-term-{term_id}")
        if record is None or wanted is None:
            report.add("missing_terms", f"{projection.prefix}-term-{term_id}")
            continue
        out[term_id] = record.id
        got = (record.name, (record.start_at or "")[:10] or None, (record.end_at or "")[:10] or None)
        if got != (wanted.name, wanted.start, wanted.end):
            report.add("wrong_terms", f"{record.sis_term_id}: {got} != {(wanted.name, wanted.start, wanted.end)}")
    report.counts["terms"] = len(out)
    return out


def _courses_and_sections(report: RosterReport, projection: RosterProjection, sim: CanvasSimulator, model: str,
                          terms: dict[str, int]) -> dict[str, int]:
    """Checks courses and sections; returns Canvas section id by Illuminate section id."""
    courses = [c for c in sim.courses.courses.values() if c.workflow_state != COURSE_DELETED]
    sections = [s for s in sim.sections.sections.values() if s.workflow_state == SECTION_ACTIVE]
    for made in courses:
        if not made.sis_course_id:
            report.add("objects_without_sis_id", f"course {made.id} ({made.name})")
    for record in sections:
        if not record.sis_section_id:
            report.add("objects_without_sis_id", f"section {record.id} ({record.name})")
    for kind, ids in (("duplicate_courses", Counter(c.sis_course_id for c in courses if c.sis_course_id)),
                      ("duplicate_sections", Counter(s.sis_section_id for s in sections if s.sis_section_id))):
        report.problems.setdefault(kind, []).extend(sorted(str(i) for i, n in ids.items() if n > 1))
    course_by_sis = {c.sis_course_id: c for c in courses if c.sis_course_id}
    section_by_sis = {s.sis_section_id: s for s in sections if s.sis_section_id}
    wanted_courses: set[str] = set()
    out: dict[str, int] = {}
    for section in projection.sections.values():
        course_sis, course_name = _course(projection, section, model)
        wanted_courses.add(course_sis)
        course = course_by_sis.get(course_sis)
        if course is None:
            report.add("missing_courses", course_sis)
        elif course.name != course_name:
            report.add("wrong_courses", f"{course_sis}: {course.name!r} != {course_name!r}")
        elif section.term_id in terms and course.enrollment_term_id != terms[section.term_id]:
            report.add("wrong_courses", f"{course_sis}: term {course.enrollment_term_id} != {terms[section.term_id]}")
        sis_id = projection.section_sis_id(section.section_id)
        found = section_by_sis.pop(sis_id, None)
        if found is None:
            report.add("missing_sections", sis_id)
            continue
        out[section.section_id] = found.id
        if course is not None and found.course_id != course.id:
            report.add("sections_in_wrong_course", f"{sis_id}: course {found.course_id} != {course.id}")
        if found.name != _section_name(section):
            report.add("wrong_sections", f"{sis_id}: {found.name!r} != {_section_name(section)!r}")
    marker = f"{projection.prefix}-"
    report.problems.setdefault("extra_sections", []).extend(sorted(s for s in section_by_sis if s.startswith(marker)))
    report.problems.setdefault("extra_courses", []).extend(
        sorted(c for c in course_by_sis if c.startswith(marker) and c not in wanted_courses))
    report.counts["courses"] = len(wanted_courses)
    report.counts["sections"] = len(out)
    return out


def _enrollments(report: RosterReport, projection: RosterProjection, sim: CanvasSimulator,
                 sections: dict[str, int]) -> None:
    sis_of: dict[int, str | None] = {}
    for user in sim.users.users.values():
        login = sim.users.primary_login(user)
        sis_of[user.id] = login.sis_user_id if login else None
    by_section: dict[int, list[tuple[str | None, str, str]]] = defaultdict(list)
    seen: Counter[tuple[int, int, str]] = Counter()
    for e in sim.enrollments.enrollments.values():
        if e.enrollment_state != "deleted":
            seen[(e.user_id, e.course_section_id, e.type)] += 1
        by_section[e.course_section_id].append((sis_of.get(e.user_id), e.type, e.enrollment_state))
    report.problems.setdefault("duplicate_enrollments", []).extend(
        f"user {u} section {s} {t}" for (u, s, t), n in seen.items() if n > 1)
    active = concluded = teachers = 0
    for section in projection.sections.values():
        canvas_id = sections.get(section.section_id)
        if canvas_id is None:
            continue  # reported as a missing section
        sis_id = projection.section_sis_id(section.section_id)
        rows = by_section.get(canvas_id, [])
        students = {p for p, kind, state in rows if kind == "StudentEnrollment" and state == "active"}
        wanted = projection.members.get(section.section_id, set())
        active += len(students)
        concluded += sum(1 for _, kind, state in rows if kind == "StudentEnrollment" and state == "completed")
        for person in sorted(wanted - students, key=str):
            report.add("missing_enrollments", f"{sis_id}/{person}")
        for extra in sorted(students - wanted, key=str):
            report.add("extra_active_enrollments", f"{sis_id}/{extra}")
        dropped = projection.dropped.get(section.section_id, set())
        for who, kind, state in rows:
            if kind == "StudentEnrollment" and who in dropped and state not in ("completed", "active"):
                report.add("dropped_not_concluded", f"{sis_id}/{who}: {state}")
        if section.teacher is None:
            continue  # the section names a teacher Illuminate no longer has: nothing to expect
        taught = {p for p, kind, state in rows if kind == "TeacherEnrollment" and state == "active"}
        teachers += len(taught)
        if section.teacher.sis_id not in taught:
            report.add("missing_teachers", f"{sis_id}/{section.teacher.sis_id}")
        for other in sorted(taught - {section.teacher.sis_id}, key=str):
            report.add("extra_teachers", f"{sis_id}/{other}")
    duplicates = sim.stats.snapshot()["duplicate_vendor_guids"]
    for entity in ("user", "term", "course", "section"):
        for sis_id in duplicates.get(entity, []):
            report.add("created_twice", f"{entity} {sis_id}")
    report.counts.update({"active student enrolments": active, "concluded student enrolments": concluded,
                          "teacher enrolments": teachers})
