"""Illuminate change events as the roster handlers see them: people, section rows, enrolments.

Each roster handler reads the same four topics; this module turns their events into a few typed
changes, completing them from the reference tables where an event lacks something (a delete
carries only internal ids; a roster row's student is known by internal id there too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from handlers.roster_reference import RosterReference
from schemas.envelope import CloudEvent
from schemas.illuminate import (
    DELETED,
    UPSERTED,
    DeletedV1,
    RosterUpsertedV1,
    SectionUpsertedV1,
    StaffUpsertedV1,
    StudentUpsertedV1,
)
from schemas.illuminate_records import SectionRecordV1, StaffRecordV1, StudentRecordV1
from worker.errors import PermanentFailure


@dataclass(frozen=True)
class StudentChange:
    """A student is new or changed (``record``), or gone upstream (``record`` None)."""

    tenant: str
    student_id: str
    district_id: str | None
    record: StudentRecordV1 | None


@dataclass(frozen=True)
class StaffChange:
    """A staff member is new or changed, or gone upstream."""

    tenant: str
    user_id: str
    record: StaffRecordV1 | None


@dataclass(frozen=True)
class SectionChange:
    """One section-teacher row is new or changed, or gone."""

    tenant: str
    section_id: str
    teacher_id: str | None
    record: SectionRecordV1 | None


@dataclass(frozen=True)
class EnrollmentChange:
    """A student's place in a section: ``active`` False for a drop (leave date passed) or a delete."""

    tenant: str
    section_id: str
    student_id: str
    district_id: str | None
    first_name: str | None
    last_name: str | None
    active: bool
    deleted: bool


Change = StudentChange | StaffChange | SectionChange | EnrollmentChange
Kind = Literal["student", "staff", "section", "roster"]


_KINDS: tuple[Kind, ...] = ("student", "staff", "section", "roster")


def _kind_of(event: CloudEvent) -> tuple[Kind, bool]:
    for kind in _KINDS:
        if event.type == UPSERTED[kind]:
            return kind, False
        if event.type == DELETED[kind]:
            return kind, True
    raise PermanentFailure(f"not a roster event: {event.type}")


def read_change(event: CloudEvent, reference: RosterReference) -> Change:
    """The change ``event`` stands for; ``PermanentFailure`` for what no roster handler handles."""
    kind, deleted = _kind_of(event)
    tenant = event.tenant
    if deleted:
        parts = event.payload(DeletedV1).key_parts
        if kind == "student":
            known = reference.student(tenant, parts[0]) or {}
            return StudentChange(tenant, parts[0], known.get("district"), None)
        if kind == "staff":
            return StaffChange(tenant, parts[0], None)
        if kind == "section":
            return SectionChange(tenant, parts[0], parts[1] if len(parts) > 1 and parts[1] else None, None)
        known = reference.student(tenant, parts[1]) or {}
        return EnrollmentChange(tenant, parts[0], parts[1], known.get("district"), known.get("first"),
                                known.get("last"), active=False, deleted=True)
    if kind == "student":
        student = event.payload(StudentUpsertedV1).record
        return StudentChange(tenant, student.student_id, student.district_student_id, student)
    if kind == "staff":
        staff = event.payload(StaffUpsertedV1).record
        return StaffChange(tenant, staff.user_id, staff)
    if kind == "section":
        section = event.payload(SectionUpsertedV1).record
        return SectionChange(tenant, section.section_id, section.user_id, section)
    row = event.payload(RosterUpsertedV1).record
    return EnrollmentChange(tenant, row.section_id, row.student_id, row.district_student_id, row.first_name,
                            row.last_name, active=not _dropped(row.leave_date, _term_end(reference, tenant,
                                                                                         row.section_id)),
                            deleted=False)


def _term_end(reference: RosterReference, tenant: str, section_id: str) -> date | None:
    rows = reference.section_rows(tenant, section_id)
    term = reference.term(tenant, rows[0]["term"]) if rows else None
    return date.fromisoformat(term["end"]) if term and term.get("end") else None


def _dropped(leave: date | None, term_end: date | None) -> bool:
    """A drop ends the row before its term does. Every row carries a leave date (the session's end
    by default), so the date alone says nothing; the term's end tells a drop from a normal end."""
    if leave is None:
        return False
    return leave < (term_end or date.today())
