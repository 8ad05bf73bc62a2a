"""Typed Illuminate records: one pydantic model per entity, coercing as they validate.

Every field type below applies a rule of ``illuminate_coerce`` (ids -> str, the four boolean
encodings -> bool, "NULL" -> None, numeric strings -> Decimal, list strings -> tuple), so a
record validates the same whether a value arrived as a number or a string.

Natural keys follow section 7 of the reference (ref L3466-L3493) and are rendered as one
string, parts joined by "/" (a "/" or "%" inside a part is percent-escaped), because the
worker uses them in Kafka keys such as ``tenant/<natural key>``.

``content_hash()`` is a SHA-256 over the normalised declared fields (sorted JSON). Undeclared
extra fields are ignored (ref L3462: tolerate undocumented extras) and denormalised copies
of another entity's attributes (a student's name on a roster row or a score) are excluded,
so renaming a student changes one student hash, not every roster row and score.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from worker.clients.illuminate_coerce import (
    coerce_bool,
    coerce_date_text,
    coerce_decimal,
    coerce_id,
    coerce_int,
    coerce_list,
    coerce_text,
)

Id = Annotated[str | None, BeforeValidator(coerce_id)]
RequiredId = Annotated[str, BeforeValidator(coerce_id)]
Flag = Annotated[bool | None, BeforeValidator(coerce_bool)]
Text = Annotated[str | None, BeforeValidator(coerce_text)]
Day = Annotated[date | None, BeforeValidator(coerce_date_text)]
Stamp = Annotated[datetime | None, BeforeValidator(coerce_date_text)]
Number = Annotated[Decimal | None, BeforeValidator(coerce_decimal)]
Int = Annotated[int | None, BeforeValidator(coerce_int)]
TextList = Annotated[tuple[str, ...], BeforeValidator(coerce_list)]


def join_key(*parts: str) -> str:
    """Join natural-key parts with "/", escaping "%" and "/" inside a part."""
    return "/".join(p.replace("%", "%25").replace("/", "%2F") for p in parts)


class IlluminateRecord(BaseModel):
    """Base of every record: frozen, extras ignored, keyed and hashable by content."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # Fields left out of content_hash(): copies of another entity's attributes.
    hash_exclude: ClassVar[frozenset[str]] = frozenset()

    def key_parts(self) -> tuple[str, ...]:
        """The natural key as a tuple of strings."""
        raise NotImplementedError

    def natural_key(self) -> str:
        """The natural key as one string (parts joined by "/")."""
        return join_key(*self.key_parts())

    def content_hash(self) -> str:
        """SHA-256 (hex) of the normalised declared fields, stable across processes."""
        data = self.model_dump(mode="json", exclude=set(self.hash_exclude))
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _require(value: str | None, name: str) -> str:
    if value is None:
        raise ValueError(f"natural key part {name} is missing")
    return value


class Site(IlluminateRecord):
    """GET /Api/Sites/ (ref L400-L432). Key: ``site_id``."""

    site_id: RequiredId
    local_site_code: Id = None
    site_name: Text = None
    state_school_id: Id = None
    start_grade_level_id: Id = None
    end_grade_level_id: Id = None
    site_type_name: Text = None
    address: Text = None
    address2: Text = None
    city: Text = None
    state: Text = None
    zip: Text = None
    num_hours: Number = None
    num_weeks: Number = None
    parent_site_id: Id = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.site_id,)


class Student(IlluminateRecord):
    """GET /Api/Students/ and /Api/Students2/ (ref L457-L627). Key: internal ``student_id``;
    ``district_student_id`` is the cross-endpoint join key (ref L3495-L3501)."""

    student_id: RequiredId
    district_student_id: Id = None
    state_student_id: Id = None
    last_name: Text = None
    first_name: Text = None
    middle_name: Text = None
    username: Text = None
    email: Text = None
    birth_date: Day = None
    gender: Text = None
    ethnicity_1: Text = None
    ethnicity_2: Text = None
    ethnicity_3: Text = None
    ethnicity_4: Text = None
    ethnicity_5: Text = None
    is_hispanic: Flag = None
    primary_language: Text = None
    correspondence_language: Text = None
    language_fluency: Text = None
    reclassification_date: Day = None
    # seed L322/L408: the second example record spells it `primary_disibility` (ref L465).
    primary_disability: Text = Field(
        None, validation_alias=AliasChoices("primary_disability", "primary_disibility")
    )
    primary_disability_translation: Text = None
    us_school_entry_date: Day = None
    state_school_entry_date: Day = None
    school_entry_date: Day = None
    district_entry_date: Day = None
    parent_education_level: Text = None
    birth_city: Text = None
    birth_state: Text = None
    birth_country: Text = None
    academic_year: Int = None
    full_address: Text = None
    aka_first_name: Text = None
    aka_middle_name: Text = None
    aka_last_name: Text = None
    name_suffix: Text = None
    aka_name_suffix: Text = None
    cellphone: Text = None
    local_lunch_id: Id = None
    # Students only (Students2 is "without home room teachers", ref L547).
    current_homeroom_teacher: Text = None
    current_homeroom_teacher_id: Id = None
    # Students2 with include_programs=true (ref L548).
    gifted_slash_talented: Text = None
    mobility: Text = None
    lunch_status: Text = None
    plan: Text = None
    service_code: Text = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.student_id,)


