"""Canvas audit events as edusync publishes them: course events and grade changes.

These are edusync's own contracts, not the client's models (``tests/test_contracts.py`` keeps
``schemas/`` free of ``worker`` imports): ids are strings, times UTC, and fields Canvas may leave
out are nullable. Subjects (the Kafka key, DESIGN "Kafka layout"):
- course events ``<tenant>/course/<canvas course id>``: every change to one course in one
  partition, in order;
- grade changes ``<tenant>/grade/<course>/<assignment>/<student>`` (``anonymous`` for events
  whose student Canvas hides): one gradebook cell per key.
The CloudEvent id is derived from the Canvas event id, so re-reading a window republishes nothing new.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

COURSE_EVENT = "edusync.canvas.course.event.v1"
GRADE_CHANGED = "edusync.canvas.grade.changed.v1"
ANONYMOUS_STUDENT = "anonymous"


class CanvasCourseEventV1(BaseModel):
    """One entry of the Canvas course audit log (seed 002:L1920-2208; canvas.md §2.2, §6.3)."""

    account_id: str = Field(description="the account whose feed the event was read from")
    event_id: str = Field(description="Canvas's id of the audit event (a UUID)")
    created_at: datetime
    event_type: str = Field(
        description="created, updated, concluded, unconcluded, published, unpublished, deleted, restored, "
        "reset_from, reset_to, copied_from, copied_to; unknown values are kept")
    event_source: str | None = Field(None, description="manual, api or sis (api means any API client)")
    course_id: str
    user_id: str | None = Field(None, description="the Canvas user who made the change")
    sis_batch_id: str | None = Field(None, description="the SIS import that made the change, if one did")
    related_courses: dict[str, str] = Field(
        default_factory=dict, description="the other course of copy and reset events: copied_from, copied_to, "
        "reset_from, reset_to (a reset gives the course a new id)")
    event_data: dict[str, Any] = Field(
        default_factory=dict, description="created: [null, new] pairs plus created_source; updated: [old, new] "
        "pairs of the changed fields only; other types: empty")
    course_sis_id: str | None = Field(
        None, description="a hint from the feed's secondary collection, which is never complete: when null, "
        "fetch the course (GET /api/v1/courses/:id?include[]=all_courses)")


class CanvasGradeChangedV1(BaseModel):
    """One entry of the Canvas Grade Change Log (canvas.md App. A.1; NOT IN SEEDS, Canvas's public
    API documentation). Grades are strings in the assignment's grading scheme; there is no score."""

    event_id: str = Field(description="Canvas's id of the audit event (a UUID)")
    created_at: datetime
    event_type: str = "grade_change"
    course_id: str
    assignment_id: str
    student_id: str | None = Field(None, description="null when Canvas hides the student (anonymous grading)")
    anonymous: bool = Field(description="true when the event names no student: it cannot be mapped to a gradebook cell")
    grader_id: str | None = None
    grade_before: str | None = None
    grade_after: str | None = None
    excused_before: bool | None = None
    excused_after: bool | None = None
    points_possible_before: float | None = None
    points_possible_after: float | None = None
    graded_anonymously: bool | None = None
    version_number: int | None = None
    request_id: str | None = Field(
        None, description="the X-Request-Context-Id of the request that made the change: equal to the id "
        "edusync's own write was answered with, the exact echo key (FLOWS.md 3.1)")
    student_sis_id: str | None = Field(
        None, description="a hint from the feed's secondary collection of users, which is never complete")


EVENT_TYPES: dict[str, type[BaseModel]] = {COURSE_EVENT: CanvasCourseEventV1, GRADE_CHANGED: CanvasGradeChangedV1}
