"""The records behind the seed's own examples (seed 001), so its requests get its responses:
classes "demo-1" and "demo-2" (L41-62, L274-330), the demo-1 roster of Anne Malley (teacher) and
Francisco Beck (L580-615) and users 1 (John Smith) and 2 (Jane Smith) (L1275-1305).
"""

from __future__ import annotations

from simulators.classroom.records import ClassRecord, Enrollment, UserRecord
from simulators.classroom.store import ClassStore

DEMO_CLASS_ID = "01cceb4b-afce-4703-a842-6b41fad111b5"
OTHER_CLASS_ID = "a1cceb4b-afce-4703-a842-6b41fad111b5"
CREATED = "2023-03-03T14:48:06.312Z"


def load_examples(store: ClassStore) -> None:
    """Add the example classes, roster and users with the seed's ids."""
    demo = ClassRecord(DEMO_CLASS_ID, "demo-1", "Demo Class", "A demonstration of Class", "92117646134",
                       "Anne Malley", "a1demo", "anne.malley@demo.com", "America/Los_Angeles", CREATED, CREATED)
    # The seed's roster example shows meeting_id "8456209194", not the class's; kept verbatim.
    demo.enrollments = [
        Enrollment("20cc140a-3462-4950-9ab7-c826fbf2376e", "8456209194", "Anne", "Malley", "anne.malley@demo.com",
                   "a.malley", "teacher", created_at=CREATED),
        Enrollment("abcc140a-3462-4950-9ab7-c826fbf2376f", "8456209194", "Francisco", "Beck",
                   "francisco.beck@demo.com", "f.beck", "student", created_at=CREATED),
    ]
    other = ClassRecord(OTHER_CLASS_ID, "demo-2", "Another Demo Class", "Another demonstration of Class",
                        "92117646135", "James Lloyd", "demob2", "james.lloyd@demo.com", "America/Los_Angeles",
                        CREATED, CREATED)
    other.enrollments = [Enrollment("30cc140a-3462-4950-9ab7-c826fbf2376e", "92117646135", "James", "Lloyd",
                                    "james.lloyd@demo.com", None, "teacher", created_at=CREATED)]
    store.classes[demo.class_id] = demo
    store.classes[other.class_id] = other
    store.users[1] = UserRecord(1, None, "john@mail.com", "John Smith", ["instructor"], is_zoom_configured=True)
    store.users[2] = UserRecord(2, "555", "jane@mail.com", "Jane Smith", ["instructor"])
    store.ids.bump("user", 2)
