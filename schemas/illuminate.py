"""Illuminate change events: an upsert or a delete per entity, and assessment score changes.

Types are ``edusync.illuminate.<kind>.upserted.v1`` and ``edusync.illuminate.<kind>.deleted.v1``.
The subject (and Kafka key) is ``<tenant>/<kind>/<natural key>``, the natural key as
``IlluminateRecord.natural_key()`` renders it (parts joined by "/", "/" and "%" inside a part
percent-escaped). An upsert carries the normalised record (ids as strings, booleans as
booleans, numbers as decimals); a delete carries only the key, because Illuminate has no
deletion signal: a delete means the record was missing from two complete snapshots.

Content hashes here are the first 16 hex digits (64 bits) of the client record's
``content_hash()``, the same value ``edusync._snapshots`` keeps. Records are edusync's own
contract (``schemas/illuminate_records.py``), not the client's parse models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from schemas.illuminate_records import (
    AssessmentGroupScoreRecordV1,
    AssessmentScoreRecordV1,
    AssessmentStandardScoreRecordV1,
    CourseRecordV1,
    EnrollmentRecordV1,
    RosterRecordV1,
    SectionRecordV1,
    StaffRecordV1,
    StudentRecordV1,
    TermRecordV1,
)

HASH_DIGITS = 16


def short_hash(content_hash: str) -> str:
    """The 64-bit prefix of a record's SHA-256 content hash that events and snapshots carry."""
    return content_hash[:HASH_DIGITS]


def join_key(*parts: str) -> str:
    """Join natural-key parts with "/", escaping "%" and "/" inside a part (inverse of ``split_key``)."""
    return "/".join(p.replace("%", "%25").replace("/", "%2F") for p in parts)


def split_key(natural_key: str) -> list[str]:
    """The parts of a natural key, unescaped (inverse of ``join_key``)."""
    return [p.replace("%2F", "/").replace("%25", "%") for p in natural_key.split("/")]


class UpsertedV1(BaseModel):
    """Common fields of every upsert: which record, and its content hash before and after."""

    natural_key: str = Field(description="the record's natural key, parts joined by '/'")
    key_parts: list[str] = Field(description="the natural key's parts, unescaped")
    content_hash: str = Field(description="64-bit prefix (hex) of the normalised record's SHA-256")
    previous_hash: str | None = Field(None, description="the hash last published; null for a new record")


class StudentUpsertedV1(UpsertedV1):
    """A student is new or changed (GET /Api/Students2/)."""

    record: StudentRecordV1


class StaffUpsertedV1(UpsertedV1):
    """A staff user is new or changed (GET /Api/Users/); departures arrive as active=false."""

    record: StaffRecordV1


class SectionUpsertedV1(UpsertedV1):
    """A section-teacher row is new or changed (GET /Api/MasterSchedule/)."""

    record: SectionRecordV1


class RosterUpsertedV1(UpsertedV1):
    """A student-in-section row is new or changed (GET /Api/Roster/); a drop sets leave_date."""

    record: RosterRecordV1


class EnrollmentUpsertedV1(UpsertedV1):
    """A student-at-school row is new or changed (GET /Api/Enrollment/)."""

    record: EnrollmentRecordV1


class CourseUpsertedV1(UpsertedV1):
    """A course is new or changed (GET /Api/Courses/)."""

    record: CourseRecordV1


class TermUpsertedV1(UpsertedV1):
    """A term is new or changed (GET /Api/Terms/)."""

    record: TermRecordV1


class AssessmentScoreUpsertedV1(UpsertedV1):
    """A student's whole-assessment result is new or changed (AssessmentAggregateStudentResponses)."""

    record: AssessmentScoreRecordV1


class AssessmentGroupScoreUpsertedV1(UpsertedV1):
    """A student's result on one reporting group is new or changed (...ResponsesGroup)."""

    record: AssessmentGroupScoreRecordV1


class AssessmentStandardScoreUpsertedV1(UpsertedV1):
    """A student's result on one standard is new or changed (...ResponsesStandard)."""

    record: AssessmentStandardScoreRecordV1


class DeletedV1(BaseModel):
    """A record that vanished upstream: missing from two complete, consistent snapshots."""

    natural_key: str
    key_parts: list[str]
    last_content_hash: str = Field(description="the hash of the record as last published")
    detected_by: Literal["snapshot_diff", "score_reconciliation"]
    walk: int = Field(description="the poller's walk that confirmed the deletion")


# kind -> upsert payload. The kind names the entity in event types, subjects and snapshot keys.
UPSERT_PAYLOADS: dict[str, type[UpsertedV1]] = {
    "student": StudentUpsertedV1,
    "staff": StaffUpsertedV1,
    "section": SectionUpsertedV1,
    "roster": RosterUpsertedV1,
    "enrollment": EnrollmentUpsertedV1,
    "course": CourseUpsertedV1,
    "term": TermUpsertedV1,
    "assessment_score": AssessmentScoreUpsertedV1,
    "assessment_group_score": AssessmentGroupScoreUpsertedV1,
    "assessment_standard_score": AssessmentStandardScoreUpsertedV1,
}

# Topic entity (worker.topics.ILLUMINATE_ENTITIES) -> kind.
ENTITY_KIND = {
    "students": "student", "staff": "staff", "sections": "section", "rosters": "roster",
    "enrollments": "enrollment", "courses": "course", "terms": "term",
}

UPSERTED: dict[str, str] = {kind: f"edusync.illuminate.{kind}.upserted.v1" for kind in UPSERT_PAYLOADS}
DELETED: dict[str, str] = {kind: f"edusync.illuminate.{kind}.deleted.v1" for kind in UPSERT_PAYLOADS}
EVENT_TYPES: dict[str, type[BaseModel]] = {
    **{UPSERTED[kind]: payload for kind, payload in UPSERT_PAYLOADS.items()},
    **{DELETED[kind]: DeletedV1 for kind in UPSERT_PAYLOADS},
}

STUDENT_UPSERTED = UPSERTED["student"]
STUDENT_DELETED = DELETED["student"]
ASSESSMENT_SCORE_UPSERTED = UPSERTED["assessment_score"]
ASSESSMENT_SCORE_DELETED = DELETED["assessment_score"]
