"""Course sections (not in the seeds except section-scoped enrollment paths, canvas.md §3.5).

Behaviour follows Canvas's public REST API documentation, Sections
https://canvas.instructure.com/doc/api/sections.html, and its source ``sections_controller.rb``:
``sis_section_id`` is set on create only with manage_sis and is otherwise dropped silently
(FLOWS.md 2.3 trap 2); changing it later without manage_sis answers 401 "You must have
manage_sis permission to update sis attributes"; a section with enrollments cannot be deleted;
``enable_sis_reactivation`` revives a deleted section with the same SIS id. Each course gets a
default section (named after the course) the first time an enrollment needs one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.canvas.accounts import IdSequence
from simulators.canvas.clock import iso, normalise, now
from simulators.canvas.course_store import DELETED as COURSE_DELETED
from simulators.canvas.course_store import CourseRecord, CourseStore
from simulators.canvas.params import nested, text, to_bool
from simulators.canvas.refs import parse_ref
from simulators.canvas.responses import CanvasHTTPError, not_found, taken
from simulators.canvas.stats import Stats
from simulators.canvas.user_store import sis_in_use

ACTIVE = "active"
DELETED = "deleted"


@dataclass
class SectionRecord:
    """A CourseSection."""

    id: int
    course_id: int
    root_account_id: int
    name: str
    sis_section_id: str | None = None
    integration_id: str | None = None
    start_at: str | None = None
    end_at: str | None = None
    restrict_enrollments_to_section_dates: bool = False
    workflow_state: str = ACTIVE
    created_at: str | None = None
    default_section: bool = False


class SectionStore:
    """Sections by id."""

    def __init__(self, courses: CourseStore, ids: IdSequence, stats: Stats) -> None:
        self._courses = courses
        self._ids = ids
        self._stats = stats
        self.sections: dict[int, SectionRecord] = {}
        # Set by the simulator: whether a section still holds enrollments.
        self.has_enrollments: Callable[[int], bool] = lambda section_id: False

    def reset(self) -> None:
        """Drop every section."""
        self.sections = {}

    def resolve(self, raw: str, *, course: CourseRecord | None = None) -> SectionRecord:
        """A live section by id or ``sis_section_id:``; 404 if deleted or its course is deleted."""
        ref = parse_ref(raw)
        section: SectionRecord | None
        if ref.kind == "sis_section_id":
            section = next((s for s in self.sections.values()
                            if s.sis_section_id == ref.value and s.workflow_state == ACTIVE), None)
        else:
            section = self.sections.get(ref.as_int())
        if section is None or section.workflow_state != ACTIVE:
            raise not_found()
        if course is not None and section.course_id != course.id:
            raise not_found()
        if self._courses.courses[section.course_id].workflow_state == COURSE_DELETED:
            raise not_found()
        return section

    def of_course(self, course: CourseRecord) -> list[SectionRecord]:
        """Active sections of the course, by id."""
        return sorted((s for s in self.sections.values() if s.course_id == course.id and s.workflow_state == ACTIVE),
                      key=lambda s: s.id)

    def default_section(self, course: CourseRecord) -> SectionRecord:
        """The course's default section, created on first use (Canvas's ``course.default_section``)."""
        for section in self.of_course(course):
            if section.default_section:
                return section
        sid = self._ids.next("section")
        section = SectionRecord(sid, course.id, course.root_account_id, course.name, created_at=iso(now()),
                                default_section=True)
        self.sections[sid] = section
        return section

    def _check_sis(self, section: SectionRecord, sis: str | None) -> None:
        # Canvas keeps SIS ids unique per root account, deleted sections included.
        if sis and any(s.sis_section_id == sis and s.id != section.id and s.root_account_id == section.root_account_id
                       for s in self.sections.values()):
            raise taken("sis_source_id", sis_in_use(sis))

    def _apply_dates(self, section: SectionRecord, section_p: dict[str, Any]) -> None:
        name = text(section_p, "name")
        if name:
            section.name = name
        for attr in ("start_at", "end_at"):
            if attr in section_p:
                setattr(section, attr, normalise(section_p.get(attr)))
        restrict = to_bool(section_p.get("restrict_enrollments_to_section_dates"))
        if restrict is not None:
            section.restrict_enrollments_to_section_dates = restrict

    def create(self, course: CourseRecord, params: dict[str, Any], *, can_manage_sis: bool) -> SectionRecord:
        """``POST /courses/:id/sections``."""
        section_p = nested(params, "course_section")
        sis = (text(section_p, "sis_section_id") or None) if can_manage_sis else None
        integration = (text(section_p, "integration_id") or None) if can_manage_sis else None
        section: SectionRecord | None = None
        if sis and to_bool(params.get("enable_sis_reactivation")):
            section = next((s for s in self.sections.values() if s.course_id == course.id
                            and s.sis_section_id == sis and s.workflow_state == DELETED), None)
            if section is not None:
                section.workflow_state = ACTIVE
        if section is None:
            sid = self._ids.next("section")
            section = SectionRecord(sid, course.id, course.root_account_id, "Section", created_at=iso(now()))
            self._check_sis(section, sis)
            section.sis_section_id = sis
            section.integration_id = integration
            self.sections[sid] = section
            self._stats.record_create("section", sis)
        self._apply_dates(section, section_p)
        return section

    def update(self, section: SectionRecord, params: dict[str, Any], *, can_manage_sis: bool) -> SectionRecord:
        """``PUT /sections/:id``; SIS fields without manage_sis answer 401 (sections_controller#update)."""
        section_p = nested(params, "course_section")
        sis = text(section_p, "sis_section_id")
        integration = text(section_p, "integration_id")
        if sis is not None or integration is not None:
            if not can_manage_sis:
                message = "You must have manage_sis permission to update sis attributes"
                raise CanvasHTTPError(401, {"message": message})
            if sis is not None:
                self._check_sis(section, sis or None)
                section.sis_section_id = sis or None
            if integration is not None:
                section.integration_id = integration or None
        self._apply_dates(section, section_p)
        return section

    def delete(self, section: SectionRecord) -> SectionRecord:
        """``DELETE /sections/:id``; refused while the section holds enrollments."""
        if self.has_enrollments(section.id):
            raise CanvasHTTPError(400, {"message": "You can't delete a section that has enrollments"})
        section.workflow_state = DELETED
        return section

    def counts(self) -> dict[str, int]:
        """Active sections."""
        return {"sections": sum(s.workflow_state == ACTIVE for s in self.sections.values())}
