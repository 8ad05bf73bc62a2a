"""The records behind the seed's own request examples (seed 000:L33-40), so those URLs answer as
documented: users 1 (Smith, ``ssn`` "123-456-7890") and 2 (Jones, ``ssn`` null) and class 1456 with
the assignments "PLOP" (Freeform, 100.0 points) and "XXX" (Quiz, 0.0 points). ``ssn`` is one of the
site's custom fields ("The user info also includes entries for any custom fields", 000:L166).
"""

from __future__ import annotations

from simulators.matrixlms.records import Assignment, Course, User
from simulators.matrixlms.store import SiteStore

EXAMPLE_CLASS_ID = 1456


def load_examples(store: SiteStore, now: float) -> None:
    """Add the example users, class and assignments (ids as in the seed)."""
    store.users[1] = User(id=1, first_name="John", last_name="Smith", userid="jsmith", email="john.smith@example.org",
                          student=True, student_id="S0001", birthdate="2009-04-02", joined_at=now,
                          custom={"ssn": "123-456-7890"})
    store.users[2] = User(id=2, first_name="Mary", last_name="Jones", userid="mjones", email="mary.jones@example.org",
                          student=True, student_id="S0002", birthdate="2009-09-17", joined_at=now, custom={"ssn": None})
    store.classes[EXAMPLE_CLASS_ID] = Course(id=EXAMPLE_CLASS_ID, name="Example Class", style="Instructor",
                                             start="2024-08-26", finish="2025-06-13", created_at=now)
    store.teachers[EXAMPLE_CLASS_ID] = {}
    for name, kind, points in (("PLOP", "Freeform", 100.0), ("XXX", "Quiz", 0.0)):
        assignment_id = store.next_id("assignment", store.assignments)
        store.assignments[assignment_id] = Assignment(id=assignment_id, class_id=EXAMPLE_CLASS_ID, name=name,
                                                      type=kind, points=points, begin=now, end=now + 7 * 86400)
