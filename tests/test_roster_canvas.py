"""The roster flow into Canvas, end to end: Illuminate simulator -> the real worker (pollers and the
``roster_to_canvas`` handler) on the real broker -> the Canvas simulator, compared with the projection
of Illuminate's state (``simulators/roster_convergence_canvas.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from schemas.dead_letter import DeadLetter
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.state import unpack
from simulators.roster_projection import RosterProjection
from tests.roster_env import RosterEnv
from tests.roster_target_canvas import CanvasTarget

pytestmark = pytest.mark.slow(70)

HANDLER = "roster_to_canvas"
# For the cases about single records: a district that syncs in seconds.
TINY = SeedSpec(sites=2, students=40, staff=6, courses=2, sections_per_course=3, students_per_section=8,
                assessments=1, seed=5)


def _target(env: RosterEnv) -> CanvasTarget:
    target = env.targets[0]
    assert isinstance(target, CanvasTarget)
    return target


def _wait(what: str, done: Callable[[], bool], env: RosterEnv, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: timed out\n{env.log_tail()}"
        time.sleep(1)


def _rows_of(env: RosterEnv, student_id: int) -> list[int]:
    """The sections of a student's roster rows."""
    return sorted(unpack(k)[0] for k in env.illuminate.district.roster.rows if unpack(k)[1] == student_id)


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[RosterEnv]:
    e = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[CanvasTarget("section")])
    try:
        yield e
    finally:
        e.close()


def _enrollments_of(target: CanvasTarget, sis_user_id: str) -> dict[str, tuple[int, str]]:
    """A user's student enrolments: Canvas section SIS id -> (enrolment id, state)."""
    with target.sim.lock:
        login = next(lg for lg in target.sim.users.logins.values() if lg.sis_user_id == sis_user_id)
        return {target.sim.sections.sections[e.course_section_id].sis_section_id or "": (e.id, e.enrollment_state)
                for e in target.sim.enrollments.enrollments.values()
                if e.user_id == login.user_id and e.type == "StudentEnrollment"}


def _letters(env: RosterEnv, count: int) -> list[DeadLetter]:
    letters: list[DeadLetter] = []

    def enough() -> bool:
        letters[:] = env.dead_letters(HANDLER)
        return len(letters) >= count

    _wait(f"{count} dead letters", enough, env)
    return letters


def test_a_login_taken_by_someone_else_dead_letters_that_student_only(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    target = CanvasTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[target], seed=TINY)
    try:
        d = env.illuminate.district
        student = next(s for s in d.students.rows.values() if _rows_of(env, s.student_id))
        district = str(student.district_student_id)
        # The login edusync would give the student (no username in Illuminate: the email), held by another.
        login = f"{student.first_name}.{student.last_name}.{district}@students.edusync.test".lower()
        with target.sim.lock:
            target.sim.users.create(target.sim.accounts.resolve("1"), {
                "user": {"name": "Someone Else"}, "pseudonym": {"unique_id": login, "sis_user_id": "not-ours-1"},
            }, can_manage_sis=True)
        env.start_worker()
        sections = _rows_of(env, student.student_id)
        letters = _letters(env, 1 + len(sections))  # the student event and each of their roster rows
        for letter in letters:
            assert f"sis_user_id {district}" in letter.reason and "belongs to another Canvas user" in letter.reason
        assert sum("roster row" in letter.reason for letter in letters) == len(sections)
        # Everything else converged; only that student is missing.
        expected = {"missing_users": [f"student {district}"],
                    "missing_enrollments": [f"edusync-section-{s}/{district}" for s in sections]}

        def only_that_student() -> bool:
            [report] = env.reports()
            return {k: sorted(v) for k, v in report.problems.items() if v} == expected

        _wait("all but that student converged", only_that_student, env)
        assert len(env.dead_letters(HANDLER)) == 1 + len(sections)
    finally:
        env.close()


