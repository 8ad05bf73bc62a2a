"""The course-event and grade-change audit logs, with Canvas's windowing and keyset order.

Course events (seed 002:L1350-1351, L1920-2208; canvas.md §2.2, §5.4) and grade-change events
(PUBLIC, canvas.md App. A.1: https://canvas.instructure.com/doc/api/grade_change_log.html) are
kept newest first. Order, window bounds and ties are not documented (canvas.md §7 item 7), so
they are configurable: by default both bounds are inclusive and events sharing a second are
ordered by id descending (canvas.md §5.4 items 2-3). Like Canvas's database, the log keeps
sub-second times (live writes are strictly increasing) while responses show whole seconds, so
events written in one second still list newest first; only events with the very same time (the
control API seeds those) fall back to the tie order. Bounds compare the second a client sees.
Pages are keyed on (time, tie key), never on offsets, so a walk stays stable while events arrive
at the head.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from simulators.canvas.clock import now

CourseEventType = Literal[
    "created", "updated", "concluded", "unconcluded", "published", "unpublished", "deleted", "restored",
    "reset_from", "reset_to", "copied_from", "copied_to",
]
EventSource = Literal["api", "manual", "sis"]
Key = tuple[int, int]


class AuditConfig(BaseModel):
    """Audit-feed switches, replaced through ``PUT /_sim/audit``."""

    configured: bool = Field(default=True, description="False: auditors storage absent -> 404 (App. A.3)")
    shape: Literal["superset", "seed", "canvas"] = Field(
        default="superset", description="compound document: meta+collections, links+events+linked, or both"
    )
    tie_order: Literal["id_desc", "id_asc", "newest_insert_first", "oldest_insert_first"] = "id_desc"
    start_inclusive: bool = True
    end_inclusive: bool = True
    invalid_time: Literal["ignore", "reject"] = Field(
        default="ignore", description="unparseable start/end_time: ignored (App. A.3) or 400"
    )
    event_data_as_string: bool = Field(default=False, description='render event_data as a JSON string ("{}")')
    course_retention_days: float | None = Field(default=None, ge=0)


@dataclass
class Actor:
    """Who caused a write: the acting user, the event source and the request it came in."""

    user_id: int | None
    source: EventSource = "api"
    sis_batch_id: int | None = None
    request_id: str | None = None


@dataclass
class CourseEventRecord:
    """One CourseEvent; ``account_ids`` are the course's account and its ancestors."""

    id: str
    created_at: datetime
    event_type: str
    event_data: dict[str, Any]
    event_source: str
    course_id: int
    account_ids: tuple[int, ...]
    user_id: int | None
    sis_batch_id: int | None
    seq: int
    extra_links: dict[str, int] = field(default_factory=dict)


@dataclass
class GradeEventRecord:
    """One GradeChangeEvent; ``student_id`` is always kept, ``anonymous`` hides it when rendered."""

    id: str
    created_at: datetime
    course_id: int
    assignment_id: int
    student_id: int
    grader_id: int | None
    grade_before: str | None
    grade_after: str | None
    excused_before: bool
    excused_after: bool
    graded_anonymously: bool
    anonymous: bool
    version_number: int
    request_id: str | None
    points_possible_before: float | None
    points_possible_after: float | None
    seq: int


Event = CourseEventRecord | GradeEventRecord


@dataclass
class Window:
    """A query's time bounds (either may be open)."""

    start: datetime | None = None
    end: datetime | None = None


