"""The reference data every roster handler joins against, for every tenant, in full.

A section row lacks the course name, the term dates and the teacher's name and email; a roster
delete carries only internal ids. So the roster handlers keep three ``TopicTable`` views of the
Illuminate topics (FLOWS.md 1.3): people (students and staff, by internal id), the catalogue
(courses and terms) and sections (one entry per section and teacher, grouped by section). Each
keeps only what the handlers need, a few fields per record. A deletion upstream does not remove a
person: the handlers still need the district id to end that person's enrolments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.envelope import CloudEvent
from schemas.illuminate import (
    DELETED,
    UPSERTED,
    CourseUpsertedV1,
    DeletedV1,
    SectionUpsertedV1,
    StaffUpsertedV1,
    StudentUpsertedV1,
    TermUpsertedV1,
)
from worker.tables import TopicTable
from worker.topics import illuminate_topic


def _people(event: CloudEvent) -> Iterable[tuple[str, Any]]:
    if event.type == UPSERTED["student"]:
        s = event.payload(StudentUpsertedV1).record
        yield f"{event.tenant}/student/{s.student_id}", {
            "district": s.district_student_id, "first": s.first_name, "last": s.last_name, "email": s.email,
            "username": s.username, "birth_date": s.birth_date.isoformat() if s.birth_date else None}
    elif event.type == UPSERTED["staff"]:
        u = event.payload(StaffUpsertedV1).record
        yield f"{event.tenant}/staff/{u.user_id}", {
            "district": u.district_user_id, "first": u.first_name, "last": u.last_name, "email": u.email1,
            "username": u.username, "active": u.active}


def _catalogue(event: CloudEvent) -> Iterable[tuple[str, Any]]:
    if event.type == UPSERTED["course"]:
        c = event.payload(CourseUpsertedV1).record
        yield f"{event.tenant}/course/{c.course_id}", {"name": c.long_name or c.short_name, "code": c.short_name}
    elif event.type == UPSERTED["term"]:
        t = event.payload(TermUpsertedV1).record
        yield f"{event.tenant}/term/{t.term_id}", {
            "name": t.term_name, "start": t.start_date.isoformat() if t.start_date else None,
            "end": t.end_date.isoformat() if t.end_date else None}


def _sections(event: CloudEvent) -> Iterable[tuple[str, Any]]:
    if event.type == UPSERTED["section"]:
        s = event.payload(SectionUpsertedV1).record
        yield f"{event.tenant}/section/{s.section_id}/{s.user_id or ''}", {
            "course": s.course_id, "term": s.term_id, "site": s.site_id, "period": s.period,
            "name": s.section_name, "teacher": s.user_id, "primary": bool(s.primary_teacher)}
    elif event.type == DELETED["section"]:
        parts = event.payload(DeletedV1).key_parts
        yield f"{event.tenant}/section/{parts[0]}/{parts[1] if len(parts) > 1 else ''}", None


def _section_group(key: str) -> str:
    return key.rsplit("/", 1)[0]


@dataclass
class RosterReference:
    """The three tables, and the look-ups the handlers make against them."""

    people: TopicTable
    catalogue: TopicTable
    sections: TopicTable

    @property
    def tables(self) -> tuple[TopicTable, ...]:
        """For the handler frame: restored before the handler consumes, then followed."""
        return self.people, self.catalogue, self.sections

    def student(self, tenant: str, student_id: str) -> dict[str, Any] | None:
        """What is known of a student by internal id."""
        return self.people.get(f"{tenant}/student/{student_id}")  # type: ignore[no-any-return]

    def staff(self, tenant: str, user_id: str) -> dict[str, Any] | None:
        """What is known of a staff member by internal id."""
        return self.people.get(f"{tenant}/staff/{user_id}")  # type: ignore[no-any-return]

    def course(self, tenant: str, course_id: str | None) -> dict[str, Any] | None:
        """A course's name and code."""
        return self.catalogue.get(f"{tenant}/course/{course_id}") if course_id else None

    def term(self, tenant: str, term_id: str | None) -> dict[str, Any] | None:
        """A term's name and dates."""
        return self.catalogue.get(f"{tenant}/term/{term_id}") if term_id else None

    def section_rows(self, tenant: str, section_id: str) -> list[dict[str, Any]]:
        """Every teacher row of a section (primary first)."""
        rows = list(self.sections.group(f"{tenant}/section/{section_id}").values())
        return sorted(rows, key=lambda r: (not r["primary"], r["teacher"] or ""))

    def primary_teacher(self, tenant: str, section_id: str) -> dict[str, Any] | None:
        """The section's primary teacher as a person, if Illuminate names one."""
        for row in self.section_rows(tenant, section_id):
            if row["primary"] and row["teacher"]:
                return self.staff(tenant, row["teacher"])
        return None


_SHARED: dict[str, RosterReference] = {}


def roster_reference(bootstrap: str) -> RosterReference:
    """The process's one set of roster tables for ``bootstrap`` (shared by every roster handler)."""
    ref = _SHARED.get(bootstrap)
    if ref is None:
        ref = _SHARED[bootstrap] = RosterReference(
            people=TopicTable(bootstrap, "roster-people", [illuminate_topic("students"), illuminate_topic("staff")],
                              _people),
            catalogue=TopicTable(bootstrap, "roster-catalogue",
                                 [illuminate_topic("courses"), illuminate_topic("terms")], _catalogue),
            sections=TopicTable(bootstrap, "roster-sections", [illuminate_topic("sections")], _sections,
                                group_of=_section_group),
        )
    return ref


__all__ = ["RosterReference", "roster_reference"]