class User(IlluminateRecord):
    """GET /Api/Users/ (ref L865-L926): staff and teachers. Key: ``user_id``."""

    user_id: RequiredId
    district_user_id: Id = None
    last_name: Text = None
    first_name: Text = None
    middle_name: Text = None
    birth_date: Day = None
    gender: Text = None
    email1: Text = None
    email2: Text = None
    phone1: Text = None
    phone2: Text = None
    username: Text = None
    state_user_id: Id = None
    suffix: Text = None
    name_former_last: Text = None
    name_former_first: Text = None
    name_former_middle: Text = None
    primary_ethnicity: Text = None
    is_hispanic: Flag = None
    address: Text = None
    city: Text = None
    state: Text = None
    zip: Text = None
    job_title: Text = None
    staff_education_level: Text = None
    hire_date: Day = None
    exit_date: Day = None
    active: Flag = None
    account_id: Id = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.user_id,)


class Course(IlluminateRecord):
    """GET /Api/Courses/ (ref L1081-L1146). Key: ``course_id``."""

    course_id: RequiredId
    school_course_id: Id = None
    long_name: Text = None
    short_name: Text = None
    department_name: Text = None
    start_grade_level_id: Id = None
    end_grade_level_id: Id = None
    site_ids: TextList = ()
    is_active: Flag = None
    weight: Number = None
    description: Text = None
    credits: Number = None
    has_variable_credits: Flag = None
    max_credits: Number = None
    is_specialed: Flag = None
    max_capacity: Int = None
    is_intervention: Flag = None
    nclb_instructional_level: Text = None
    course_content: Text = None
    educational_service: Text = None
    instructional_strategy: Text = None
    program_funding_source: Text = None
    cte_funding_provider: Text = None
    tech_prep: Flag = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.course_id,)


class Term(IlluminateRecord):
    """GET /Api/Terms/ (ref L1027-L1079). Key: ``term_id``."""

    term_id: RequiredId
    site_id: Id = None
    term_name: Text = None
    term_num: Int = None
    # The field list says `state_date`, the example `start_date` (ref L1033); accept both.
    start_date: Day = Field(None, validation_alias=AliasChoices("start_date", "state_date"))
    end_date: Day = None
    term_type: Text = None
    session_type_id: Id = None
    session_type: Text = None
    academic_year: Int = None
    district_term_id: Id = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.term_id,)


class Section(IlluminateRecord):
    """GET /Api/MasterSchedule/ (ref L1205-L1264). One row per section *and teacher*
    (ref L1211, L3476), so the key is ``section_id/user_id``."""

    section_id: RequiredId
    district_section_id: Id = None
    site_id: Id = None
    term_id: Id = None
    term_name: Text = None
    course_id: Id = None
    user_id: Id = None
    period: Text = None
    academic_year: Int = None
    room_number: Text = None
    session_type_id: Id = None
    district_term_id: Id = None
    quarter_num: Int = None
    user_start_date: Day = None
    user_end_date: Day = None
    primary_teacher: Flag = None
    section_name: Text = None
    hqtcc: Text = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.section_id, self.user_id or "")


class RosterRow(IlluminateRecord):
    """GET /Api/Roster/ (ref L1266-L1323): a student in a section. Key: ``section_id/student_id``
    (one enrolment per student per section, as Canvas models it; ``entry_date`` is content,
    so a re-entry after a drop updates the row instead of creating a second one; ref L3481
    lists entry_date in the key, which would turn every re-entry into delete + insert)."""

    hash_exclude: ClassVar[frozenset[str]] = frozenset(
        {"last_name", "first_name", "middle_name", "birth_date"}
    )

    student_id: RequiredId
    district_student_id: Id = None
    state_student_id: Id = None
    last_name: Text = None
    first_name: Text = None
    middle_name: Text = None
    birth_date: Day = None
    section_id: RequiredId
    local_section_id: Id = None
    site_id: Id = None
    course_id: Id = None
    user_id: Id = None
    entry_date: Day = None
    leave_date: Day = None
    grade_level_id: Id = None
    academic_year: Int = None
    session_type_id: Id = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.section_id, self.student_id)


