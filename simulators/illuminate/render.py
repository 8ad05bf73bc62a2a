"""Records rendered as Illuminate sends them, typing quirks included (ref L3348-L3362).

- ids are JSON numbers on Students, Users, Courses, Terms, MasterSchedule, Roster, Enrollment
  and Sites; strings on the aggregates; mixed on Assessments (seed L1172: 1014 and "999");
- booleans are "t"/"f" (ref L284);
- Students carry the literal string "NULL" in `aka_*`, `name_suffix`, `cellphone` (seed L322), and
  every odd student id spells `primary_disibility` as the second example record does (ref L465);
- scores are strings ("5", "50.00"; seed L1282); Courses `site_ids` and Assessments
  `grade_levels` are comma-separated strings (ref L291).

Demographic detail nobody mutates is derived from the id, so records stay small.
"""

from __future__ import annotations

import uuid
from typing import Any

from simulators.illuminate.state import (
    AssessmentRec,
    CourseRec,
    District,
    EnrollmentRec,
    ScoreRec,
    SectionRec,
    SiteRec,
    StudentRec,
    TermRec,
    UserRec,
    unpack,
)

ETHNICITIES = ("White", "Hispanic", "Asian", "Black or African American", "Filipino", "Two or More Races")
LANGUAGES = ("ENGLISH", "SPANISH", "VIETNAMESE", "MANDARIN", "TAGALOG")
FLUENCY = ("English Only", "English Learner", "Initially Fluent English Proficient",
           "Reclassified Fluent English Proficient")
PARENT_EDUCATION = ("Graduate School/Post Graduate", "Some College", "College Graduate",
                    "High School Graduate", "Not a High School Graduate")
LUNCH = ("FL", "RP", "PD")
BANDS = ((90, "5", "Advanced"), (75, "4", "Proficient"), (60, "3", "Basic"), (40, "2", "Below Basic"),
         (0, "1", "Far Below Basic"))
_ACCOUNT_NS = uuid.UUID("6eab9ef2-db94-3394-804d-7dc061852d90")


def site(s: SiteRec) -> dict[str, Any]:
    """A Sites array element (seed L213)."""
    return {
        "site_id": s.site_id, "site_name": s.site_name, "state_school_id": s.state_school_id,
        "start_grade_level_id": s.start_grade_level_id, "end_grade_level_id": s.end_grade_level_id,
        "site_type_name": s.site_type_name, "address": f"{100 + s.site_id} Acme Street", "address2": None,
        "city": "Acme City", "state": "CA", "zip": 90000, "local_site_code": s.local_site_code,
        "num_hours": None, "num_weeks": None, "parent_site_id": s.parent_site_id,
    }


def _student_core(s: StudentRec) -> dict[str, Any]:
    return {
        "student_id": s.student_id, "district_student_id": s.district_student_id,
        "state_student_id": s.state_student_id, "last_name": s.last_name, "first_name": s.first_name,
        "middle_name": s.middle_name,
    }


def student(d: District, s: StudentRec, *, homeroom: bool, programs: bool, typos: bool) -> dict[str, Any]:
    """A Students (``homeroom``) or Students2 (``programs`` with include_programs) record."""
    sid = s.student_id
    # Two ids in seven fall back to English, so it is the most common language.
    lang = LANGUAGES[sid % 7] if sid % 7 < len(LANGUAGES) else "ENGLISH"
    out = _student_core(s)
    out.update({
        "username": None,
        "email": f"{s.first_name}.{s.last_name}.{s.district_student_id}@students.edusync.test".lower(),
        "birth_date": s.birth_date, "gender": s.gender, "ethnicity_1": ETHNICITIES[sid % len(ETHNICITIES)],
        "ethnicity_2": None, "ethnicity_3": None, "ethnicity_4": None, "ethnicity_5": None,
        "is_hispanic": "t" if ETHNICITIES[sid % len(ETHNICITIES)] == "Hispanic" else "f",
        "primary_language": lang, "correspondence_language": lang,
        "language_fluency": FLUENCY[0] if lang == "ENGLISH" else FLUENCY[sid % 3 + 1],
        "reclassification_date": None,
        ("primary_disibility" if typos and sid % 2 else "primary_disability"): None,
        "primary_disability_translation": None,
        "us_school_entry_date": s.entry_date if sid % 3 else None, "state_school_entry_date": s.entry_date,
        "school_entry_date": s.school_entry_date, "district_entry_date": s.entry_date,
        "parent_education_level": PARENT_EDUCATION[sid % len(PARENT_EDUCATION)],
        "birth_city": "Acme City", "birth_state": "CA", "birth_country": "United States Of America",
        "academic_year": d.academic_year,
        "full_address": f"{100 + sid % 9000} Hanford St, Acme City, CA 90000",
        "aka_first_name": "NULL", "aka_middle_name": "NULL", "aka_last_name": "NULL",
        "name_suffix": "NULL", "aka_name_suffix": "NULL", "cellphone": "NULL",
        "local_lunch_id": str(s.district_student_id + 10_000),
    })
    if homeroom:
        teacher = d.users.rows.get(s.homeroom_user_id) if s.homeroom_user_id is not None else None
        out["current_homeroom_teacher"] = f"{teacher.last_name}, {teacher.first_name}" if teacher else None
        out["current_homeroom_teacher_id"] = teacher.user_id if teacher else None
    if programs:
        out.update({
            "gifted_slash_talented": "Y" if sid % 11 == 0 else "N", "mobility": "N",
            "lunch_status": LUNCH[sid % len(LUNCH)], "plan": "Y" if sid % 17 == 0 else "N",
            "service_code": "GE",
        })
    return out


