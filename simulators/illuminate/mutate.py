"""Scripted and random changes to the district, reported as the natural keys they touch.

Keys use the natural-key format of Illuminate events (``schemas/illuminate.py``): parts joined
by "/", so a test can predict the change events a poller should emit. Entities are named
like the worker's topics: students, staff, sections, rosters, enrollments, courses, terms,
plus assessment_scores, assessment_scores_group and assessment_scores_standard.

``upserted`` lists keys whose record exists upstream after the change and whose content
changed; ``deleted`` lists keys removed for good (no tombstone, ref L3368). A soft change
(end-dating) keeps the row, so it is an upsert here, but a poller reading the default
"today" scope no longer sees the row (ref L3408).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from simulators.illuminate import render
from simulators.illuminate.generator import LAST_NAMES, make_student, make_user, score_points
from simulators.illuminate.state import District, EnrollmentRec, ScoreRec, SiteRec, pack, unpack

Mode = Literal["hard", "soft"]
KINDS = ("enrol", "drop", "transfer", "rename", "new_scores", "changed_scores", "deleted_scores",
         "new_staff", "departed_staff", "withdraw", "random")
_RANDOM_KINDS = ("enrol", "drop", "transfer", "rename", "new_scores", "changed_scores", "deleted_scores",
                 "new_staff", "departed_staff")


class MutationError(ValueError):
    """The mutation cannot be applied (unknown kind, empty district)."""


def _part(value: object) -> str:
    return str(value).replace("%", "%25").replace("/", "%2F")


def key(*parts: object) -> str:
    """A natural key string, as ``IlluminateRecord.natural_key()`` renders it."""
    return "/".join(_part(p) for p in parts)


@dataclass
class ChangeSet:
    """The final operation per entity and key."""

    ops: dict[str, dict[str, str]] = field(default_factory=dict)

    def up(self, entity: str, k: str) -> None:
        """Record an insert or update."""
        self.ops.setdefault(entity, {})[k] = "upsert"

    def down(self, entity: str, k: str) -> None:
        """Record a hard delete."""
        self.ops.setdefault(entity, {})[k] = "delete"

    def as_json(self) -> dict[str, dict[str, list[str]]]:
        """{"upserted": {entity: [keys]}, "deleted": {entity: [keys]}}, keys sorted."""
        out: dict[str, dict[str, list[str]]] = {"upserted": {}, "deleted": {}}
        for entity, ops in sorted(self.ops.items()):
            for op, bucket in (("upsert", "upserted"), ("delete", "deleted")):
                keys = sorted(k for k, v in ops.items() if v == op)
                if keys:
                    out[bucket][entity] = keys
        return out


def _schools(d: District) -> list[SiteRec]:
    return [s for s in d.sites.rows.values() if s.site_id != s.parent_site_id]


def _sections_at(d: District, site_id: int) -> list[int]:
    return [s.section_id for s in d.sections.rows.values() if s.site_id == site_id]


def _score_keys(d: District, k: int) -> tuple[str, list[str], list[str]]:
    aid, sid = unpack(k)
    a = d.assessments.rows[aid]
    local = d.students.rows[sid].district_student_id
    return (key(aid, local), [key(aid, local, g) for g in a.groups],
            [key(aid, local, s[0]) for s in a.standards])


class Mutator:
    """Applies one kind of change ``count`` times with a seeded generator."""

    def __init__(self, d: District, rng: random.Random, mode: Mode | None) -> None:
        if not d.sites.rows:
            raise MutationError("the district is empty: POST /_sim/seed first")
        self.d = d
        self.rng = rng
        self.mode = mode
        self.changes = ChangeSet()

    def run(self, kind: str, count: int) -> ChangeSet:
        """Apply ``kind`` ``count`` times; ``random`` picks a kind per step."""
        if kind not in KINDS:
            raise MutationError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "withdraw":
            self.withdraw(count)
        else:
            for _ in range(count):
                step = self.rng.choice(_RANDOM_KINDS) if kind == "random" else kind
                action: Callable[[], None] = getattr(self, step)
                action()
        self.d.touch()
        return self.changes

    # -- roster and enrolment -------------------------------------------------------------

    def _add_to_sections(self, student_id: int, site_id: int) -> None:
        sections = _sections_at(self.d, site_id)
        for sec in self.rng.sample(sections, min(3, len(sections))):
            self.d.roster.put(pack(sec, student_id), (self.d.today, self.d.session_end))
            self.changes.up("rosters", key(sec, student_id))

    def _end_roster_row(self, k: int, mode: Mode) -> None:
        sec, sid = unpack(k)
        if mode == "hard":
            self.d.roster.delete(k)
            self.changes.down("rosters", key(sec, sid))
        else:
            entry, _ = self.d.roster.rows[k]
            self.d.roster.put(k, (entry, self.d.yesterday()))
            self.changes.up("rosters", key(sec, sid))

    def enrol(self) -> None:
        """A new student joins a school today, with an enrolment and up to three sections."""
        d = self.d
        site = self.rng.choice(_schools(d))
        student = make_student(d, self.rng, site, d.today)
        teachers = [u.user_id for u in d.users.rows.values() if u.site_id == site.site_id and u.active]
        student.homeroom_user_id = self.rng.choice(teachers) if teachers else None
        d.students.put(student.student_id, student)
        d.by_district_id[student.district_student_id] = student.student_id
        d.enrollments.put((student.student_id, site.site_id, d.today), EnrollmentRec(
            student.student_id, site.site_id, d.today, d.session_end, student.grade_level_id, None))
        self.changes.up("students", key(student.student_id))
        self.changes.up("enrollments", key(student.student_id, site.site_id, d.today))
        self._add_to_sections(student.student_id, site.site_id)

    def drop(self) -> None:
        """A student leaves one section: hard delete (default) or end-dated yesterday (soft)."""
        today = self.d.today
        order = self.d.roster.order()
        for _ in range(50):
            if not order:
                return
            k = self.rng.choice(order)
            entry, leave = self.d.roster.rows[k]
            if entry <= today and (leave is None or leave >= today):
                self._end_roster_row(k, self.mode or "hard")
                return

    def transfer(self) -> None:
        """A student moves school: the old enrolment ends yesterday, a new one starts today,
        old-school sections are left (per mode, hard by default) and new ones joined."""
        d = self.d
        schools = _schools(d)
        if len(schools) < 2 or not d.students.rows:
            return
        s = d.students.rows[self.rng.choice(d.students.order())]
        new_site = self.rng.choice([x for x in schools if x.site_id != s.site_id])
        old_key = (s.student_id, s.site_id, s.school_entry_date)
        old = d.enrollments.rows.get(old_key)
        if old is not None:
            old.leave_date = d.yesterday()
            old.exit_code = "T1"
            self.changes.up("enrollments", key(*old_key))
        for sec in _sections_at(d, s.site_id):
            k = pack(sec, s.student_id)
            if k in d.roster.rows:
                self._end_roster_row(k, self.mode or "hard")
        s.site_id = new_site.site_id
        s.school_entry_date = d.today
        d.enrollments.put((s.student_id, new_site.site_id, d.today), EnrollmentRec(
            s.student_id, new_site.site_id, d.today, d.session_end, s.grade_level_id, None))
        self.changes.up("enrollments", key(s.student_id, new_site.site_id, d.today))
        self.changes.up("students", key(s.student_id))  # school_entry_date changed
        self._add_to_sections(s.student_id, new_site.site_id)

    def rename(self) -> None:
        """A student's last name changes (one student event; rosters and scores hash without names)."""
        d = self.d
        if not d.students.rows:
            return
        s = d.students.rows[self.rng.choice(d.students.order())]
        s.last_name = self.rng.choice([n for n in LAST_NAMES if n != s.last_name])
        self.changes.up("students", key(s.student_id))

    def withdraw(self, count: int) -> None:
        """Students leave the district and vanish everywhere: hard deletes, no trace."""
        d = self.d
        order = d.students.order()
        victims = set(self.rng.sample(order, min(count, len(order))))
        for k in [k for k in d.scores.order() if unpack(k)[1] in victims]:
            agg, groups, standards = _score_keys(d, k)
            d.scores.delete(k)
            self._down_scores(agg, groups, standards)
        for k in [k for k in d.roster.order() if unpack(k)[1] in victims]:
            d.roster.delete(k)
            self.changes.down("rosters", key(*unpack(k)))
        for ek in [ek for ek in d.enrollments.order() if ek[0] in victims]:
            d.enrollments.delete(ek)
            self.changes.down("enrollments", key(*ek))
        for sid in victims:
            student = d.students.delete(sid)
            d.by_district_id.pop(student.district_student_id, None)
            self.changes.down("students", key(sid))

    # -- staff ------------------------------------------------------------------------------

    def new_staff(self) -> None:
        """A teacher is hired today."""
        user = make_user(self.d, self.rng, self.rng.choice(_schools(self.d)).site_id, self.d.today)
        self.d.users.put(user.user_id, user)
        self.changes.up("staff", key(user.user_id))

    def departed_staff(self) -> None:
        """A teacher leaves: ``active`` "f" and ``exit_date`` today (soft, default), or removed."""
        active = [u for u in self.d.users.rows.values() if u.active]
        if not active:
            return
        user = self.rng.choice(active)
        if (self.mode or "soft") == "hard":
            self.d.users.delete(user.user_id)
            self.changes.down("staff", key(user.user_id))
        else:
            user.active = False
            user.exit_date = self.d.today
            self.changes.up("staff", key(user.user_id))

    # -- scores -----------------------------------------------------------------------------

    def _down_scores(self, agg: str, groups: list[str], standards: list[str]) -> None:
        self.changes.down("assessment_scores", agg)
        for g in groups:
            self.changes.down("assessment_scores_group", g)
        for s in standards:
            self.changes.down("assessment_scores_standard", s)

    def new_scores(self) -> None:
        """A student takes an assessment today; every variant gains rows."""
        d = self.d
        if not d.assessments.rows or not d.students.rows:
            return
        for _ in range(100):
            aid = self.rng.choice(d.assessments.order())
            sid = self.rng.choice(d.students.order())
            k = pack(aid, sid)
            if k not in d.scores.rows:
                items = d.assessments.rows[aid].items
                d.scores.put(k, ScoreRec(score_points(self.rng, items), 1, d.today, d.today))
                agg, groups, standards = _score_keys(d, k)
                self.changes.up("assessment_scores", agg)
                for g in groups:
                    self.changes.up("assessment_scores_group", g)
                for s in standards:
                    self.changes.up("assessment_scores_standard", s)
                return

    def changed_scores(self) -> None:
        """A score is re-graded today: a new total; the group and standard rows whose share
        changed are reported (all of them match modified_after, ref L3363-L3367)."""
        d = self.d
        if not d.scores.rows:
            return
        k = self.rng.choice(d.scores.order())
        rec = d.scores.rows[k]
        a = d.assessments.rows[unpack(k)[0]]
        points = (rec.points + self.rng.randint(1, a.items)) % (a.items + 1)
        before_g = render.split_points(rec.points, a.items, len(a.groups))
        before_s = render.split_points(rec.points, a.items, len(a.standards))
        d.scores.put(k, ScoreRec(points, rec.version, rec.date_taken, d.today))
        agg, groups, standards = _score_keys(d, k)
        self.changes.up("assessment_scores", agg)
        after_g = render.split_points(points, a.items, len(a.groups))
        after_s = render.split_points(points, a.items, len(a.standards))
        for g, old, new in zip(groups, before_g, after_g, strict=True):
            if old != new:
                self.changes.up("assessment_scores_group", g)
        for s, old, new in zip(standards, before_s, after_s, strict=True):
            if old != new:
                self.changes.up("assessment_scores_standard", s)

    def deleted_scores(self) -> None:
        """A score is removed: invisible to modified_after (ref L3443), only a full pull shows it."""
        d = self.d
        if not d.scores.rows:
            return
        k = self.rng.choice(d.scores.order())
        agg, groups, standards = _score_keys(d, k)
        d.scores.delete(k)
        self._down_scores(agg, groups, standards)


def apply(d: District, kind: str, count: int, rng: random.Random, mode: Mode | None) -> ChangeSet:
    """Apply ``count`` changes of ``kind`` to ``d`` and report them."""
    return Mutator(d, rng, mode).run(kind, count)