class AuditStore:
    """Both audit logs plus the switches that shape how they are served."""

    def __init__(self) -> None:
        self.config = AuditConfig()
        self._course: list[CourseEventRecord] = []
        self._grade: list[GradeEventRecord] = []
        self._seq = 0
        self._last_live = datetime.min.replace(tzinfo=UTC)

    def reset(self) -> None:
        """No events, default switches."""
        self.config = AuditConfig()
        self._course = []
        self._grade = []
        self._seq = 0
        self._last_live = datetime.min.replace(tzinfo=UTC)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _stamp(self, at: datetime | None) -> datetime:
        """``at`` as given (seeded history), or now, strictly after the previous live event."""
        if at is not None:
            return at
        stamp = datetime.now(UTC)
        if stamp <= self._last_live:
            stamp = self._last_live + timedelta(microseconds=1)
        self._last_live = stamp
        return stamp

    # --- recording ----------------------------------------------------------------------------

    def record_course(
        self, *, course_id: int, account_ids: Iterable[int], event_type: str, event_data: dict[str, Any],
        actor: Actor, at: datetime | None = None, extra_links: dict[str, int] | None = None,
    ) -> CourseEventRecord:
        """Append a CourseEvent (now, unless ``at`` is given)."""
        event = CourseEventRecord(
            id=str(uuid.uuid4()), created_at=self._stamp(at), event_type=event_type,
            event_data=dict(event_data), event_source=actor.source, course_id=course_id,
            account_ids=tuple(account_ids), user_id=actor.user_id, sis_batch_id=actor.sis_batch_id,
            seq=self._next_seq(), extra_links=dict(extra_links or {}),
        )
        self._course.append(event)
        return event

    def record_grade(
        self, *, course_id: int, assignment_id: int, student_id: int, actor: Actor,
        before: tuple[str | None, bool, float | None], after: tuple[str | None, bool, float | None],
        anonymous: bool, version_number: int, at: datetime | None = None,
    ) -> GradeEventRecord:
        """Append a GradeChangeEvent; ``before``/``after`` are (grade, excused, points_possible)."""
        event = GradeEventRecord(
            id=str(uuid.uuid4()), created_at=self._stamp(at), course_id=course_id,
            assignment_id=assignment_id, student_id=student_id, grader_id=actor.user_id,
            grade_before=before[0], grade_after=after[0], excused_before=before[1], excused_after=after[1],
            graded_anonymously=anonymous, anonymous=anonymous, version_number=version_number,
            request_id=actor.request_id, points_possible_before=before[2], points_possible_after=after[2],
            seq=self._next_seq(),
        )
        self._grade.append(event)
        return event

    # --- querying -----------------------------------------------------------------------------

    def sort_key(self, event: Event) -> Key:
        """Newest first is *descending* by this key: (microseconds, tie key per ``tie_order``)."""
        order = self.config.tie_order
        tie = uuid.UUID(event.id).int
        if order == "id_asc":
            tie = -tie
        elif order == "newest_insert_first":
            tie = event.seq
        elif order == "oldest_insert_first":
            tie = -event.seq
        stamp = event.created_at
        micros = (int(stamp.replace(microsecond=0).timestamp())) * 1_000_000 + stamp.microsecond
        return micros, tie

    def _in_window(self, event: Event, window: Window) -> bool:
        second = event.created_at.replace(microsecond=0)
        if window.start is not None:
            start = window.start.replace(microsecond=0)
            if second < start or (second == start and not self.config.start_inclusive):
                return False
        if window.end is not None:
            end = window.end.replace(microsecond=0)
            if second > end or (second == end and not self.config.end_inclusive):
                return False
        return True

    def page(
        self, events: Iterable[Event], window: Window, after: Key | None, per_page: int,
    ) -> tuple[list[Event], Key | None]:
        """One page, newest first, strictly after the ``after`` bookmark; returns (page, next bookmark)."""
        chosen = [e for e in events if self._in_window(e, window)]
        keyed = sorted(((self.sort_key(e), e) for e in chosen), key=lambda pair: pair[0], reverse=True)
        if after is not None:
            keyed = [(k, e) for k, e in keyed if k < after]
        page = keyed[:per_page]
        more = len(keyed) > per_page
        return [e for _, e in page], (page[-1][0] if more and page else None)

    def course_events(self, match: Callable[[CourseEventRecord], bool]) -> list[CourseEventRecord]:
        """Course events passing ``match`` and the retention horizon."""
        horizon = None
        if self.config.course_retention_days is not None:
            horizon = now() - timedelta(days=self.config.course_retention_days)
        return [e for e in self._course if match(e) and (horizon is None or e.created_at >= horizon)]

    def grade_events(self, match: Callable[[GradeEventRecord], bool]) -> list[GradeEventRecord]:
        """Grade-change events passing ``match``."""
        return [e for e in self._grade if match(e)]

    def counts(self) -> dict[str, int]:
        """How many events of each log."""
        return {"course_events": len(self._course), "grade_change_events": len(self._grade)}
