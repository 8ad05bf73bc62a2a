"""The Canvas audit flow: the course audit log and the Grade Change Log as change events.

Pollers only (the courses and grades flows consume the topics): the account's course events
(``worker/pollers/canvas_course_events.py``) and the grade changes of the configured courses
(``worker/pollers/canvas_grade_changes.py``), both windowed as canvas.md §6.2 describes
(``worker/pollers/canvas_audit_window.py``). Both share the tenant's Canvas client, hence one
token's quota with every other flow using it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from schemas.canvas import EVENT_TYPES
from worker.poller_frame import PollerSpec
from worker.pollers.canvas_audit_window import WindowSettings, canvas_source
from worker.pollers.canvas_course_events import CanvasCourseEventsPoller
from worker.pollers.canvas_feed_cursors import FeedCursorStore
from worker.pollers.canvas_grade_changes import POLLER_NAME as GRADE_POLLER
from worker.pollers.canvas_grade_changes import CanvasGradeChangesPoller
from worker.registry import Flow, FlowSettings, TenantContext
from worker.systems.canvas import CANVAS
from worker.topics import CANVAS_COURSE_EVENTS, CANVAS_GRADE_CHANGES, TopicSpec


class CanvasAuditSettings(FlowSettings):
    """How a tenant's Canvas audit logs are followed (canvas.md §6.2; FLOWS.md 2.1, 2.2)."""

    course_events: bool = Field(True, description="follow the account's course audit log")
    grade_changes: bool = Field(True, description="follow the grade-change log of grade_course_ids")
    account_id: str | None = Field(None, description="the account whose course events are read (default: the "
                                   "Canvas system's account_id); sub-accounts' courses are included")
    grade_course_ids: list[str] = Field(
        default_factory=list, description="Canvas course ids (or sis_course_id:X) whose grade changes to follow; "
        "one request per course per idle cycle, there is no account-wide grade feed")
    lag_seconds: float = Field(120.0, ge=1, description="a window ends this long before now, so it is frozen")
    overlap_seconds: float = Field(600.0, ge=1, description="each window re-reads this much of the previous one")
    initial_lookback_seconds: float = Field(
        86_400.0, ge=1, description="how far back the first walk starts (within Canvas's retention)")
    window_seconds: float = Field(21_600.0, ge=1, description="a long look-back is walked in windows this long")
    max_events_per_window: int = Field(
        10_000, ge=100, description="a window with more events is split (memory and the poll deadline)")
    course_events_interval_seconds: float = Field(30.0, gt=0, description="rest between caught-up polls")
    grade_changes_interval_seconds: float = Field(
        60.0, gt=0, description="rest after a cycle over every course (each course is polled once a cycle)")
    poll_deadline_seconds: float = Field(300.0, gt=0, description="one window, every page of it, at most")

    @field_validator("grade_course_ids")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("empty course id")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("each course may appear once")
        return cleaned

    @model_validator(mode="after")
    def _something_to_follow(self) -> CanvasAuditSettings:
        if not self.course_events and not (self.grade_changes and self.grade_course_ids):
            raise ValueError("nothing to follow: course_events is off and no grade_course_ids are followed")
        return self

    def window(self) -> WindowSettings:
        """The windowing of both feeds."""
        return WindowSettings(
            lag=timedelta(seconds=self.lag_seconds), overlap=timedelta(seconds=self.overlap_seconds),
            lookback=timedelta(seconds=self.initial_lookback_seconds), window=timedelta(seconds=self.window_seconds),
            max_events=self.max_events_per_window,
        )


def _pollers(ctx: TenantContext, settings: CanvasAuditSettings) -> Sequence[PollerSpec]:
    canvas = ctx.settings(CANVAS)
    client = ctx.client(CANVAS)
    source = canvas_source(canvas.base_url)
    window = settings.window()
    specs: list[PollerSpec] = []
    if settings.course_events:
        feed = CanvasCourseEventsPoller(ctx.id, settings.account_id or canvas.account_id, client, window,
                                        source=source)
        specs.append(PollerSpec(feed, settings.course_events_interval_seconds,
                                deadline=settings.poll_deadline_seconds))
    if settings.grade_changes and settings.grade_course_ids:
        store = FeedCursorStore(ctx.kafka.connection(), ctx.id, GRADE_POLLER)
        grades = CanvasGradeChangesPoller(ctx.id, settings.grade_course_ids, client, window, store, source=source)
        specs.append(PollerSpec(grades, settings.grade_changes_interval_seconds,
                                deadline=settings.poll_deadline_seconds))
    return specs


CANVAS_AUDIT: Flow[CanvasAuditSettings] = Flow(
    name="canvas_audit",
    summary="Canvas course audit events (account feed) and grade changes (per configured course) as change events",
    systems=(CANVAS,),
    config=CanvasAuditSettings,
    event_types=EVENT_TYPES,
    topics=(TopicSpec(CANVAS_COURSE_EVENTS), TopicSpec(CANVAS_GRADE_CHANGES)),
    pollers=_pollers,
)
