"""Canvas client methods for assignments, submissions (grading) and Progress objects.

Assignments are in the seeds (canvas.md §3.10). Submissions and grading are not (canvas.md §3.9);
they follow Canvas's public REST API documentation, Submissions
https://canvas.instructure.com/doc/api/submissions.html ("Get a single submission", "List
assignment submissions", "Grade or comment on a submission", "Grade or comment on multiple
submissions"), and Progress https://canvas.instructure.com/doc/api/progress.html ("Query progress").
A grade write's ``Written.request_id`` is the id Canvas stores as the grade-change event's
``request_id`` (FLOWS.md 3.1). The bulk path runs as a job with an id of its own (FLOWS.md 2.6
trap 4), so its events do not carry the request id of the POST.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from worker.clients.canvas_base import SYSTEM, CanvasBase, Written, compact, seg
from worker.clients.canvas_errors import ProgressFailedError
from worker.clients.canvas_roster_models import Assignment, Progress, Submission
from worker.clients.canvas_types import canvas_time
from worker.clients.errors import TransientUpstreamError

ASSIGNMENT_FIELDS = frozenset({
    "name", "points_possible", "grading_type", "published", "integration_id", "sis_assignment_id", "due_at",
    "lock_at", "unlock_at", "description", "submission_types", "position",
})


@dataclass(frozen=True)
class GradeInput:
    """One row of a bulk grade update: a posted grade (points, "40%", a letter, pass/fail) or an excuse."""

    posted_grade: str | float | None = None
    excuse: bool | None = None

    def body(self) -> dict[str, Any]:
        """The ``grade_data[<student>]`` hash."""
        values = compact({"posted_grade": _posted(self.posted_grade), "excuse": self.excuse})
        if not values:
            raise ValueError("a grade needs posted_grade or excuse")
        return values


def _posted(value: str | float | None) -> str | None:
    # Canvas documents posted_grade as a string; a number is sent as points ("8", "13.5").
    if value is None or isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class CanvasGradebook(CanvasBase):
    """Assignments, grading and asynchronous jobs."""

    def _assignments(self, course: str) -> str:
        return f"/api/v1/courses/{seg(course)}/assignments"

    # --- assignments (seed 002:L17718-18620) ---------------------------------------------------

    async def assignments(self, course: str) -> list[Assignment]:
        """``GET /api/v1/courses/:course_id/assignments``."""
        return await self._collect(Assignment, self._assignments(course))

    async def get_assignment(self, course: str, assignment: str) -> Assignment:
        """``GET /api/v1/courses/:course_id/assignments/:id``."""
        return await self._get_model(Assignment, f"{self._assignments(course)}/{seg(assignment)}")

    async def create_assignment(self, course: str, *, name: str, **fields: Any) -> Written[Assignment]:
        """``POST /api/v1/courses/:course_id/assignments`` ("created in the active state")."""
        return await self._written(Assignment, "POST", self._assignments(course),
                                   {"assignment": _assignment_values({"name": name, **fields})})

    async def update_assignment(self, course: str, assignment: str, **fields: Any) -> Written[Assignment]:
        """``PUT /api/v1/courses/:course_id/assignments/:id``."""
        values = _assignment_values(fields)
        if not values:
            raise ValueError("no fields to update")
        return await self._written(Assignment, "PUT", f"{self._assignments(course)}/{seg(assignment)}",
                                   {"assignment": values})

    # --- submissions ---------------------------------------------------------------------------

    def _submission(self, course: str, assignment: str, user: str) -> str:
        return f"{self._assignments(course)}/{seg(assignment)}/submissions/{seg(user)}"

    async def get_submission(self, course: str, assignment: str, user: str) -> Submission:
        """``GET .../assignments/:assignment_id/submissions/:user_id`` (``user`` may be ``sis_user_id:X``)."""
        return await self._get_model(Submission, self._submission(course, assignment, user))

    async def submissions(self, course: str, assignment: str) -> list[Submission]:
        """``GET .../assignments/:assignment_id/submissions``: every student's submission."""
        return await self._collect(Submission, f"{self._assignments(course)}/{seg(assignment)}/submissions")

    async def grade_submission(
        self, course: str, assignment: str, user: str, *, posted_grade: str | float | None = None,
        excuse: bool | None = None,
    ) -> Written[Submission]:
        """``PUT .../submissions/:user_id`` with ``submission[posted_grade]`` and/or
        ``submission[excuse]``; the answer is the Submission with its ``score`` and ``grade``."""
        values = GradeInput(posted_grade, excuse).body()
        return await self._written(Submission, "PUT", self._submission(course, assignment, user),
                                   {"submission": values})

    async def update_grades(
        self, course: str, assignment: str, grades: Mapping[str, GradeInput],
    ) -> Written[Progress]:
        """``POST .../assignments/:assignment_id/submissions/update_grades`` with
        ``grade_data[<student>][...]``; Canvas answers a Progress for the job it queued."""
        if not grades:
            raise ValueError("no grades to update")
        body = {"grade_data": {str(student): row.body() for student, row in grades.items()}}
        return await self._written(Progress, "POST",
                                   f"{self._assignments(course)}/{seg(assignment)}/submissions/update_grades", body)

    # --- progress ------------------------------------------------------------------------------

    async def progress(self, progress_id: str) -> Progress:
        """``GET /api/v1/progress/:id``. Built from the id, not the object's absolute ``url``, so
        a URL naming another host is never followed."""
        return await self._get_model(Progress, f"/api/v1/progress/{seg(progress_id)}")

    async def wait_for_progress(
        self, progress: Progress, *, poll_every: float = 1.0, timeout: float = 300.0,
    ) -> Progress:
        """Poll until the job is completed (returned) or failed (``ProgressFailedError``); still
        running after ``timeout`` seconds is ``TransientUpstreamError`` (the job goes on in Canvas)."""
        deadline = time.monotonic() + timeout
        current = progress
        polls = 0
        while not current.finished:
            if time.monotonic() >= deadline:
                raise TransientUpstreamError(
                    SYSTEM, f"progress {current.id} ({current.tag}) still {current.workflow_state} after {timeout:g}s")
            if polls:  # the first look is at once: small jobs are often done by then
                await anyio.sleep(poll_every)
            polls += 1
            current = await self.progress(current.id)
        if current.workflow_state == "failed":
            raise ProgressFailedError(SYSTEM, f"job {current.id} ({current.tag}) failed: {current.message}")
        return current

    async def bulk_grade(
        self, course: str, assignment: str, grades: Mapping[str, GradeInput], *, poll_every: float = 1.0,
        timeout: float = 300.0,
    ) -> Written[Progress]:
        """``update_grades`` then ``wait_for_progress``: the finished job, with the POST's request id."""
        started = await self.update_grades(course, assignment, grades)
        done = await self.wait_for_progress(started.value, poll_every=poll_every, timeout=timeout)
        return Written(done, started.request_id)


def _assignment_values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - ASSIGNMENT_FIELDS)
    if unknown:
        raise ValueError(f"unknown Canvas field(s) {unknown}; allowed: {sorted(ASSIGNMENT_FIELDS)}")
    return {k: canvas_time(v) if isinstance(v, datetime) else v for k, v in compact(fields).items()}
