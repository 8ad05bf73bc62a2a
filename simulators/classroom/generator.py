"""A seeded Class organisation: ``size`` students spread over classes of 30, taught by
``size // 25`` staff who are also Class users (the FLOWS.md section 5 shape: 1,836 classes and
55,080 enrollments at 20,000 students). ``ext_class_id`` is ``seed-section-<n>`` and
``ext_person_id`` the student number, as a roster sync would set them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.classroom.records import ClassRecord, Enrollment, Template, UserRecord
from simulators.classroom.render import iso_now
from simulators.classroom.store import ClassStore

FIRST_NAMES = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Mateo", "Priya",
               "Wei", "Yuki", "Kofi", "Ana", "Diego", "Fatima", "Ravi")
LAST_NAMES = ("Smith", "Johnson", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Anderson", "Taylor", "Lee",
              "Nguyen", "Clark", "Lewis", "Walker", "Young", "King")
COURSES = ("Algebra I", "Geometry", "Biology", "Chemistry", "English 9", "World History", "Physics", "Art")


@dataclass(frozen=True)
class SeedSpec:
    """What to generate; ``seed`` makes it reproducible."""

    size: int = 100
    students_per_class: int = 30
    seed: int = 1


def generate(store: ClassStore, spec: SeedSpec) -> None:
    """Add the generated organisation to ``store``."""
    rng = random.Random(spec.seed)
    now = iso_now()
    staff = []
    for n in range(max(1, spec.size // 25)):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        user = UserRecord(store.ids.next("user"), f"staff-{5000 + n}", f"{first}.{last}.{5000 + n}@staff.example.org"
                          .lower(), f"{first} {last}", ["instructor"])
        store.users[user.id] = user
        staff.append((first, last, user))
    students = [(str(100_000 + n), rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)) for n in range(spec.size)]
    for n in range(max(1, round(spec.size * 1836 / 20000))):
        first, last, teacher = staff[n % len(staff)]
        record = ClassRecord(store.ids.uuid(), f"seed-section-{n + 1}", f"{COURSES[n % len(COURSES)]} - P{n % 7 + 1}",
                             None, store.ids.meeting_id(), f"{first} {last}", None, teacher.email or "",
                             "America/Los_Angeles", now, now)
        record.enrollments.append(Enrollment(store.ids.uuid(), record.meeting_id, first, last, teacher.email,
                                             teacher.ext_user_id, "teacher", created_at=now))
        for number, s_first, s_last in rng.sample(students, min(spec.students_per_class, len(students))):
            record.enrollments.append(Enrollment(store.ids.uuid(), record.meeting_id, s_first, s_last,
                                                 f"{s_first}.{s_last}.{number}@students.example.org".lower(), number,
                                                 created_at=now))
        store.classes[record.class_id] = record
    for name, status in (("Standard class", "published"), ("Draft layout", "draft")):
        template = Template(store.ids.uuid(), name, f"{name} template", status)
        store.templates[template.template_id] = template
