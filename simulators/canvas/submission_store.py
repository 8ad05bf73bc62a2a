"""Submissions and grading, with a grade-change audit event for every grade write.

Not in the seeds (canvas.md §3.9). Canvas's public REST API documentation, Submissions
https://canvas.instructure.com/doc/api/submissions.html: a submission exists only for a student
enrolled in the course (anyone else is 404, FLOWS.md 2.6 trap 1); ``submission[posted_grade]``
sets score and grade (``grading.py``); ``submission[excuse]`` excuses. A grade write that changes
grade, score or excused appends a GradeChangeEvent (PUBLIC, canvas.md App. A.1) whose
``request_id`` is the write's ``X-Request-Context-Id`` and whose grader is the acting user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simulators.canvas.accounts import IdSequence
from simulators.canvas.assignment_store import AssignmentRecord
from simulators.canvas.audit_store import Actor, AuditStore
from simulators.canvas.clock import iso, now, parse_time
from simulators.canvas.enrollment_store import EnrollmentStore
from simulators.canvas.grading import posted_to_score
from simulators.canvas.params import to_bool
from simulators.canvas.responses import not_found


@dataclass
class SubmissionRecord:
    """A student's submission for one assignment (created on first read or grade)."""

    id: int
    assignment_id: int
    course_id: int
    user_id: int
    score: float | None = None
    grade: str | None = None
    excused: bool = False
    grader_id: int | None = None
    graded_at: str | None = None
    workflow_state: str = "unsubmitted"
    version_number: int = 0
    graded_points_possible: float | None = None
    posted_at: str | None = None


@dataclass(frozen=True)
class GradeChange:
    """What a grade write asks for: a posted grade and/or an excuse flag."""

    posted_grade: str | None = None
    excuse: bool | None = None

    @classmethod
    def from_params(cls, submission_p: dict[str, Any]) -> GradeChange:
        """From ``submission[posted_grade]`` / ``submission[excuse]`` (or a bulk ``grade_data`` row)."""
        posted = submission_p.get("posted_grade")
        return cls(None if posted is None else str(posted), to_bool(submission_p.get("excuse")))


class SubmissionStore:
    """Submissions by (assignment, user)."""

    def __init__(self, enrollments: EnrollmentStore, audit: AuditStore, ids: IdSequence) -> None:
        self._enrollments = enrollments
        self._audit = audit
        self._ids = ids
        self.submissions: dict[tuple[int, int], SubmissionRecord] = {}

    def reset(self) -> None:
        """Drop every submission."""
        self.submissions = {}

    def get(self, assignment: AssignmentRecord, user_id: int) -> SubmissionRecord:
        """The student's submission (created empty); 404 unless the user is a student of the course."""
        if not self._enrollments.is_student(assignment.course_id, user_id):
            raise not_found()
        key = (assignment.id, user_id)
        submission = self.submissions.get(key)
        if submission is None:
            submission = SubmissionRecord(self._ids.next("submission"), assignment.id, assignment.course_id, user_id)
            self.submissions[key] = submission
        return submission

    def grade(
        self, assignment: AssignmentRecord, user_id: int, change: GradeChange, actor: Actor,
        at: datetime | None = None,
    ) -> SubmissionRecord:
        """Apply a grade write; records a GradeChangeEvent when anything changed."""
        submission = self.get(assignment, user_id)
        before = (submission.grade, submission.excused, submission.graded_points_possible)
        score, grade, excused = submission.score, submission.grade, submission.excused
        if change.excuse is not None:
            excused = change.excuse
            if excused:
                score, grade = None, None
        if change.posted_grade is not None:
            score, grade = posted_to_score(change.posted_grade, assignment.grading_type, assignment.points_possible)
            excused = False if change.excuse is None else excused
        if (score, grade, excused) == (submission.score, submission.grade, submission.excused):
            return submission  # Canvas audits only saves that change grade, score or excused.
        stamp = (at or now())
        submission.score, submission.grade, submission.excused = score, grade, excused
        submission.grader_id = actor.user_id
        submission.graded_at = iso(stamp)
        submission.workflow_state = "graded" if (grade is not None or excused) else "unsubmitted"
        submission.version_number += 1
        submission.graded_points_possible = assignment.points_possible
        if submission.posted_at is None and not assignment.anonymous_grading:
            submission.posted_at = iso(stamp)
        self._audit.record_grade(
            course_id=assignment.course_id, assignment_id=assignment.id, student_id=user_id, actor=actor,
            before=before, after=(grade, excused, assignment.points_possible),
            anonymous=assignment.anonymous_grading, version_number=submission.version_number, at=at,
        )
        return submission

    def listing(
        self, assignments: list[AssignmentRecord], student_ids: list[int] | None, graded_since: str | None,
    ) -> list[SubmissionRecord]:
        """Submissions of ``assignments`` for ``student_ids`` (None: every student), by assignment then user."""
        since = parse_time(graded_since)
        found = []
        for assignment in assignments:
            students = sorted({e.user_id for e in self._enrollments.students(assignment.course_id)})
            for user_id in students:
                if student_ids is not None and user_id not in student_ids:
                    continue
                submission = self.get(assignment, user_id)
                if since is not None:
                    graded = parse_time(submission.graded_at)
                    if graded is None or graded < since:
                        continue
                found.append(submission)
        return found

    def has_graded(self, course_id: int) -> bool:
        """Whether any student of the course has a graded submission (blocks unpublishing)."""
        return any(s.course_id == course_id and s.workflow_state == "graded" for s in self.submissions.values())

    def counts(self) -> dict[str, int]:
        """Graded submissions."""
        return {"graded_submissions": sum(s.workflow_state == "graded" for s in self.submissions.values())}