def test_a_token_without_manage_sis_creates_each_object_once_and_dead_letters_with_the_reason(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    target = CanvasTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[target], seed=TINY)
    try:
        httpx.put(f"{target.server.url}/_sim/auth", json={"sis_permission": False}, timeout=10).raise_for_status()
        d = env.illuminate.district
        people, terms = len(d.students.rows) + len(d.users.rows), len({s.term_id for s in d.sections.rows.values()})
        events = people + len(d.sections.rows) + len(d.roster.rows)
        env.start_worker()
        letters = _letters(env, events)  # every event: none can be applied without SIS ids
        assert all("SIS id not stored" in letter.reason for letter in letters), letters[0].reason
        assert any("created user" in letter.reason for letter in letters)
        assert any("created term" in letter.reason for letter in letters)
        creates = target.stats()["creates_by_vendor_guid"]
        # Each object was created once, without its SIS id, and never again; nothing was built on them.
        assert creates["user"] == {"": people}
        assert creates["term"] == {"": terms}
        assert "course" not in creates and "section" not in creates and "enrollment" not in creates
        time.sleep(3)
        assert len(env.dead_letters(HANDLER)) == events
    finally:
        env.close()


def test_a_drop_concludes_a_return_reactivates_and_a_student_gone_upstream_keeps_the_account(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    target = CanvasTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[target], seed=TINY)
    try:
        env.start_worker()
        env.wait_converged()
        d = env.illuminate.district
        key = next(iter(sorted(d.roster.rows)))
        section_id, student_id = unpack(key)
        district = str(d.students.rows[student_id].district_student_id)
        sis_section = f"edusync-section-{section_id}"
        enrolment_id, state = _enrollments_of(target, district)[sis_section]
        assert state == "active"

        entry, _leave = d.roster.rows[key]
        d.roster.rows[key] = (entry, d.yesterday())  # dropped before the term ends (one assignment)
        d.touch()
        env.wait_converged()
        assert _enrollments_of(target, district)[sis_section] == (enrolment_id, "completed")

        d.roster.rows[key] = (entry, d.session_end)  # back in the section
        d.touch()
        env.wait_converged()
        assert _enrollments_of(target, district)[sis_section] == (enrolment_id, "active")

        district_of = {sid: str(st.district_student_id) for sid, st in d.students.rows.items()}
        taught = {unpack(k)[1] for k in d.roster.rows}
        changes = env.mutate("withdraw", count=4, seed=2)  # gone from Illuminate, every row with them
        gone = [int(k) for k in changes["deleted"]["students"] if int(k) in taught]
        assert gone, changes
        env.wait_converged()
        for victim in gone:
            left = _enrollments_of(target, district_of[victim])  # the account is still there
            assert left and {state for _, state in left.values()} == {"completed"}, left
        assert env.dead_letters(HANDLER) == []
        assert env.stop_worker() == 0

        # The check sees what it must: hand edits in Canvas (which this flow does not repair).
        with target.sim.lock:
            sim = target.sim
            active = next(e for e in sim.enrollments.enrollments.values()
                          if e.type == "StudentEnrollment" and e.enrollment_state == "active")
            active.enrollment_state = "deleted"
            staff = RosterProjection.of(d).staff  # staff: none left Illuminate in this test
            user = sim.users.users[next(lg.user_id for lg in sim.users.logins.values() if lg.sis_user_id in staff)]
            user.sortable_name = "Wrong, Name"
            course = next(iter(sim.courses.courses.values()))
            sim.sections.create(course, {"course_section": {"name": "by hand"}}, can_manage_sis=True)
        [report] = env.reports()
        assert {k for k, v in report.problems.items() if v} == {
            "missing_enrollments", "wrong_names", "objects_without_sis_id"}, report.summary()
    finally:
        env.close()


def test_course_term_model_with_lost_answers_and_a_sigkill_converges_without_duplicates(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    target = CanvasTarget("course_term")
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[target])
    try:
        # 1% of Canvas answers are lost after Canvas applied the request (a 504 from the gateway).
        target.set_faults(lost_response_rate=0.01, seed=3)
        env.start_worker()
        _wait("a third of the sync", lambda: target.created() >= 2700, env, timeout=180)
        env.kill_worker()  # mid-sync: objects made in Canvas whose ledger entries never committed
        env.start_worker()
        [report] = env.wait_converged()
        # One course per Illuminate course and term: fewer courses than sections, each in its term.
        projection = RosterProjection.of(env.illuminate.district)
        pairs = {(s.course_id, s.term_id) for s in projection.sections.values()}
        assert report.counts["courses"] == len(pairs) < report.counts["sections"], report.summary()
        stats = target.stats()
        lost_posts = sum(by.get("504", 0) for kind, by in stats["requests"].items() if kind.startswith("POST"))
        assert lost_posts > 0, "no create lost its answer: the fault did not bite"
        assert stats["duplicate_vendor_guids"].get("user", []) == []
        assert env.dead_letters(HANDLER) == []
    finally:
        env.close()
