"""CanvasClient's roster and gradebook surface against the Canvas simulator over loopback HTTP.

Contract tests (FLOWS.md 2.3, 2.6): SIS ids with ``/``, ``.`` and ``é`` round-trip; a concluded
enrolment is hidden by Canvas's default and visible with ``state[]=completed``; a taken SIS id is a
typed ``ConflictError``; a create without the SIS permission raises "SIS id not stored"; every
write hands back its ``X-Request-Context-Id``; bulk grading answers a Progress that is polled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from simulators.canvas import CanvasSimulator
from tests import canvas_fixtures
from tests.canvas_fixtures import ADMIN
from tests.http_settings import http_settings
from worker.clients.canvas import CanvasClient, GradeInput, sis
from worker.clients.canvas_base import seg
from worker.clients.canvas_errors import ProgressFailedError, SisIdNotStoredError
from worker.clients.errors import ConflictError, NotFoundError, PermanentUpstreamError
from worker.errors import Verdict, classify

pytestmark = pytest.mark.anyio

sim = canvas_fixtures.sim
server = canvas_fixtures.server

ODD_SIS = "CS/101.11é"  # canvas.md §1.6: encoded and escaped as CS%2F101%2E11%C3%A9


@pytest.fixture
def url(sim: CanvasSimulator, server: str) -> str:
    sim.reset()
    return server


def client(url: str, **kwargs: Any) -> CanvasClient:
    return CanvasClient(url, ADMIN, http=http_settings(2, 5.0), max_pause=0.05, **kwargs)


def control(url: str, method: str, path: str, body: dict[str, Any]) -> None:
    httpx.request(method, url + path, json=body).raise_for_status()


def test_sis_segments_are_escaped_as_canvas_documents() -> None:
    assert seg(sis("sis_course_id", ODD_SIS)) == "sis_course_id:CS%2F101%2E11%C3%A9"
    assert seg("123") == "123" and seg("self") == "self"
    with pytest.raises(ValueError):
        sis("sis_banana_id", "x")


async def test_odd_sis_ids_round_trip_through_the_client(sim: CanvasSimulator, url: str) -> None:
    async with client(url) as c:
        course = (await c.create_course("1", name="Biology", sis_course_id=ODD_SIS)).value
        assert course.sis_course_id == ODD_SIS
        fetched = await c.get_course(sis("sis_course_id", ODD_SIS))
        assert (fetched.id, fetched.sis_course_id) == (course.id, ODD_SIS)
        section = (await c.create_section(course.id, name="P1", sis_section_id=ODD_SIS + "/s")).value
        assert (await c.get_section(sis("sis_section_id", ODD_SIS + "/s"))).id == section.id
        user = (await c.create_user("1", unique_id="s1@example.org", name="Ann Lee", sis_user_id=ODD_SIS)).value
        assert (await c.get_user(sis("sis_user_id", ODD_SIS))).id == user.id
        term = (await c.create_term("1", name="Fall", sis_term_id=ODD_SIS)).value
        assert (await c.get_term("1", sis("sis_term_id", ODD_SIS))).id == term.id
    assert sim.stats.count("GET /api/v1/courses/:id", 200) == 1


async def test_concluded_enrolment_is_hidden_by_default_and_visible_with_completed(url: str) -> None:
    async with client(url) as c:
        course = (await c.create_course("1", name="Biology", sis_course_id="C-1", offer=True)).value
        section = (await c.create_section(course.id, name="P1", sis_section_id="SEC-1")).value
        users = [(await c.create_user("1", unique_id=f"s{i}", sis_user_id=f"S-{i}")).value for i in range(3)]
        enrolled = [(await c.enroll_in_section(section.id, u.id)).value for u in users]
        assert {e.enrollment_state for e in enrolled} == {"active"}
        concluded = (await c.conclude_enrollment(course.id, enrolled[0].id)).value
        assert concluded.enrollment_state == "completed"

        canvas_default = await c.enrollments(course=course.id, states=())  # no state[]: active and invited
        assert enrolled[0].id not in {e.id for e in canvas_default}
        assert len(canvas_default) == 2
        completed = await c.enrollments(course=course.id, states=("completed",))
        assert [e.id for e in completed] == [enrolled[0].id]
        everything = await c.enrollments(section=section.id)  # the client passes every state by default
        assert {e.id: e.enrollment_state for e in everything} == {
            enrolled[0].id: "completed", enrolled[1].id: "active", enrolled[2].id: "active",
        }
        by_user = await c.enrollments(user=sis("sis_user_id", "S-0"))
        assert [e.enrollment_state for e in by_user] == ["completed"]


async def test_duplicate_sis_ids_are_typed_conflicts(sim: CanvasSimulator, url: str) -> None:
    async with client(url) as c:
        await c.create_user("1", unique_id="first", sis_user_id="S-1")
        with pytest.raises(ConflictError) as info:
            await c.create_user("1", unique_id="second", sis_user_id="S-1")
        assert info.value.status == 400 and "sis_user_id already in use" in str(info.value)
        assert classify(info.value) is Verdict.DEAD_LETTER
        with pytest.raises(ConflictError, match="unique_id"):
            await c.create_user("1", unique_id="FIRST")  # unique_id is unique case-insensitively
        course = (await c.create_course("1", name="A", sis_course_id="C-1")).value
        with pytest.raises(ConflictError):
            await c.create_course("1", name="B", sis_course_id="C-1")
        await c.create_section(course.id, name="P1", sis_section_id="SEC-1")
        with pytest.raises(ConflictError):
            await c.create_section(course.id, name="P2", sis_section_id="SEC-1")
        await c.create_term("1", name="Fall", sis_term_id="T-1")
        with pytest.raises(ConflictError):
            await c.create_term("1", name="Fall again", sis_term_id="T-1")
        with pytest.raises(PermanentUpstreamError) as blank:  # not every 400 is a conflict
            await c.create_user("1", unique_id="")
        assert not isinstance(blank.value, ConflictError)
    assert sim.snapshot()["roster"]["users"] == 1


async def test_create_without_sis_permission_raises_sis_id_not_stored(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/auth", {"sis_permission": False})
    async with client(url) as c:
        course = (await c.create_course("1", name="Plain")).value  # no SIS id asked for: fine
        with pytest.raises(SisIdNotStoredError) as info:
            await c.create_section(course.id, name="P1", sis_section_id="SEC-1")
        assert "SIS id not stored" in str(info.value) and "sis_section_id 'SEC-1'" in str(info.value)
        assert classify(info.value) is Verdict.DEAD_LETTER
        with pytest.raises(SisIdNotStoredError):
            await c.create_user("1", unique_id="s1", sis_user_id="S-1")
        with pytest.raises(SisIdNotStoredError):
            await c.create_course("1", name="Bio", sis_course_id="C-1")
        with pytest.raises(NotFoundError):  # what the next look-up would find: nothing
            await c.get_section(sis("sis_section_id", "SEC-1"))


async def test_every_write_hands_back_its_request_id(url: str) -> None:
    async with client(url) as c:
        writes = [
            await c.create_term("1", name="Fall", sis_term_id="T-1", start_at=datetime(2026, 8, 20, tzinfo=UTC)),
            await c.create_course("1", name="Bio", sis_course_id="C-1", term_id=sis("sis_term_id", "T-1")),
        ]
        course = writes[1].value
        assert course.enrollment_term_id == writes[0].value.id
        writes.append(await c.update_course(course.id, name="Biology", event="offer"))
        writes.append(await c.create_section(course.id, name="P1"))
        writes.append(await c.create_user("1", unique_id="s1", sis_user_id="S-1"))
        writes.append(await c.enroll_in_course(course.id, writes[-1].value.id, course_section_id=writes[-2].value.id))
        writes.append(await c.delete_course(course.id, "conclude"))
    ids = [w.request_id for w in writes]
    assert all(isinstance(i, str) and len(i) == 36 for i in ids)
    assert len(set(ids)) == len(ids)
    assert writes[-1].value is True


async def test_roster_lifecycle(sim: CanvasSimulator, url: str) -> None:
    async with client(url) as c:
        account = await c.get_account("self")
        assert (account.id, account.name) == ("1", "District A")
        term = (await c.create_term("1", name="Fall", sis_term_id="T-1")).value
        renamed = (await c.update_term("1", term.id, name="Fall 2026")).value
        assert renamed.name == "Fall 2026"
        assert {t.id for t in await c.terms("1")} >= {term.id}
        assert (await c.delete_term("1", term.id)).value.workflow_state == "deleted"
        assert term.id in {t.id for t in await c.terms("1", states=("deleted",))}

        course = (await c.create_course("1", name="Bio", sis_course_id="C-1", course_code="BIO")).value
        assert course.workflow_state == "unpublished"
        assert (await c.update_course(course.id, event="offer")).value.workflow_state == "available"
        assert [x.id for x in await c.account_courses("1", search_term="Bio")] == [course.id]
        assert (await c.delete_course(course.id)).value is True
        with pytest.raises(NotFoundError):
            await c.get_course(course.id)
        gone = await c.get_course(sis("sis_course_id", "C-1"), include_deleted=True)  # include[]=all_courses
        assert gone.workflow_state == "deleted"
        revived = (await c.create_course("1", name="Bio", sis_course_id="C-1", enable_sis_reactivation=True)).value
        assert (revived.id, revived.workflow_state) == (course.id, "unpublished")

        section = (await c.create_section(course.id, name="P1", sis_section_id="SEC-1")).value
        assert (await c.update_section(section.id, name="Period 1")).value.name == "Period 1"
        assert [s.id for s in await c.sections(course.id)] == [section.id]
        user = (await c.create_user("1", unique_id="s1@example.org", name="Ann Lee", sis_user_id="S-1",
                                    email="ann@example.org")).value
        assert (user.sortable_name, user.login_id) == ("Lee, Ann", "s1@example.org")
        assert (await c.update_user(sis("sis_user_id", "S-1"), name="Ann B. Lee")).value.name == "Ann B. Lee"
        login = (await c.user_logins(user.id))[0]
        assert (await c.update_login("1", login.id, sis_user_id="S-1b")).value.sis_user_id == "S-1b"
        assert (await c.get_user(sis("sis_user_id", "S-1b"))).id == user.id

        enrollment = (await c.enroll_in_section(section.id, user.id, kind="StudentEnrollment")).value
        assert (await c.inactivate_enrollment(course.id, enrollment.id)).value.enrollment_state == "inactive"
        assert (await c.reactivate_enrollment(course.id, enrollment.id)).value.enrollment_state == "active"
        assert (await c.delete_enrollment(course.id, enrollment.id)).value.enrollment_state == "deleted"
        assert [e.enrollment_state for e in await c.enrollments(course=course.id)] == ["deleted"]
        assert (await c.delete_section(section.id)).value.id == section.id
        with pytest.raises(ValueError, match="unknown Canvas field"):
            await c.update_course(course.id, nmae="typo")


async def test_grading_single_and_bulk_with_progress(sim: CanvasSimulator, url: str) -> None:
    async with client(url) as c:
        course = (await c.create_course("1", name="Bio", offer=True)).value
        students = [(await c.create_user("1", unique_id=f"s{i}", sis_user_id=f"S-{i}")).value for i in range(3)]
        for student in students:
            await c.enroll_in_course(course.id, student.id)
        assignment = (await c.create_assignment(course.id, name="Lab", points_possible=10, published=True)).value
        assert [a.id for a in await c.assignments(course.id)] == [assignment.id]

        graded = await c.grade_submission(course.id, assignment.id, sis("sis_user_id", "S-0"), posted_grade=8.5)
        assert (graded.value.score, graded.value.grade, graded.value.grader_id) == (8.5, "8.5", "1")
        excused = await c.grade_submission(course.id, assignment.id, students[1].id, excuse=True)
        assert excused.value.excused is True and excused.request_id != graded.request_id
        fetched = await c.get_submission(course.id, assignment.id, students[0].id)
        assert fetched.score == 8.5
        assert len(await c.submissions(course.id, assignment.id)) == 3

        control(url, "PUT", "/_sim/progress", {"running_polls": 2})
        grades = {students[2].id: GradeInput(posted_grade="7"), sis("sis_user_id", "S-0"): GradeInput("90%")}
        started = await c.update_grades(course.id, assignment.id, grades)
        assert started.value.workflow_state == "queued"
        done = await c.wait_for_progress(started.value, poll_every=0.01)
        assert (done.workflow_state, done.results) == ("completed", {"updated": 2})
        assert (await c.get_submission(course.id, assignment.id, students[2].id)).score == 7.0
        assert (await c.get_submission(course.id, assignment.id, students[0].id)).score == 9.0

        with pytest.raises(ProgressFailedError, match="failed"):
            await c.bulk_grade(course.id, assignment.id, {"999999": GradeInput("5")}, poll_every=0.01)
        with pytest.raises(ValueError):
            GradeInput().body()
    assert sim.stats.count("GET /api/v1/progress/:id", 200) == 3 + 3
