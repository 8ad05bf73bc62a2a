"""Assignments of a course (seed 002:L17718-18620; canvas.md §3.10).

"The assignment is created in the active state"; ``points_possible``, ``grading_type`` (default
points) and the other fields follow the seed's parameter list. ``anonymous_grading`` is set
through the control API (``PUT /_sim/assignments/:id``); while it is on, grade-change events hide
the student (PUBLIC, canvas.md App. A.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.canvas.accounts import IdSequence
from simulators.canvas.clock import iso, normalise, now
from simulators.canvas.course_store import CourseRecord
from simulators.canvas.grading import GRADING_TYPES
from simulators.canvas.params import nested, text, text_list, to_bool
from simulators.canvas.responses import not_found, validation_error
from simulators.canvas.stats import Stats


@dataclass
class AssignmentRecord:
    """An Assignment."""

    id: int
    course_id: int
    name: str
    points_possible: float | None = 0.0
    grading_type: str = "points"
    description: str | None = None
    due_at: str | None = None
    lock_at: str | None = None
    unlock_at: str | None = None
    published: bool = False
    submission_types: list[str] = field(default_factory=lambda: ["none"])
    integration_id: str | None = None
    sis_assignment_id: str | None = None
    anonymous_grading: bool = False
    position: int = 1
    workflow_state: str = "unpublished"
    created_at: str | None = None
    updated_at: str | None = None


def _points(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise validation_error("points_possible", "not_a_number", "is not a number") from exc


class AssignmentStore:
    """Assignments by id."""

    def __init__(self, ids: IdSequence, stats: Stats) -> None:
        self._ids = ids
        self._stats = stats
        self.assignments: dict[int, AssignmentRecord] = {}

    def reset(self) -> None:
        """Drop every assignment."""
        self.assignments = {}

    def get(self, course: CourseRecord, raw: str) -> AssignmentRecord:
        """A live assignment of the course, by id or ``sis_assignment_id:``."""
        found: AssignmentRecord | None = None
        if raw.startswith("sis_assignment_id:"):
            sis = raw.split(":", 1)[1]
            found = next((a for a in self.assignments.values() if a.sis_assignment_id == sis), None)
        elif raw.isdigit():
            found = self.assignments.get(int(raw))
        if found is None or found.course_id != course.id or found.workflow_state == "deleted":
            raise not_found()
        return found

    def of_course(self, course: CourseRecord, params: dict[str, Any]) -> list[AssignmentRecord]:
        """Live assignments by position, optionally filtered by ``assignment_ids[]``."""
        wanted = set(text_list(params, "assignment_ids"))
        found = [a for a in self.assignments.values() if a.course_id == course.id and a.workflow_state != "deleted"
                 and (not wanted or str(a.id) in wanted)]
        return sorted(found, key=lambda a: (a.position, a.id))

    def _apply(self, assignment: AssignmentRecord, params: dict[str, Any]) -> None:
        assignment_p = nested(params, "assignment")
        name = text(assignment_p, "name")
        if name:
            assignment.name = name
        if "points_possible" in assignment_p:
            assignment.points_possible = _points(assignment_p.get("points_possible"))
        grading_type = text(assignment_p, "grading_type")
        if grading_type:
            if grading_type not in GRADING_TYPES:
                raise validation_error("grading_type", "inclusion", "is not included in the list")
            assignment.grading_type = grading_type
        for attr in ("due_at", "lock_at", "unlock_at"):
            if attr in assignment_p:
                setattr(assignment, attr, normalise(assignment_p.get(attr)))
        for attr in ("description", "integration_id", "sis_assignment_id"):
            value = text(assignment_p, attr)
            if value is not None:
                setattr(assignment, attr, value or None)
        types = text_list(assignment_p, "submission_types")
        if types:
            assignment.submission_types = types
        published = to_bool(assignment_p.get("published"))
        if published is not None:
            assignment.published = published
            assignment.workflow_state = "published" if published else "unpublished"
        position = text(assignment_p, "position")
        if position and position.isdigit():
            assignment.position = int(position)
        assignment.updated_at = iso(now())

    def create(self, course: CourseRecord, params: dict[str, Any]) -> AssignmentRecord:
        """``POST /courses/:id/assignments`` (``assignment[name]`` required)."""
        if not text(nested(params, "assignment"), "name"):
            raise validation_error("name", "blank", "can't be blank")
        aid = self._ids.next("assignment")
        position = 1 + sum(a.course_id == course.id for a in self.assignments.values())
        assignment = AssignmentRecord(aid, course.id, "", position=position, created_at=iso(now()))
        self._apply(assignment, params)
        self.assignments[aid] = assignment
        self._stats.record_create("assignment", assignment.sis_assignment_id or assignment.integration_id)
        return assignment

    def update(self, assignment: AssignmentRecord, params: dict[str, Any]) -> AssignmentRecord:
        """``PUT /courses/:id/assignments/:id``."""
        self._apply(assignment, params)
        return assignment

    def delete(self, assignment: AssignmentRecord) -> AssignmentRecord:
        """``DELETE``: the assignment becomes ``deleted`` and is returned."""
        assignment.workflow_state = "deleted"
        return assignment

    def counts(self) -> dict[str, int]:
        """Live assignments."""
        return {"assignments": sum(a.workflow_state != "deleted" for a in self.assignments.values())}
