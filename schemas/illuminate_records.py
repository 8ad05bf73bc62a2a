"""The Illuminate records that Illuminate change events carry: edusync's own contract.

These mirror what the Illuminate client reads (``worker/clients/illuminate_models.py``) after its
coercion layer: ids as strings, the four boolean encodings as booleans, "NULL" as null, numbers as
decimals, dates as ISO dates. They are declared here, apart from the client, so that a change to
the client's parsing cannot change a published contract unnoticed: a poller maps a client record
onto these (``extra="forbid"``, so a field the client adds fails loudly until it is added here),
and ``schemas/contracts/`` holds the exported JSON Schemas a test compares against.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    """Base of every published Illuminate record."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StudentRecordV1(_Record):
    """A student (GET /Api/Students2/). ``district_student_id`` is the district-wide id other systems use."""

    student_id: str
    district_student_id: str | None = None
    state_student_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    username: str | None = None
    email: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    ethnicity_1: str | None = None
    ethnicity_2: str | None = None
    ethnicity_3: str | None = None
    ethnicity_4: str | None = None
    ethnicity_5: str | None = None
    is_hispanic: bool | None = None
    primary_language: str | None = None
    correspondence_language: str | None = None
    language_fluency: str | None = None
    reclassification_date: date | None = None
    primary_disability: str | None = None
    primary_disability_translation: str | None = None
    us_school_entry_date: date | None = None
    state_school_entry_date: date | None = None
    school_entry_date: date | None = None
    district_entry_date: date | None = None
    parent_education_level: str | None = None
    birth_city: str | None = None
    birth_state: str | None = None
    birth_country: str | None = None
    academic_year: int | None = None
    full_address: str | None = None
    aka_first_name: str | None = None
    aka_middle_name: str | None = None
    aka_last_name: str | None = None
    name_suffix: str | None = None
    aka_name_suffix: str | None = None
    cellphone: str | None = None
    local_lunch_id: str | None = None
    current_homeroom_teacher: str | None = None
    current_homeroom_teacher_id: str | None = None
    gifted_slash_talented: str | None = None
    mobility: str | None = None
    lunch_status: str | None = None
    plan: str | None = None
    service_code: str | None = None


class StaffRecordV1(_Record):
    """A staff user (GET /Api/Users/); a departure arrives as ``active=false``."""

    user_id: str
    district_user_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    email1: str | None = None
    email2: str | None = None
    phone1: str | None = None
    phone2: str | None = None
    username: str | None = None
    state_user_id: str | None = None
    suffix: str | None = None
    name_former_last: str | None = None
    name_former_first: str | None = None
    name_former_middle: str | None = None
    primary_ethnicity: str | None = None
    is_hispanic: bool | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    job_title: str | None = None
    staff_education_level: str | None = None
    hire_date: date | None = None
    exit_date: date | None = None
    active: bool | None = None
    account_id: str | None = None


class SectionRecordV1(_Record):
    """One section-teacher row (GET /Api/MasterSchedule/): a section with two teachers is two rows."""

    section_id: str
    district_section_id: str | None = None
    site_id: str | None = None
    term_id: str | None = None
    term_name: str | None = None
    course_id: str | None = None
    user_id: str | None = None
    period: str | None = None
    academic_year: int | None = None
    room_number: str | None = None
    session_type_id: str | None = None
    district_term_id: str | None = None
    quarter_num: int | None = None
    user_start_date: date | None = None
    user_end_date: date | None = None
    primary_teacher: bool | None = None
    section_name: str | None = None
    hqtcc: str | None = None


class RosterRecordV1(_Record):
    """A student in a section (GET /Api/Roster/); a drop sets ``leave_date``."""

    student_id: str
    district_student_id: str | None = None
    state_student_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    section_id: str
    local_section_id: str | None = None
    site_id: str | None = None
    course_id: str | None = None
    user_id: str | None = None
    entry_date: date | None = None
    leave_date: date | None = None
    grade_level_id: str | None = None
    academic_year: int | None = None
    session_type_id: str | None = None


class EnrollmentRecordV1(_Record):
    """A student at a school (GET /Api/Enrollment/); a transfer ends one row and adds another."""

    student_id: str
    district_student_id: str | None = None
    state_student_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    site_id: str
    entry_date: date
    leave_date: date | None = None
    grade_level_id: str | None = None
    academic_year: int | None = None
    is_primary_ada: bool | None = None
    attendance_category: str | None = None
    enrollment_exit_reason: str | None = None
    session_type_id: str | None = None
    school: str | None = None
    entry_code: str | None = None
    exit_code: str | None = None


class CourseRecordV1(_Record):
    """A course (GET /Api/Courses/)."""

    course_id: str
    school_course_id: str | None = None
    long_name: str | None = None
    short_name: str | None = None
    department_name: str | None = None
    start_grade_level_id: str | None = None
    end_grade_level_id: str | None = None
    site_ids: list[str] = []
    is_active: bool | None = None
    weight: Decimal | None = None
    description: str | None = None
    credits: Decimal | None = None
    has_variable_credits: bool | None = None
    max_credits: Decimal | None = None
    is_specialed: bool | None = None
    max_capacity: int | None = None
    is_intervention: bool | None = None
    nclb_instructional_level: str | None = None
    course_content: str | None = None
    educational_service: str | None = None
    instructional_strategy: str | None = None
    program_funding_source: str | None = None
    cte_funding_provider: str | None = None
    tech_prep: bool | None = None


class TermRecordV1(_Record):
    """A term (GET /Api/Terms/)."""

    term_id: str
    site_id: str | None = None
    term_name: str | None = None
    term_num: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    term_type: str | None = None
    session_type_id: str | None = None
    session_type: str | None = None
    academic_year: int | None = None
    district_term_id: str | None = None


class _ScoreRecord(_Record):
    """Fields of every assessment score row."""

    assessment_id: str
    title: str | None = None
    local_student_id: str
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    date_taken: date | None = None
    points: Decimal | None = None
    points_possible: Decimal | None = None
    percent_correct: Decimal | None = None
    performance_band_level: str | None = None
    performance_band_label: str | None = None
    mastered: bool | None = None


class AssessmentScoreRecordV1(_ScoreRecord):
    """A student's whole-assessment result (AssessmentAggregateStudentResponses)."""

    version: str | None = None
    version_label: str | None = None


class AssessmentGroupScoreRecordV1(_ScoreRecord):
    """A student's result on one reporting group (...ResponsesGroup)."""

    reporting_group: str | None = None


class AssessmentStandardScoreRecordV1(_ScoreRecord):
    """A student's result on one standard (...ResponsesStandard)."""

    academic_benchmark_guid: str | None = None
    standard_code: str | None = None
    standard_description: str | None = None

