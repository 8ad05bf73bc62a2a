"""Who is who in each target: the identity decisions of the roster flows (FLOWS.md 2.0, decision 2).

People keep the district's own ids, because the district's other tools use them too: a student's
``district_student_id``, a staff member's ``district_user_id`` (else ``staff-<user_id>``, as the
seed's examples leave it empty). Objects edusync creates carry a per-tenant prefix, which also marks
them as edusync's (the courses flow leaves such Canvas courses alone): ``<prefix>-term-<id>``,
``<prefix>-section-<id>``, and ``<prefix>-course-<section>`` (one Canvas course per section, the
default model) or ``<prefix>-course-<course>-term-<term>``. No ``:`` or ``.`` in any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.illuminate_records import RosterRecordV1, SectionRecordV1, StaffRecordV1, StudentRecordV1

CourseModel = Literal["section", "course_term"]
_UNSAFE = str.maketrans({":": "-", ".": "-", "/": "-", " ": "-"})


def _safe(value: str) -> str:
    return value.translate(_UNSAFE)


@dataclass(frozen=True)
class RosterIds:
    """The ids a tenant's objects get in every target."""

    prefix: str = "edusync"
    course_model: CourseModel = "section"

    # -- people -------------------------------------------------------------------------------

    @staticmethod
    def student(record: StudentRecordV1 | RosterRecordV1) -> str | None:
        """A student's id everywhere: the district id ("the universal join key"), if Illuminate has one."""
        return record.district_student_id or None

    @staticmethod
    def staff(record: StaffRecordV1) -> str:
        """A staff member's SIS id: the district user id, else ``staff-<user_id>``."""
        return record.district_user_id or f"staff-{record.user_id}"

    @staticmethod
    def student_login(record: StudentRecordV1) -> str | None:
        """The login a student signs in with: the username, else the email, else the district id."""
        return record.username or record.email or record.district_student_id or None

    @staticmethod
    def staff_login(record: StaffRecordV1) -> str:
        """The login of a staff member: the username, else the first email, else the SIS id."""
        return record.username or record.email1 or RosterIds.staff(record)

    # -- objects edusync creates ---------------------------------------------------------------

    def term(self, term_id: str) -> str:
        """The SIS id of a term."""
        return f"{self.prefix}-term-{_safe(term_id)}"

    def section(self, section_id: str) -> str:
        """The SIS id of a section (Canvas ``sis_section_id``, Class ``ext_class_id``)."""
        return f"{self.prefix}-section-{_safe(section_id)}"

    def course(self, section: SectionRecordV1) -> str:
        """The SIS id of the Canvas course a section belongs to, in this tenant's course model."""
        if self.course_model == "section":
            return f"{self.prefix}-course-{_safe(section.section_id)}"
        return f"{self.prefix}-course-{_safe(section.course_id or 'none')}-term-{_safe(section.term_id or 'none')}"

    def owns(self, sis_id: str | None) -> bool:
        """True for an id edusync made for this tenant (the echo rule of the courses flow)."""
        return bool(sis_id) and str(sis_id).startswith(f"{self.prefix}-")


def class_name(course_name: str | None, period: str | None, section_id: str) -> str:
    """A MatrixLMS class name, unique by the section id it embeds: MatrixLMS has no external id
    and looks classes up by name only, and 1,360 of 1,836 simulated sections share course, period
    and site (FLOWS.md 2.5 trap 2)."""
    period_part = f" - P{period}" if period else ""
    return f"{course_name or 'Section'}{period_part} [S{section_id}]"