def user(u: UserRec) -> dict[str, Any]:
    """A Users record (seed L711)."""
    login = f"{u.first_name[0]}{u.last_name}{u.user_id}".lower()
    return {
        "user_id": u.user_id, "district_user_id": u.district_user_id, "last_name": u.last_name,
        "first_name": u.first_name, "middle_name": u.middle_name, "birth_date": u.birth_date,
        "gender": u.gender, "email1": f"{login}@staff.edusync.test" if u.has_email else None, "username": login,
        "state_user_id": u.state_user_id, "suffix": None, "name_former_last": None,
        "name_former_first": None, "name_former_middle": None,
        "primary_ethnicity": ETHNICITIES[u.user_id % len(ETHNICITIES)], "is_hispanic": "f",
        "address": None, "city": None, "state": None, "zip": None, "job_title": u.job_title,
        "staff_education_level": "Baccalaureate Plus 30", "hire_date": u.hire_date,
        "exit_date": u.exit_date, "active": "t" if u.active else "f",
        "account_id": str(uuid.uuid5(_ACCOUNT_NS, str(u.user_id))),
    }


def course(c: CourseRec) -> dict[str, Any]:
    """A Courses record (seed L937), `site_ids` as a comma-separated string."""
    return {
        "course_id": c.course_id, "school_course_id": c.school_course_id, "long_name": c.long_name,
        "short_name": c.short_name, "department_name": c.department_name,
        "start_grade_level_id": c.start_grade_level_id, "end_grade_level_id": c.end_grade_level_id,
        "site_ids": ", ".join(str(s) for s in c.site_ids), "is_active": "t" if c.is_active else "f",
        "weight": None, "description": None, "credits": "5.00", "has_variable_credits": "f",
        "max_credits": None, "is_specialed": "f", "max_capacity": 30, "is_intervention": "f",
        "nclb_instructional_level": "Secondary NCLB Core Academic Course", "course_content": None,
        "educational_service": None, "instructional_strategy": None, "program_funding_source": None,
        "cte_funding_provider": None, "tech_prep": "f",
    }


def term(t: TermRec) -> dict[str, Any]:
    """A Terms record (seed L871): `start_date`, as in the example, not the documented `state_date`."""
    return {
        "term_id": t.term_id, "site_id": t.site_id, "term_name": t.term_name, "term_num": t.term_num,
        "start_date": t.start_date, "end_date": t.end_date, "term_type": "Full Year",
        "session_type_id": 1, "session_type": "Normal", "academic_year": t.academic_year,
        "district_term_id": None,
    }


def section(d: District, s: SectionRec) -> dict[str, Any]:
    """A MasterSchedule row (seed L1057), undocumented `hqtcc` included."""
    t = d.terms.rows.get(s.term_id)
    return {
        "section_id": s.section_id, "district_section_id": s.district_section_id, "site_id": s.site_id,
        "term_id": s.term_id, "term_name": t.term_name if t else None, "course_id": s.course_id,
        "user_id": s.user_id, "period": s.period, "academic_year": d.academic_year,
        "room_number": s.room_number, "session_type_id": 1, "district_term_id": None, "quarter_num": None,
        "user_start_date": s.user_start_date, "user_end_date": s.user_end_date, "primary_teacher": "t",
        "section_name": s.section_name, "hqtcc": "N",
    }


def roster(d: District, key: int, value: tuple[str, str | None]) -> dict[str, Any]:
    """A Roster row (seed L1118) plus the documented `local_section_id`."""
    section_id, student_id = unpack(key)
    s = d.students.rows[student_id]
    sec = d.sections.rows[section_id]
    out = _student_core(s)
    out.update({
        "birth_date": s.birth_date, "section_id": section_id, "local_section_id": sec.district_section_id,
        "site_id": sec.site_id, "course_id": sec.course_id, "user_id": sec.user_id,
        "entry_date": value[0], "leave_date": value[1], "grade_level_id": s.grade_level_id,
        "academic_year": d.academic_year, "session_type_id": 1,
    })
    return out


