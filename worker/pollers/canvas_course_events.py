"""The Canvas course audit log of one account as change events on ``edusync.canvas.course-events``.

One feed: ``GET /api/v1/audit/course/accounts/:account_id`` covers every course of the account and
its sub-accounts (canvas.md §6.1). Each poll handles one frozen window whole
(``canvas_audit_window``); its events and the cursor commit in one transaction, so a crash re-walks
the window and the deterministic ids keep a re-walk from publishing anything twice.

Subject (the Kafka key): ``<tenant>/course/<course id>`` (DESIGN: "tenant/course id"), so a
course's events keep their order in one partition. Cursor (``edusync._cursors``, key
``<tenant>/canvas.course_events``): ``{"hwm": ..., "seen": [[id, time], ...], "window_seconds": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.canvas import COURSE_EVENT, CanvasCourseEventV1
from schemas.envelope import CloudEvent, make_event
from worker.clients.canvas import CanvasClient
from worker.clients.canvas_audit_models import CourseEvent
from worker.clients.canvas_types import canvas_time
from worker.poller_frame import Outbound, PollResult
from worker.pollers.canvas_audit_window import FeedCursor, WindowSettings, walk_window
from worker.topics import CANVAS_COURSE_EVENTS

POLLER_NAME = "canvas.course_events"


def course_subject(tenant: str, course_id: str) -> str:
    """The entity key of a course's events."""
    return f"{tenant}/course/{course_id}"


class CanvasCourseEventsPoller:
    """One window of the account's course audit log per poll."""

    name = POLLER_NAME

    def __init__(
        self, tenant: str, account_id: str, client: CanvasClient, settings: WindowSettings, *, source: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tenant = tenant
        self.account_id = account_id
        self.client = client
        self.settings = settings
        self.source = source
        self.clock = clock

    async def poll(self, cursor: Any) -> PollResult:
        """Walk the next window; the new cursor ends where the window ends, events or not."""
        feed = FeedCursor.load(cursor)
        walked = await walk_window(
            feed, self.clock(), self.settings, feed=f"{self.tenant}/{POLLER_NAME}",
            fetch=lambda start, end: self.client.course_events_for_account(self.account_id, start, end),
        )
        if walked is None:  # polled again within a second: nothing new is old enough yet
            return PollResult(events=[], cursor=cursor, more=False, newest_time=feed.hwm)
        courses = walked.linked("courses")
        events = [Outbound(CANVAS_COURSE_EVENTS, self._event(e, courses)) for e in walked.events]
        return PollResult(events=events, cursor=walked.cursor.dump(), more=not walked.caught_up,
                          newest_time=walked.cursor.hwm)

    def _event(self, event: CourseEvent, courses: dict[str, dict[str, Any]]) -> CloudEvent:
        course_id = event.links.course
        linked = courses.get(course_id, {})
        sis_id = linked.get("sis_course_id")
        payload = CanvasCourseEventV1(
            account_id=self.account_id, event_id=event.id, created_at=event.created_at, event_type=event.event_type,
            event_source=event.event_source, course_id=course_id, user_id=event.links.user,
            sis_batch_id=event.links.sis_batch, related_courses=event.links.related(), event_data=event.event_data,
            course_sis_id=sis_id if isinstance(sis_id, str) and sis_id else None,
        )
        return make_event(
            tenant=self.tenant, source=self.source, type=COURSE_EVENT, subject=course_subject(self.tenant, course_id),
            version=event.id, data=payload, time=event.created_at, upstreamcursor=canvas_time(event.created_at),
        )

