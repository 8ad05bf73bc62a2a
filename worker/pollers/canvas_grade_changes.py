"""The Canvas Grade Change Log of configured courses as events on ``edusync.canvas.grade-changes``.

There is no account-wide grade feed (FLOWS.md 2.2): each course is its own feed,
``GET /api/v1/audit/grade_change/courses/:course_id`` (NOT IN SEEDS; canvas.md App. A.1), with its
own cursor record (``canvas_feed_cursors``). One poll handles one window of one course
(``canvas_audit_window``) and commits its events with that course's record. Courses are visited
in configured order; a course still catching up (a long first look-back) keeps the turn until it
is level, then the next one follows at once. After the last course the poller rests one interval.
An idle cycle therefore costs one request per course: 200 courses, 200 requests.

Subject (the Kafka key): ``<tenant>/grade/<course>/<assignment>/<student>`` (DESIGN:
"tenant/course/assignment/student"), ``anonymous`` in place of the student Canvas hides. Frame
cursor (key ``<tenant>/canvas.grade_changes``): ``{"seq": n, "next": "<course to poll next>"}``;
course records under ``<tenant>/canvas.grade_changes/<course>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.canvas import ANONYMOUS_STUDENT, GRADE_CHANGED, CanvasGradeChangedV1
from schemas.envelope import CloudEvent, make_event
from worker.clients.canvas import CanvasClient
from worker.clients.canvas_audit_models import GradeChangeEvent
from worker.clients.canvas_types import canvas_time
from worker.poller_frame import Outbound, PollResult
from worker.pollers.canvas_audit_window import FeedCursor, WindowSettings, walk_window
from worker.pollers.canvas_feed_cursors import FeedCursorStore
from worker.topics import CANVAS_GRADE_CHANGES

POLLER_NAME = "canvas.grade_changes"


def grade_subject(tenant: str, course_id: str, assignment_id: str, student_id: str | None) -> str:
    """The entity key of one gradebook cell's events."""
    return f"{tenant}/grade/{course_id}/{assignment_id}/{student_id or ANONYMOUS_STUDENT}"


class RotationCursor(BaseModel):
    """The frame's cursor: a sequence number (commit check) and the course whose turn it is."""

    model_config = ConfigDict(extra="ignore")

    seq: int = 0
    next: str | None = None


class CanvasGradeChangesPoller:
    """One window of one course's grade-change log per poll, the courses in turn."""

    name = POLLER_NAME

    def __init__(
        self, tenant: str, courses: Sequence[str], client: CanvasClient, settings: WindowSettings,
        store: FeedCursorStore, *, source: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not courses:
            raise ValueError("no courses to follow")
        if len(set(courses)) != len(courses):
            raise ValueError("a course is listed twice")
        self.tenant = tenant
        self.courses = list(courses)
        self.client = client
        self.settings = settings
        self.store = store
        self.source = source
        self.clock = clock

    async def poll(self, cursor: Any) -> PollResult:
        """Walk the next window of the course whose turn it is."""
        rotation = RotationCursor.model_validate(cursor or {})
        await self.store.sync(rotation.seq if cursor is not None else None)
        course = rotation.next if rotation.next in self.courses else self.courses[0]
        index = self.courses.index(course)
        feed = FeedCursor.load(self.store.get(course))
        walked = await walk_window(
            feed, self.clock(), self.settings, feed=f"{self.tenant}/{POLLER_NAME}/{course}",
            fetch=lambda start, end: self.client.grade_changes_for_course(course, start, end),
        )
        events: list[Outbound] = []
        state = []
        caught_up = True
        newest = feed.hwm
        if walked is not None:
            users = walked.linked("users")
            events = [Outbound(CANVAS_GRADE_CHANGES, self._event(e, users)) for e in walked.events]
            state.append(self.store.write(course, walked.cursor.dump()))
            caught_up = walked.caught_up
            newest = walked.cursor.hwm
        if caught_up:
            following = self.courses[(index + 1) % len(self.courses)]
            more = index + 1 < len(self.courses)  # the cycle ends with the last course
        else:
            following, more = course, True
        seq = rotation.seq + 1
        self.store.returned(seq)
        return PollResult(events=events, cursor=RotationCursor(seq=seq, next=following).model_dump(), more=more,
                          newest_time=newest, state=state)

    def _event(self, event: GradeChangeEvent, users: dict[str, dict[str, Any]]) -> CloudEvent:
        links = event.links
        student = links.student
        sis_id = users.get(student, {}).get("sis_user_id") if student is not None else None
        payload = CanvasGradeChangedV1(
            event_id=event.id, created_at=event.created_at, event_type=event.event_type, course_id=links.course,
            assignment_id=links.assignment, student_id=student, anonymous=student is None, grader_id=links.grader,
            grade_before=event.grade_before, grade_after=event.grade_after, excused_before=event.excused_before,
            excused_after=event.excused_after, points_possible_before=event.points_possible_before,
            points_possible_after=event.points_possible_after, graded_anonymously=event.graded_anonymously,
            version_number=event.version_number, request_id=event.request_id,
            student_sis_id=sis_id if isinstance(sis_id, str) and sis_id else None,
        )
        return make_event(
            tenant=self.tenant, source=self.source, type=GRADE_CHANGED,
            subject=grade_subject(self.tenant, links.course, links.assignment, student), version=event.id,
            data=payload, time=event.created_at, upstreamcursor=canvas_time(event.created_at),
        )