def enrollment(d: District, e: EnrollmentRec) -> dict[str, Any]:
    """An Enrollment row (seed L996)."""
    s = d.students.rows[e.student_id]
    school = d.sites.rows.get(e.site_id)
    out = _student_core(s)
    out.update({
        "birth_date": s.birth_date, "site_id": e.site_id, "entry_date": e.entry_date,
        "leave_date": e.leave_date, "grade_level_id": e.grade_level_id, "academic_year": d.academic_year,
        "is_primary_ada": "t", "attendance_category": "Regular Attendance Program",
        "enrollment_exit_reason": "Transferred" if e.exit_code else None, "session_type_id": 1,
        "school": school.site_name if school else None, "entry_code": "02", "exit_code": e.exit_code,
    })
    return out


def assessment(d: District, a: AssessmentRec) -> dict[str, Any]:
    """An Assessments record (seed L1172): even ids as numbers, odd ids as strings."""
    author = d.users.rows.get(a.author_id)
    return {
        "assessment_id": a.assessment_id if a.assessment_id % 2 == 0 else str(a.assessment_id),
        "local_assessment_id": a.local_assessment_id, "title": a.title,
        "description": f"{a.subject} benchmark given at site {a.site_id}.", "author_id": a.author_id,
        "district_author_id": author.district_user_id if author else None,
        "author_first": author.first_name if author else None,
        "author_last": author.last_name if author else None,
        "scope_id": 1, "scope": "District Benchmark", "subject_id": a.subject_id, "subject": a.subject,
        "grade_levels": a.grade_levels, "created_at": a.created_at, "updated_at": a.updated_at,
    }


def split_points(points: int, items: int, parts: int) -> list[tuple[int, int]]:
    """(points, possible) of each reporting group or standard: items split evenly, the total
    split in proportion, so a changed total changes at least one part."""
    sizes = [items // parts + (1 if i < items % parts else 0) for i in range(parts)]
    got = [points * size // items if items else 0 for size in sizes]
    got[-1] = min(sizes[-1], points - sum(got[:-1]))
    return list(zip(got, sizes, strict=True))


def _result(points: int, possible: int) -> dict[str, Any]:
    percent = 100.0 * points / possible if possible else 0.0
    level, label = next((lv, lb) for floor, lv, lb in BANDS if percent >= floor)
    return {
        "points": str(points), "points_possible": str(possible), "percent_correct": f"{percent:.2f}",
        "performance_band_level": level, "performance_band_label": label,
        "mastered": "t" if percent >= 80 else "f",
    }


def _score_head(d: District, key: int) -> tuple[AssessmentRec, StudentRec, dict[str, Any]]:
    aid, student_id = unpack(key)
    a = d.assessments.rows[aid]
    s = d.students.rows[student_id]
    return a, s, {"assessment_id": str(aid), "title": a.title}


def _student_names(s: StudentRec) -> dict[str, Any]:
    return {"local_student_id": str(s.district_student_id), "first_name": s.first_name,
            "last_name": s.last_name, "middle_name": s.middle_name}


def score(d: District, key: int, rec: ScoreRec) -> dict[str, Any]:
    """An AssessmentAggregateStudentResponses row (seed L1282), every value a string."""
    a, s, out = _score_head(d, key)
    out.update(_student_names(s))
    out.update({"version": str(rec.version), "version_label": f"Version {rec.version}",
                "date_taken": rec.date_taken})
    out.update(_result(rec.points, a.items))
    return out


def group_score(d: District, key: int, rec: ScoreRec, index: int) -> dict[str, Any]:
    """An ...Group row (seed L1344): one per reporting group."""
    a, s, out = _score_head(d, key)
    out["reporting_group"] = a.groups[index]
    out.update(_student_names(s))
    out["date_taken"] = rec.date_taken
    out.update(_result(*split_points(rec.points, a.items, len(a.groups))[index]))
    return out


def standard_score(d: District, key: int, rec: ScoreRec, index: int) -> dict[str, Any]:
    """An ...Standard row (seed L1408): one per standard."""
    a, s, out = _score_head(d, key)
    guid, code, description = a.standards[index]
    out.update({"academic_benchmark_guid": guid, "standard_code": code, "standard_description": description})
    out.update(_student_names(s))
    out["date_taken"] = rec.date_taken
    out.update(_result(*split_points(rec.points, a.items, len(a.standards))[index]))
    return out
