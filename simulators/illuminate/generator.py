"""Seeded generation of a district: sites, staff, students, courses, sections, rosters,
enrolments, assessments and scores. 200,000 students take a few seconds."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from simulators.illuminate.state import (
    AssessmentRec,
    CourseRec,
    District,
    EnrollmentRec,
    RosterVal,
    ScoreRec,
    SectionRec,
    SiteRec,
    StudentRec,
    TermRec,
    UserRec,
    pack,
)

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mateo", "Amelia", "Benjamin", "Harper", "Levi", "Evelyn", "Henry", "Luna", "Ethan",
    "Camila", "Daniel", "Gianna", "Michael", "Aria", "Sebastian", "Ella", "Jack", "Nora", "Aiden",
    "Maya", "Omar", "Priya", "Wei", "Yuki", "Kofi", "Ana", "Diego", "Fatima", "Ravi",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Nguyen", "Hill",
    "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
)
MIDDLE_INITIALS = tuple("ABCDEFGHJKLMNPRSTW")
SUBJECTS = ((1, "English Language Arts"), (2, "Mathematics"), (3, "Science"), (4, "History"))
COURSE_NAMES = (
    "Algebra I", "Geometry", "Biology", "Chemistry", "English 9", "English 10", "World History",
    "US History", "Physics", "Spanish I", "Art", "Music", "Physical Education", "Computer Science",
    "Reading", "Writing", "Math", "Science", "Social Studies", "Health",
)
GROUP_NAMES = ("Reading Comprehension", "Vocabulary", "Number Sense", "Problem Solving", "Writing Process")
PERIODS = ("1", "2", "3", "4", "5", "6", "All Day")
SITE_TYPES = (("Elementary", 1, 7), ("Middle", 7, 10), ("High Schools", 10, 14))
SCHOOL_SUFFIX = {"Elementary": "Elementary School", "Middle": "Middle School", "High Schools": "High School"}
GROUPS_PER_ASSESSMENT = 2
STANDARDS_PER_ASSESSMENT = 3


@dataclass(frozen=True)
class SeedSpec:
    """What to generate; ``seed`` makes it reproducible."""

    sites: int = 3
    students: int = 100
    staff: int = 20
    courses: int = 10
    sections_per_course: int = 2
    students_per_section: int = 20
    assessments: int = 3
    seed: int = 1


def birth_date(rng: random.Random, academic_year: int, grade_level_id: int) -> str:
    """A plausible birth date: grade level id 1 is kindergarten (about 5 years old)."""
    year = academic_year - 6 - (grade_level_id - 1)
    return f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def make_student(d: District, rng: random.Random, site: SiteRec, entry_date: str) -> StudentRec:
    """A new student at ``site`` with the next free ids."""
    sid = d.next_id("student")
    grade = rng.randint(site.start_grade_level_id, site.end_grade_level_id)
    return StudentRec(
        sid, sid + 400_000, 1_000_000_000 + sid, rng.choice(FIRST_NAMES), rng.choice(MIDDLE_INITIALS),
        rng.choice(LAST_NAMES), birth_date(rng, d.academic_year, grade), rng.choice("FM"), site.site_id,
        grade, entry_date, entry_date, None,
    )


def make_user(d: District, rng: random.Random, site_id: int, hire_date: str) -> UserRec:
    """A new teacher at ``site_id``."""
    uid = d.next_id("user")
    return UserRec(
        uid, f"E{uid}", 700_000 + uid, rng.choice(FIRST_NAMES), rng.choice(MIDDLE_INITIALS),
        rng.choice(LAST_NAMES), birth_date(rng, rng.randint(1961, 2004), 1), rng.choice("FM"), site_id,
        "Teacher", hire_date, None, True,
    )


def score_points(rng: random.Random, items: int) -> int:
    """A total score, roughly bell-shaped around 65 %."""
    return max(0, min(items, round(rng.gauss(0.65, 0.2) * items)))


def generate(spec: SeedSpec, d: District) -> None:
    """Fill the empty district ``d`` according to ``spec``."""
    rng = random.Random(spec.seed)
    d.next_ids.update(site=2, term=100, user=10_000, student=100_000, course=2_000, section=30_000,
                      assessment=7_000)
    start, end = d.session_start, d.session_end
    schools = _sites(d, spec.sites)
    site_ids = [s.site_id for s in schools]

    d.terms.load({
        100 + s.site_id: TermRec(100 + s.site_id, s.site_id, "Yearlong", 1, start, end, d.academic_year)
        for s in schools
    })

    users: dict[int, UserRec] = {}
    for i in range(spec.staff):
        hire = f"{rng.randint(1995, d.academic_year - 1)}-08-{rng.randint(1, 28):02d}"
        user = make_user(d, rng, site_ids[i % len(site_ids)], hire)
        users[user.user_id] = user
    d.users.load(users)
    staff_by_site: dict[int, list[int]] = {s: [] for s in site_ids}
    for user in users.values():
        staff_by_site[user.site_id].append(user.user_id)

    students: dict[int, StudentRec] = {}
    enrollments: dict[tuple[int, int, str], EnrollmentRec] = {}
    by_site: dict[int, list[int]] = {s: [] for s in site_ids}
    for i in range(spec.students):
        site = schools[i % len(schools)]
        student = make_student(d, rng, site, start)
        homeroom = staff_by_site[site.site_id]
        student.homeroom_user_id = homeroom[i % len(homeroom)] if homeroom else None
        students[student.student_id] = student
        by_site[site.site_id].append(student.student_id)
        enrollments[(student.student_id, site.site_id, start)] = EnrollmentRec(
            student.student_id, site.site_id, start, end, student.grade_level_id, None
        )
    d.students.load(students)
    d.enrollments.load(enrollments)
    d.by_district_id = {s.district_student_id: s.student_id for s in students.values()}

    _courses_and_sections(d, rng, spec, schools, staff_by_site, by_site)
    _assessments_and_scores(d, rng, spec, schools, users, by_site)
    d.touch()


def _sites(d: District, count: int) -> list[SiteRec]:
    sites = {1: SiteRec(1, "Edusync Unified School District", 1, "District", 12_340_100_000_000, "000",
                        1, 14)}
    schools: list[SiteRec] = []
    for i in range(count):
        sid = d.next_id("site")
        kind, lo, hi = SITE_TYPES[i % len(SITE_TYPES)]
        name = f"{LAST_NAMES[i % len(LAST_NAMES)]} {SCHOOL_SUFFIX[kind]}"
        # Some schools have no local code: `local_site_code` is nullable (ref L3475).
        code = f"{sid:03d}" if i % 4 else None
        school = SiteRec(sid, name, 1, kind, 12_340_256_123_000 + sid, code, lo, hi)
        sites[sid] = school
        schools.append(school)
    if not schools:
        raise ValueError("a district needs at least one school site")
    d.sites.load(sites)
    return schools


def _courses_and_sections(
    d: District, rng: random.Random, spec: SeedSpec, schools: list[SiteRec],
    staff_by_site: dict[int, list[int]], by_site: dict[int, list[int]],
) -> None:
    courses: dict[int, CourseRec] = {}
    sections: dict[int, SectionRec] = {}
    roster: dict[int, RosterVal] = {}
    start, end = d.session_start, d.session_end
    for i in range(spec.courses):
        cid = d.next_id("course")
        name = COURSE_NAMES[i % len(COURSE_NAMES)]
        home = schools[i % len(schools)]
        offered = (home.site_id,) if rng.random() < 0.8 or len(schools) == 1 else tuple(
            sorted({home.site_id, rng.choice(schools).site_id})
        )
        courses[cid] = CourseRec(cid, 5_000 + i, name if i < len(COURSE_NAMES) else f"{name} {i}",
                                 name[:12].upper(), name.split()[0], offered, home.start_grade_level_id,
                                 home.end_grade_level_id, True)
        for n in range(spec.sections_per_course):
            site_id = offered[n % len(offered)]
            teachers = staff_by_site.get(site_id) or [u for v in staff_by_site.values() for u in v]
            if not teachers:
                continue
            sec_id = d.next_id("section")
            sections[sec_id] = SectionRec(
                sec_id, f"S{sec_id}", site_id, 100 + site_id, cid, rng.choice(teachers),
                PERIODS[n % len(PERIODS)], 100 + rng.randint(1, 150), "" if n % 3 else "Homeroom", start, end,
            )
            pool = by_site[site_id]
            for student_id in rng.sample(pool, min(spec.students_per_section, len(pool))):
                roster[pack(sec_id, student_id)] = (start, end)
    d.courses.load(courses)
    d.sections.load(sections)
    d.roster.load(roster)


def _assessments_and_scores(
    d: District, rng: random.Random, spec: SeedSpec, schools: list[SiteRec], users: dict[int, UserRec],
    by_site: dict[int, list[int]],
) -> None:
    assessments: dict[int, AssessmentRec] = {}
    scores: dict[int, ScoreRec] = {}
    authors = sorted(users) or [0]
    clock = d.clock
    for i in range(spec.assessments):
        aid = d.next_id("assessment")
        assessments[aid] = make_assessment(rng, aid, schools[i % len(schools)], authors, d.academic_year)
        rec = assessments[aid]
        for student_id in by_site[rec.site_id]:
            if rng.random() < 0.8:
                taken = (clock.fromordinal(clock.toordinal() - rng.randint(1, 30))).isoformat()
                scores[pack(aid, student_id)] = ScoreRec(
                    score_points(rng, rec.items), 1 + (student_id % 2), taken, taken
                )
    d.assessments.load(assessments)
    d.scores.load(scores)


def make_assessment(
    rng: random.Random, aid: int, site: SiteRec, authors: list[int], academic_year: int,
) -> AssessmentRec:
    """An assessment given at ``site`` with two reporting groups and three standards."""
    subject_id, subject = SUBJECTS[aid % len(SUBJECTS)]
    grades = ", ".join(str(g) for g in range(site.start_grade_level_id, min(site.end_grade_level_id, 13) + 1))
    day, hour, minute = rng.randint(1, 28), rng.randint(7, 18), rng.randint(0, 59)
    created = f"{academic_year - 1}-09-{day:02d} {hour:02d}:{minute:02d}:00"
    groups = tuple(rng.sample(GROUP_NAMES, GROUPS_PER_ASSESSMENT))
    standards = tuple(
        (str(uuid.UUID(int=rng.getrandbits(128))).upper(), f"CCSS.{subject[:3].upper()}.{aid}.{n + 1}",
         f"{subject} standard {n + 1} of assessment {aid}")
        for n in range(STANDARDS_PER_ASSESSMENT)
    )
    return AssessmentRec(
        aid, f"LA{aid}", f"{subject} Benchmark {aid}", subject_id, subject, rng.choice(authors), grades,
        created, created, site.site_id, rng.choice((10, 20, 25, 40)), groups, standards,
    )
