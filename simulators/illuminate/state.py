"""The simulated district: compact slotted records in keyed tables, plus the clock.

Sized for 200,000 students: records are slotted dataclasses holding ints and shared
strings, roster and score rows are keyed by packed ints, and each table keeps a lazily
sorted key list so a page is a slice of that list, never a copy of the records.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Packed int keys: (high << 32) | low, so sorting the ints sorts by (high, low).
_SHIFT = 32
_LOW = (1 << _SHIFT) - 1


def pack(high: int, low: int) -> int:
    """Pack two non-negative ids into one sortable int key."""
    return (high << _SHIFT) | low


def unpack(key: int) -> tuple[int, int]:
    """Inverse of ``pack``."""
    return key >> _SHIFT, key & _LOW


class Table(Generic[K, V]):
    """A dict of rows plus a sorted key list rebuilt only after inserts or deletes."""

    __slots__ = ("_order", "rows")

    def __init__(self) -> None:
        self.rows: dict[K, V] = {}
        self._order: list[K] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def order(self) -> list[K]:
        """Keys in ascending order; callers must not mutate the list."""
        if self._order is None:
            # Keys are mostly inserted in ascending order, so timsort is close to linear.
            self._order = sorted(self.rows)  # type: ignore[type-var]
        return self._order

    def put(self, key: K, row: V) -> None:
        """Insert or replace a row."""
        if key not in self.rows:
            self._order = None
        self.rows[key] = row

    def delete(self, key: K) -> V:
        """Remove a row for good: no tombstone (ref L3368: hard deletes leave no trace)."""
        self._order = None
        return self.rows.pop(key)

    def load(self, rows: dict[K, V]) -> None:
        """Replace every row at once (seeding)."""
        self.rows = rows
        self._order = None


@dataclass(slots=True)
class SiteRec:
    """A school, or the district itself (site 1, its own parent, seed L213)."""

    site_id: int
    site_name: str
    parent_site_id: int
    site_type_name: str
    state_school_id: int
    local_site_code: str | None
    start_grade_level_id: int
    end_grade_level_id: int


@dataclass(slots=True)
class StudentRec:
    """A student; demographic detail is derived from the id when rendered."""

    student_id: int
    district_student_id: int
    state_student_id: int
    first_name: str
    middle_name: str
    last_name: str
    birth_date: str
    gender: str
    site_id: int
    grade_level_id: int
    entry_date: str
    # Entry date at the current school: with site_id it names the current enrolment row.
    school_entry_date: str
    homeroom_user_id: int | None


@dataclass(slots=True)
class UserRec:
    """A staff member."""

    user_id: int
    district_user_id: str | None
    state_user_id: int
    first_name: str
    middle_name: str
    last_name: str
    birth_date: str
    gender: str
    site_id: int
    job_title: str
    hire_date: str
    exit_date: str | None
    active: bool
    # Real districts have staff without an address on file; such a teacher's section cannot
    # become a Class class (FLOWS.md 2.4 trap 5). Only tests set it.
    has_email: bool = True


@dataclass(slots=True)
class CourseRec:
    """A course offered at one or more sites."""

    course_id: int
    school_course_id: int
    long_name: str
    short_name: str
    department_name: str
    site_ids: tuple[int, ...]
    start_grade_level_id: int
    end_grade_level_id: int
    is_active: bool


@dataclass(slots=True)
class TermRec:
    """A term of one site's session."""

    term_id: int
    site_id: int
    term_name: str
    term_num: int
    start_date: str
    end_date: str
    academic_year: int


@dataclass(slots=True)
class SectionRec:
    """A section with its (single) teacher assignment."""

    section_id: int
    district_section_id: str | None
    site_id: int
    term_id: int
    course_id: int
    user_id: int
    period: str
    room_number: int
    section_name: str
    user_start_date: str
    user_end_date: str


@dataclass(slots=True)
class EnrollmentRec:
    """A student's enrolment at a school; key (student_id, site_id, entry_date)."""

    student_id: int
    site_id: int
    entry_date: str
    leave_date: str | None
    grade_level_id: int
    exit_code: str | None


