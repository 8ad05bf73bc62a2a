"""The reference data every roster handler joins against, for every tenant, in full.

A section row lacks the course name, the term dates and the teacher's name and email; a roster
delete carries only internal ids. So the roster handlers keep three ``TopicTable`` views of the
Illuminate topics (FLOWS.md 1.3): people (students and staff, by internal id), the catalogue
(courses and terms) and sections (one entry per section and teacher, grouped by section). Each
keeps only what the handlers need, a few fields per record. A deletion upstream does not remove a
person: the handlers still need the district id to end that person's enrolments.

A fourth table, ``latest``, holds the id and time of the newest event of every roster subject.
An event that a newer one of its subject has superseded is skipped: replaying the topics from the
start then rewrites no intermediate state (a row enrolled, later dropped, is not enrolled again on
the way), and a live handler behind its poller goes straight to the current state. "Newer" is by
event time, which for one subject is the time of the snapshot walk that saw the change: walks of
one poller follow each other, so the times of a subject's events increase. A table that has not
caught up with the event yet holds an older time, and the event is applied.
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
from schemas.illuminate_records import SectionRecordV1
from worker.kafka.connection import Kafka, KafkaConnection, connect
from worker.tables import TopicTable
from worker.topics import illuminate_topic

# What every roster handler consumes.
ROSTER_TOPICS = tuple(illuminate_topic(e) for e in ("students", "staff", "sections", "rosters"))


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


def section_row(s: SectionRecordV1) -> dict[str, Any]:
    """What the sections table keeps of one section-teacher row."""
    return {"course": s.course_id, "term": s.term_id, "site": s.site_id, "period": s.period,
            "name": s.section_name, "teacher": s.user_id, "primary": bool(s.primary_teacher)}


def _sections(event: CloudEvent) -> Iterable[tuple[str, Any]]:
    if event.type == UPSERTED["section"]:
        s = event.payload(SectionUpsertedV1).record
        yield f"{event.tenant}/section/{s.section_id}/{s.user_id or ''}", section_row(s)
    elif event.type == DELETED["section"]:
        parts = event.payload(DeletedV1).key_parts
        yield f"{event.tenant}/section/{parts[0]}/{parts[1] if len(parts) > 1 else ''}", None


def _latest(event: CloudEvent) -> Iterable[tuple[str, Any]]:
    yield f"{event.tenant}|{event.subject}", (event.id, event.time.timestamp())


def _section_group(key: str) -> str:
    return key.rsplit("/", 1)[0]


@dataclass
class RosterReference:
    """The three tables, and the look-ups the handlers make against them."""

    people: TopicTable
    catalogue: TopicTable
    sections: TopicTable
    latest: TopicTable

    @property
    def tables(self) -> tuple[TopicTable, ...]:
        """For the handler frame: restored before the handler consumes, then followed."""
        return self.people, self.catalogue, self.sections, self.latest

    def superseded(self, event: CloudEvent) -> bool:
        """True when a newer event of the same subject is known (the handler need not apply this one)."""
        newest = self.latest.get(f"{event.tenant}|{event.subject}")
        return newest is not None and newest[0] != event.id and newest[1] > event.time.timestamp()

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

    def section_rows(self, tenant: str, section_id: str, *, overlay: tuple[str | None, SectionRecordV1 | None]
                     | None = None) -> list[dict[str, Any]]:
        """Every teacher row of a section (primary first). ``overlay`` (teacher id, record or None
        for a delete) is the row of the event being handled: the table follows the same topic on
        its own and may not have applied that event yet."""
        group = f"{tenant}/section/{section_id}"
        rows = self.sections.group(group)
        if overlay is not None:
            teacher, record = overlay
            key = f"{group}/{teacher or ''}"
            if record is None:
                rows.pop(key, None)
            else:
                rows[key] = section_row(record)
        return sorted(rows.values(), key=lambda r: (not r["primary"], r["teacher"] or ""))


_SHARED: dict[KafkaConnection, RosterReference] = {}


def roster_reference(kafka: Kafka) -> RosterReference:
    """The process's one set of roster tables for ``kafka`` (shared by every roster handler)."""
    connection = connect(kafka)
    ref = _SHARED.get(connection)
    if ref is None:
        ref = _SHARED[connection] = RosterReference(
            people=TopicTable(connection, "roster-people", [illuminate_topic("students"), illuminate_topic("staff")],
                              _people),
            catalogue=TopicTable(connection, "roster-catalogue",
                                 [illuminate_topic("courses"), illuminate_topic("terms")], _catalogue),
            sections=TopicTable(connection, "roster-sections", [illuminate_topic("sections")], _sections,
                                group_of=_section_group),
            latest=TopicTable(connection, "roster-latest", ROSTER_TOPICS, _latest),
        )
    return ref


__all__ = ["ROSTER_TOPICS", "RosterReference", "roster_reference", "section_row"]