class Enrollment(IlluminateRecord):
    """GET /Api/Enrollment/ (ref L1148-L1203): a student at a school. No record id; key
    ``student_id/site_id/entry_date`` (ref L3480), so a transfer ends one row and adds one."""

    hash_exclude: ClassVar[frozenset[str]] = frozenset(
        {"last_name", "first_name", "middle_name", "birth_date"}
    )

    student_id: RequiredId
    district_student_id: Id = None
    state_student_id: Id = None
    last_name: Text = None
    first_name: Text = None
    middle_name: Text = None
    birth_date: Day = None
    site_id: RequiredId
    entry_date: date
    leave_date: Day = None
    grade_level_id: Id = None
    academic_year: Int = None
    is_primary_ada: Flag = None
    attendance_category: Text = None
    enrollment_exit_reason: Text = None
    session_type_id: Id = None
    school: Text = None
    entry_code: Text = None
    exit_code: Text = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.student_id, self.site_id, self.entry_date.isoformat())


class Assessment(IlluminateRecord):
    """GET /Api/Assessments/ (ref L1325-L1374). Key: ``assessment_id`` (a number or a string
    in the same response, seed L1172)."""

    assessment_id: RequiredId
    local_assessment_id: Id = None
    title: Text = None
    description: Text = None
    author_id: Id = None
    district_author_id: Id = None
    author_first: Text = None
    author_last: Text = None
    created_at: Stamp = None
    updated_at: Stamp = None
    scope_id: Id = None
    scope: Text = None
    subject_id: Id = None
    subject: Text = None
    grade_levels: TextList = ()

    def key_parts(self) -> tuple[str, ...]:
        return (self.assessment_id,)


class _ScoreBase(IlluminateRecord):
    """Fields shared by the three AssessmentAggregateStudentResponses variants (ref L1413-L1592)."""

    # The student's name and the assessment title belong to other entities.
    hash_exclude: ClassVar[frozenset[str]] = frozenset(
        {"title", "first_name", "last_name", "middle_name"}
    )

    assessment_id: RequiredId
    title: Text = None
    local_student_id: RequiredId
    first_name: Text = None
    last_name: Text = None
    middle_name: Text = None
    date_taken: Day = None
    points: Number = None
    points_possible: Number = None
    percent_correct: Number = None
    performance_band_level: Text = None
    performance_band_label: Text = None
    mastered: Flag = None


class AssessmentScore(_ScoreBase):
    """GET /Api/AssessmentAggregateStudentResponses/ (ref L1413). Key:
    ``assessment_id/local_student_id``: ref L3486 marks version and date_taken as uncertain
    key parts; they are content here, so a re-take is an update of the student's score (the
    scores topic is keyed assessment/student, DESIGN.md)."""

    version: Text = None
    version_label: Text = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.assessment_id, self.local_student_id)


class AssessmentGroupScore(_ScoreBase):
    """GET /Api/AssessmentAggregateStudentResponsesGroup/ (ref L1476): one row per question
    group. Key: ``assessment_id/local_student_id/reporting_group`` (ref L3486)."""

    reporting_group: Text = None

    def key_parts(self) -> tuple[str, ...]:
        return (self.assessment_id, self.local_student_id, _require(self.reporting_group, "reporting_group"))


class AssessmentStandardScore(_ScoreBase):
    """GET /Api/AssessmentAggregateStudentResponsesStandard/ (ref L1534): one row per standard.
    Key: ``assessment_id/local_student_id/academic_benchmark_guid``, falling back to
    ``standard_code`` when the guid is empty (ref L3486)."""

    academic_benchmark_guid: Text = None
    standard_code: Text = None
    standard_description: Text = None

    def key_parts(self) -> tuple[str, ...]:
        standard = self.academic_benchmark_guid or self.standard_code
        return (self.assessment_id, self.local_student_id, _require(standard, "academic_benchmark_guid"))


class ScoreSubmission(BaseModel):
    """One element of the POST /Api/Assessment/{id}/Scores/ body (ref L3231-L3262)."""

    model_config = ConfigDict(extra="forbid")

    local_student_id: str
    responses: list[str]
    version: int | None = None
    text_responses: list[str] | None = None
    date_taken: date | None = None


class ScoreSubmissionResult(BaseModel):
    """The POST Scores response (ref L3250-L3255); the counts' semantics are ambiguous."""

    model_config = ConfigDict(extra="allow")

    students_count: Int = None
    responses_count: Int = None
    rejected_responses_count: Int = None
    rejected_responses_details: list[dict[str, Any]] = Field(default_factory=list)


RECORD_MODELS: dict[str, type[IlluminateRecord]] = {
    "Sites": Site,
    "Students": Student,
    "Students2": Student,
    "Users": User,
    "Courses": Course,
    "Terms": Term,
    "MasterSchedule": Section,
    "Roster": RosterRow,
    "Enrollment": Enrollment,
    "Assessments": Assessment,
    "AssessmentAggregateStudentResponses": AssessmentScore,
    "AssessmentAggregateStudentResponsesGroup": AssessmentGroupScore,
    "AssessmentAggregateStudentResponsesStandard": AssessmentStandardScore,
}