@dataclass(slots=True)
class AssessmentRec:
    """An assessment, given at one site, with its reporting groups and standards."""

    assessment_id: int
    local_assessment_id: str
    title: str
    subject_id: int
    subject: str
    author_id: int
    grade_levels: str
    created_at: str
    updated_at: str
    site_id: int
    items: int
    groups: tuple[str, ...]
    standards: tuple[tuple[str, str, str], ...]  # (academic_benchmark_guid, standard_code, description)


@dataclass(slots=True)
class ScoreRec:
    """One student's aggregate result on an assessment; ``modified`` drives modified_after."""

    points: int
    version: int
    date_taken: str
    modified: str


# A roster row's value: (entry_date, leave_date). Keyed by pack(section_id, student_id).
RosterVal = tuple[str, str | None]


def academic_year_of(day: date) -> int:
    """Academic years are named by their ending year: 2013-2014 is 2014 (ref L247)."""
    return day.year + 1 if day.month >= 8 else day.year


@dataclass
class District:
    """Every table of one simulated district, the clock and a change counter."""

    clock: date
    sites: Table[int, SiteRec] = field(default_factory=Table)
    students: Table[int, StudentRec] = field(default_factory=Table)
    users: Table[int, UserRec] = field(default_factory=Table)
    courses: Table[int, CourseRec] = field(default_factory=Table)
    terms: Table[int, TermRec] = field(default_factory=Table)
    sections: Table[int, SectionRec] = field(default_factory=Table)
    enrollments: Table[tuple[int, int, str], EnrollmentRec] = field(default_factory=Table)
    roster: Table[int, RosterVal] = field(default_factory=Table)
    assessments: Table[int, AssessmentRec] = field(default_factory=Table)
    scores: Table[int, ScoreRec] = field(default_factory=Table)
    # district_student_id -> student_id, for the aggregates and POST Scores (local ids only).
    by_district_id: dict[int, int] = field(default_factory=dict)
    academic_year: int = 0
    session_start: str = ""
    session_end: str = ""
    version: int = 0
    next_ids: dict[str, int] = field(default_factory=dict)
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.academic_year:
            self.set_session(self.clock)

    def set_session(self, day: date) -> None:
        """Derive the session containing ``day``: mid-August to mid-June."""
        self.academic_year = academic_year_of(day)
        self.session_start = date(self.academic_year - 1, 8, 15).isoformat()
        self.session_end = date(self.academic_year, 6, 14).isoformat()

    @property
    def today(self) -> str:
        """The clock as YYYY-MM-DD."""
        return self.clock.isoformat()

    def yesterday(self) -> str:
        """The day before the clock."""
        return (self.clock - timedelta(days=1)).isoformat()

    def in_session_today(self) -> str:
        """ "today (or nearest in session date)" (ref L256)."""
        return min(max(self.today, self.session_start), self.session_end)

    def touch(self) -> None:
        """Record that data changed: cached query results become stale."""
        self.version += 1
        self._cache.clear()

    def next_id(self, kind: str) -> int:
        """The next unused id of ``kind``."""
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    def cached(self, key: tuple[Any, ...], compute: Callable[[], V]) -> V:
        """Memoise a query result until the next change (paging re-reads the same keys)."""
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= 64:
                self._cache.pop(next(iter(self._cache)))
            hit = self._cache[key] = compute()
        return hit

    def counts(self) -> dict[str, int]:
        """Row counts per entity."""
        return {
            "sites": len(self.sites), "students": len(self.students), "staff": len(self.users),
            "courses": len(self.courses), "terms": len(self.terms), "sections": len(self.sections),
            "enrollments": len(self.enrollments), "rosters": len(self.roster),
            "assessments": len(self.assessments), "assessment_scores": len(self.scores),
        }


class Expanded(Sequence[tuple[int, int]]):
    """``base`` keys each fanned out to ``fan`` sub-rows, addressable by index without
    materialising the product (Group and Standard scores: k rows per aggregate row)."""

    def __init__(self, base: Sequence[int], fan: int) -> None:
        self._base = base
        self._fan = fan

    def __len__(self) -> int:
        return len(self._base) * self._fan

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, int]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._base[index // self._fan], index % self._fan
