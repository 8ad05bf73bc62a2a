"""Canvas audit-log documents: the compound document, course events and grade-change events.

The compound document has two documented shapes (canvas.md §1.8, §7 item 3; FLOWS.md 2.1 trap 4):
- seed-generic: ``{"meta": {"primaryCollection": "events"}, "events": [...], "courses": [...], ...}``;
- canvas-source (App. A.2): ``{"links": {...templates}, "events": [...], "linked": {"courses": [...]}}``.
``parse_compound`` accepts both (and their superset). Secondary collections are "never ordered or
complete" (seed 002:L251-259): a cache for hints, never the authority.

CourseEvent: seed 002:L1920-2208 (canvas.md §2.2). ``event_data`` may be an object or a JSON string
(the seed example is the string ``"{}"``); link ids are strings in one example and integers in
another; both are normalised to ``str``. GradeChangeEvent: NOT IN SEEDS; Canvas's public API
documentation https://canvas.instructure.com/doc/api/grade_change_log.html and
``lib/api/v1/grade_change_event.rb`` (canvas.md App. A.1). ``links.student`` is null for anonymous
or muted assignments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BeforeValidator

from worker.clients.canvas_base import SYSTEM
from worker.clients.canvas_models import CanvasModel
from worker.clients.canvas_types import CanvasId, CanvasTime, OptionalId
from worker.clients.errors import MalformedResponseError

# Properties of a compound document that are not collections (§1.8: "two reserved properties").
RESERVED = frozenset({"meta", "links", "linked"})
PRIMARY = "events"

E = TypeVar("E", bound=CanvasModel)


@dataclass(frozen=True)
class CompoundDocument:
    """The primary collection (raw objects) and the secondary collections by name."""

    primary: list[Any]
    linked: dict[str, list[Any]] = field(default_factory=dict)

    def linked_by_id(self, collection: str) -> dict[str, dict[str, Any]]:
        """A secondary collection as ``{id (str): object}``; entries without a usable id are skipped."""
        out: dict[str, dict[str, Any]] = {}
        for item in self.linked.get(collection, []):
            if isinstance(item, dict):
                raw = item.get("id")
                if isinstance(raw, int | str) and not isinstance(raw, bool) and str(raw).strip():
                    out[str(raw).strip()] = item
        return out


def parse_compound(body: Any, where: str = "audit feed") -> CompoundDocument:
    """Either documented shape; ``MalformedResponseError`` when there is no primary collection."""
    if not isinstance(body, dict):
        raise MalformedResponseError(SYSTEM, f"{where}: expected a compound document (a JSON object)")
    meta = body.get("meta")
    primary_name = PRIMARY
    if meta is not None:
        name = meta.get("primaryCollection") if isinstance(meta, dict) else None
        if not isinstance(name, str) or name in RESERVED:
            raise MalformedResponseError(SYSTEM, f"{where}: compound document meta has no valid primaryCollection")
        primary_name = name
    primary = body.get(primary_name)
    if not isinstance(primary, list):
        raise MalformedResponseError(SYSTEM, f"{where}: compound document has no {primary_name!r} collection")
    linked: dict[str, list[Any]] = {}
    nested = body.get("linked")
    if isinstance(nested, dict):
        linked.update({k: v for k, v in nested.items() if isinstance(v, list)})
    for name, value in body.items():
        if name not in RESERVED and name != primary_name and isinstance(value, list):
            linked.setdefault(name, value)
    return CompoundDocument(primary, linked)


def _event_data(value: Any) -> Any:
    # The seed's example is the string "{}" (canvas.md §7 item 5); events of types without data
    # may carry null.
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValueError("event_data is a string but not JSON") from exc
    if not isinstance(value, dict):
        raise ValueError(f"event_data must be an object, got {type(value).__name__}")
    return value


def _grade(value: Any) -> Any:
    # Grades are strings in the assignment's scheme ("8", "B+", "80%"); a number is read as its text.
    if isinstance(value, bool):
        raise ValueError("a grade is not a boolean")
    if isinstance(value, int | float):
        return str(value)
    return value


EventData = Annotated[dict[str, Any], BeforeValidator(_event_data)]
Grade = Annotated[str | None, BeforeValidator(_grade)]


class CourseEventLinks(CanvasModel):
    """``links`` of a CourseEvent (the seed's CourseEventLink, plus App. A.2's reset links)."""

    course: CanvasId
    user: OptionalId = None
    page_view: OptionalId = None
    sis_batch: OptionalId = None
    copied_from: OptionalId = None
    copied_to: OptionalId = None
    reset_from: OptionalId = None
    reset_to: OptionalId = None

    def related(self) -> dict[str, str]:
        """The other course of copy and reset events, by link name."""
        pairs = (("copied_from", self.copied_from), ("copied_to", self.copied_to),
                 ("reset_from", self.reset_from), ("reset_to", self.reset_to))
        return {name: value for name, value in pairs if value is not None}


class CourseEvent(CanvasModel):
    """One course audit event."""

    id: CanvasId
    created_at: CanvasTime
    event_type: str
    event_source: str | None = None
    event_data: EventData = {}
    links: CourseEventLinks


class GradeChangeLinks(CanvasModel):
    """``links`` of a GradeChangeEvent; ``student`` is null for anonymous grading."""

    assignment: CanvasId
    course: CanvasId
    student: OptionalId = None
    grader: OptionalId = None
    page_view: OptionalId = None


class GradeChangeEvent(CanvasModel):
    """One grade-change audit event."""

    id: CanvasId
    created_at: CanvasTime
    event_type: str = "grade_change"
    grade_before: Grade = None
    grade_after: Grade = None
    excused_before: bool | None = None
    excused_after: bool | None = None
    graded_anonymously: bool | None = None
    version_number: int | None = None
    request_id: str | None = None
    points_possible_before: float | None = None
    points_possible_after: float | None = None
    links: GradeChangeLinks


@dataclass(frozen=True)
class AuditPage(Generic[E]):
    """One page of an audit feed: its events (newest first, as served) and the whole document."""

    events: list[E]
    document: CompoundDocument
