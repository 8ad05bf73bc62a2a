"""A seeded MatrixLMS district: students, staff, classes, members, assignments and grades.

The shape follows FLOWS.md section 5 (20,000 students: 800 staff, 1,836 sections of 30 students):
``size`` students, ``size // 25`` staff and ``size * 1836 / 20000`` classes by default. Class names
are "<course> - P<period>", so many classes share a name, as 1,360 of 1,836 sections do in the
bench district (FLOWS 2.5 trap 2). Exactly ``twins`` pairs of students share first name, last
name and birth date (19 pairs at 20,000, as in FLOWS section 5); no other student does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.matrixlms.records import Assignment, Course, Enrollment, Grade, User
from simulators.matrixlms.render import GRADEMAP
from simulators.matrixlms.store import SiteStore

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia", "Mateo",
    "Amelia", "Benjamin", "Harper", "Levi", "Evelyn", "Henry", "Luna", "Ethan", "Camila", "Daniel", "Maya",
    "Omar", "Priya", "Wei", "Yuki", "Kofi", "Ana", "Diego", "Fatima", "Ravi",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Nguyen",
)
COURSES = (
    ("Algebra I", "MATH101"), ("Geometry", "MATH201"), ("Biology", "SCI110"), ("Chemistry", "SCI210"),
    ("English 9", "ENG090"), ("English 10", "ENG100"), ("World History", "HIS110"), ("US History", "HIS210"),
    ("Physics", "SCI310"), ("Spanish I", "LAN101"), ("Art", "ART100"), ("Computer Science", "CSC100"),
)
ASSIGNMENT_KINDS = (("Quiz", 20.0), ("Freeform", 100.0), ("Offline", 50.0), ("Discussion", 10.0))


@dataclass(frozen=True)
class SeedSpec:
    """What to generate; ``seed`` makes it reproducible."""

    size: int = 100
    staff: int | None = None
    classes: int | None = None
    students_per_class: int = 30
    assignments_per_class: int = 3
    graded_share: float = 0.5
    twins: int | None = None
    seed: int = 1

    def resolved(self) -> tuple[int, int, int]:
        """(staff, classes, twin pairs) with the size-proportional defaults."""
        staff = self.staff if self.staff is not None else max(1, self.size // 25)
        classes = self.classes if self.classes is not None else max(1, round(self.size * 1836 / 20000))
        twins = self.twins if self.twins is not None else round(self.size * 19 / 20000)
        return staff, classes, min(twins, self.size // 2)


def _birthdate(rng: random.Random) -> str:
    return f"{rng.randint(2006, 2019):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def generate(store: SiteStore, spec: SeedSpec, now: float) -> None:
    """Add a generated district to ``store`` (ids continue after anything already there)."""
    rng = random.Random(spec.seed)
    staff_count, class_count, twins = spec.resolved()
    identities: set[tuple[str, str, str]] = set()
    students: list[User] = []
    for n in range(spec.size - twins):
        while True:
            identity = (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), _birthdate(rng))
            if identity not in identities:  # only the planted twins may share name + birth date
                identities.add(identity)
                break
        students.append(_student(store, n, identity, now))
    for n, original in enumerate(rng.sample(students, twins) if twins else []):
        identity = (original.first_name or "", original.last_name or "", original.birthdate or "")
        students.append(_student(store, spec.size - twins + n, identity, now))
    teachers = [_teacher(store, rng, n, now) for n in range(staff_count)]
    for n in range(class_count):
        _class(store, rng, spec, n, students, teachers, now)


def _student(store: SiteStore, n: int, identity: tuple[str, str, str], now: float) -> User:
    first, last, born = identity
    number = 100_000 + n
    user = User(id=store.next_id("user", store.users), first_name=first, last_name=last, userid=f"s{number}",
                email=f"{first}.{last}.{number}@students.example.org".lower(), student=True,
                student_id=str(number), birthdate=born, year_of_graduation=str(int(born[:4]) + 18),
                joined_at=now, custom={"ssn": None})
    store.users[user.id] = user
    return user


def _teacher(store: SiteStore, rng: random.Random, n: int, now: float) -> User:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    user = User(id=store.next_id("user", store.users), first_name=first, last_name=last, userid=f"t{5000 + n}",
                email=f"{first}.{last}.{5000 + n}@staff.example.org".lower(), teacher=True,
                teacher_id=f"T{5000 + n}", joined_at=now, custom={"ssn": None})
    store.users[user.id] = user
    return user


def _class(store: SiteStore, rng: random.Random, spec: SeedSpec, n: int, students: list[User],
           teachers: list[User], now: float) -> None:
    course_name, code = COURSES[n % len(COURSES)]
    course = Course(id=store.next_id("class", store.classes), name=f"{course_name} - P{rng.randint(1, 7)}",
                    style="Instructor", start="2024-08-26", finish="2025-06-13", course_code=code,
                    section_code=f"{code}-{n + 1:04d}", semester="2024-2025", created_at=now)
    store.classes[course.id] = course
    store.teachers[course.id] = {teachers[n % len(teachers)].id: False}
    members = rng.sample(students, min(spec.students_per_class, len(students)))
    for user in members:
        store.enrollments[(course.id, user.id)] = Enrollment(course.id, user.id, now, store.admin_id)
    graded = round(spec.assignments_per_class * spec.graded_share)
    for k in range(spec.assignments_per_class):
        kind, points = ASSIGNMENT_KINDS[k % len(ASSIGNMENT_KINDS)]
        assignment = Assignment(id=store.next_id("assignment", store.assignments), class_id=course.id,
                                name=f"{kind} {k + 1}", type=kind, points=points, begin=now, end=now + 7 * 86400)
        store.assignments[assignment.id] = assignment
        if k < graded:
            for user in members:
                letter, minimum = GRADEMAP[rng.randrange(len(GRADEMAP))]
                store.grades[(assignment.id, user.id)] = Grade(letter, minimum, round(minimum * points / 100, 2),
                                                               now, teachers[n % len(teachers)].id)
