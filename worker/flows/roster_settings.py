"""What the three roster flows (Canvas, Class, MatrixLMS) share: their settings and their ids."""

from __future__ import annotations

from pydantic import Field

from handlers.roster_identity import CourseModel, RosterIds
from worker.registry import FlowSettings

# The roster flows consume the Illuminate change events; they publish nothing of their own.
SOURCE_FLOW = "illuminate_changes"


class RosterSettings(FlowSettings):
    """How a tenant's roster becomes objects in a target (FLOWS.md section 4)."""

    sis_prefix: str = Field(
        "edusync", pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="prefix of every id edusync gives a term, course or section (marks them as edusync's)")
    course_model: CourseModel = Field(
        "section", description="Canvas only: one course per section (section) or per course and term (course_term)")

    def ids(self) -> RosterIds:
        """The tenant's id scheme."""
        return RosterIds(prefix=self.sis_prefix, course_model=self.course_model)
