"""What every roster target should hold, computed from the Illuminate simulator's own state.

The projection is written from the simulator's records and the identity decisions of FLOWS.md
section 4 (district ids for people, ``<prefix>-section-<id>`` for sections), not from the
handlers' code, so a mapping mistake in a handler shows as a difference. The per-target checkers
(``roster_convergence_class`` and the others) compare it with a target simulator's state; tests,
the demo and the benchmark use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.illuminate import render
from simulators.illuminate.state import District, unpack


@dataclass(frozen=True)
class Person:
    """A student or staff member as every target should name them."""

    sis_id: str
    first: str
    last: str
    email: str | None


@dataclass(frozen=True)
class Section:
    """A section, its course name, period and teacher."""

    section_id: str
    course_name: str
    period: str | None
    teacher: Person | None  # None: the section names a teacher Illuminate no longer has
    course_id: str | None = None
    term_id: str | None = None


@dataclass(frozen=True)
class Term:
    """A term: its name and first and last days (ISO dates)."""

    term_id: str
    name: str
    start: str | None
    end: str | None


@dataclass
class RosterProjection:
    """Illuminate's roster as the targets should mirror it."""

    prefix: str
    students: dict[str, Person] = field(default_factory=dict)  # by district student id
    staff: dict[str, Person] = field(default_factory=dict)  # by staff SIS id
    sections: dict[str, Section] = field(default_factory=dict)
    # section id -> district student ids of its active rows (not dropped before the term's end)
    members: dict[str, set[str]] = field(default_factory=dict)
    terms: dict[str, Term] = field(default_factory=dict)
    # section id -> district student ids of its rows that are not active (dropped before the term's end)
    dropped: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, d: District, prefix: str = "edusync") -> RosterProjection:
        """The projection of ``d``'s current state."""
        out = cls(prefix)
        staff_by_user: dict[int, Person] = {}
        for u in d.users.rows.values():
            sis = u.district_user_id or f"staff-{u.user_id}"
            out.staff[sis] = staff_by_user[u.user_id] = Person(sis, u.first_name, u.last_name,
                                                               render.user(u)["email1"] or None)
        for s in d.students.rows.values():
            sis = str(s.district_student_id)
            out.students[sis] = Person(sis, s.first_name, s.last_name, None)
        for sec in d.sections.rows.values():
            course = d.courses.rows.get(sec.course_id)
            name = (course.long_name or course.short_name) if course else f"Section {sec.section_id}"
            out.sections[str(sec.section_id)] = Section(str(sec.section_id), name, sec.period or None,
                                                        staff_by_user.get(sec.user_id), str(sec.course_id),
                                                        str(sec.term_id))
            out.members[str(sec.section_id)] = set()
            out.dropped[str(sec.section_id)] = set()
        for t in d.terms.rows.values():
            out.terms[str(t.term_id)] = Term(str(t.term_id), t.term_name, t.start_date or None, t.end_date or None)
        for key, (_entry, leave) in d.roster.rows.items():
            section_id, student_id = unpack(key)
            row = d.sections.rows.get(section_id)
            student = d.students.rows.get(student_id)
            if row is None or student is None:
                continue
            term = d.terms.rows.get(row.term_id)
            # A drop ends the row before its term does (the handlers' rule, FLOWS.md 2.3).
            if leave is not None and term is not None and leave < term.end_date:
                out.dropped[str(section_id)].add(str(student.district_student_id))
                continue
            out.members[str(section_id)].add(str(student.district_student_id))
        return out

    def section_sis_id(self, section_id: str) -> str:
        """``<prefix>-section-<id>``."""
        return f"{self.prefix}-section-{section_id}"


@dataclass
class RosterReport:
    """Differences between a target and the projection, by kind; empty when converged."""

    target: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, item: str) -> None:
        """Record one difference."""
        self.problems.setdefault(kind, []).append(item)

    @property
    def ok(self) -> bool:
        """True when the target matches the projection exactly."""
        return not any(self.problems.values())

    def summary(self, sample: int = 3) -> str:
        """One line: counts, then each kind of difference with a few examples."""
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        if self.ok:
            return f"{self.target}: converged ({counts})"
        kinds = "; ".join(f"{k} {len(v)} (e.g. {', '.join(v[:sample])})" for k, v in self.problems.items() if v)
        return f"{self.target}: NOT converged ({counts}): {kinds}"
