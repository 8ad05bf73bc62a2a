"""The Canvas simulator as a roster and gradebook target, over real loopback HTTP (no mocks).

Users and logins, terms, courses, sections, enrollments, assignments, submissions and Progress;
SIS-id rules (uniqueness, percent-encoded ids, the manage_sis trap); string ids; request-context
ids; OAuth refresh; a lost response; and the independent ``canvasapi`` client used unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.canvas import CanvasSimulator
from tests import canvas_fixtures
from tests.canvas_fixtures import ADMIN, TEACHER

sim = canvas_fixtures.sim
server = canvas_fixtures.server

NO_SIS = "admin-without-sis-token"
STRING_IDS = {"Accept": "application/json+canvas-string-ids"}
SIS_ID = "CS/101.11é"
SIS_ID_IN_PATH = "CS%2F101%2E11%C3%A9"  # canvas.md §1.6: "/" and "." escaped, UTF-8 then percent


@pytest.fixture
def http(sim: CanvasSimulator, server: str) -> Iterator[httpx.Client]:
    sim.reset()
    sim.add_token(NO_SIS, {"user_id": 9, "can_manage_sis": False})
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def make_user(http: httpx.Client, login: str, sis: str | None = None, name: str = "Ann Lee") -> dict[str, Any]:
    form = {"user[name]": name, "pseudonym[unique_id]": login}
    if sis:
        form["pseudonym[sis_user_id]"] = sis
    return ok(http.post("/api/v1/accounts/1/users", data=form))  # type: ignore[no-any-return]


def make_course(http: httpx.Client, sis: str = "C-1", **extra: str) -> dict[str, Any]:
    form = {"course[name]": "Biology", "course[course_code]": "BIO", "course[sis_course_id]": sis, **extra}
    return ok(http.post("/api/v1/accounts/1/courses", data=form))  # type: ignore[no-any-return]


def make_section(http: httpx.Client, course_id: int, sis: str = "SEC-1") -> dict[str, Any]:
    form = {"course_section[name]": "Period 1", "course_section[sis_section_id]": sis}
    return ok(http.post(f"/api/v1/courses/{course_id}/sections", data=form))  # type: ignore[no-any-return]


def enroll(http: httpx.Client, section_id: int, user: str, kind: str = "StudentEnrollment") -> dict[str, Any]:
    form = {
        "enrollment[user_id]": user,
        "enrollment[type]": kind,
        "enrollment[enrollment_state]": "active",
        "enrollment[notify]": "false",
        "enrollment[limit_privileges_to_course_section]": "true",
    }
    return ok(http.post(f"/api/v1/sections/{section_id}/enrollments", data=form))  # type: ignore[no-any-return]


# --- users and logins -------------------------------------------------------------------------


def test_user_create_show_by_sis_id_update_and_edit_login(http: httpx.Client) -> None:
    user = make_user(http, "ann@district.org", "S-100")
    assert (user["sis_user_id"], user["login_id"], user["sortable_name"]) == ("S-100", "ann@district.org", "Lee, Ann")
    assert ok(http.get("/api/v1/users/sis_user_id:S-100"))["id"] == user["id"]
    assert ok(http.get(f"/api/v1/users/{user['id']}"))["name"] == "Ann Lee"
    assert ok(http.get("/api/v1/users/self"))["id"] == 1
    updated = ok(http.put(f"/api/v1/users/{user['id']}", data={"user[name]": "Ann Lee-Park"}))
    assert updated["name"] == "Ann Lee-Park"

    logins = ok(http.get(f"/api/v1/users/{user['id']}/logins"))
    assert [(lg["unique_id"], lg["sis_user_id"], lg["account_id"]) for lg in logins] == [
        ("ann@district.org", "S-100", 1)
    ]
    edited = ok(http.put(f"/api/v1/accounts/1/logins/{logins[0]['id']}", data={"login[sis_user_id]": "S-200"}))
    assert edited["sis_user_id"] == "S-200"
    assert http.get("/api/v1/users/sis_user_id:S-100").status_code == 404
    assert ok(http.get("/api/v1/users/sis_user_id:S-200"))["id"] == user["id"]
    listed = ok(http.get("/api/v1/accounts/1/users", params={"search_term": "S-200"}))
    assert [u["id"] for u in listed] == [user["id"]]


def test_duplicate_sis_user_id_and_unique_id_are_typed_conflicts(http: httpx.Client) -> None:
    make_user(http, "ann", "S-1")
    dup_sis = http.post(
        "/api/v1/accounts/1/users", data={"pseudonym[unique_id]": "bob", "pseudonym[sis_user_id]": "S-1"}
    )
    assert dup_sis.status_code == 400
    assert dup_sis.json()["errors"]["pseudonym"]["sis_user_id"] == [
        {"attribute": "sis_user_id", "type": "taken", "message": 'SIS ID "S-1" is already in use'}
    ]
    dup_login = http.post("/api/v1/accounts/1/users", data={"pseudonym[unique_id]": "ANN"})  # case-insensitive
    assert dup_login.status_code == 400
    assert dup_login.json()["errors"]["pseudonym"]["unique_id"][0]["type"] == "taken"
    missing = http.post("/api/v1/accounts/1/users", data={"user[name]": "No login"})
    assert missing.status_code == 400
    assert "unique_id" in missing.json()["errors"]["pseudonym"]
    assert ok(http.get("/_sim/state"))["roster"]["users"] == 1


def test_user_delete_restore_and_sis_reactivation(http: httpx.Client) -> None:
    user = make_user(http, "ann", "S-1")
    ok(http.delete(f"/api/v1/accounts/1/users/{user['id']}"))
    assert http.get("/api/v1/users/sis_user_id:S-1").status_code == 404
    ok(http.put(f"/api/v1/accounts/1/users/{user['id']}/restore"))
    assert ok(http.get("/api/v1/users/sis_user_id:S-1"))["id"] == user["id"]

    ok(http.delete(f"/api/v1/accounts/1/users/{user['id']}"))
    revived = ok(
        http.post(
            "/api/v1/accounts/1/users",
            data={
                "pseudonym[unique_id]": "ann",
                "pseudonym[sis_user_id]": "S-1",
                "enable_sis_reactivation": "true",
            },
        )
    )
    assert revived["id"] == user["id"]


# --- terms ------------------------------------------------------------------------------------


def test_terms_create_list_update_delete_and_sis_conflict(http: httpx.Client) -> None:
    term = ok(
        http.post(
            "/api/v1/accounts/1/terms",
            data={
                "enrollment_term[name]": "Fall 2026",
                "enrollment_term[start_at]": "2026-08-20T06:00:00-06:00",
                "enrollment_term[end_at]": "2026-12-20",
                "enrollment_term[sis_term_id]": "T-2026F",
                "enrollment_term[overrides][StudentEnrollment][start_at]": "2026-08-25T00:00:00Z",
            },
        )
    )
    assert (term["start_at"], term["end_at"]) == ("2026-08-20T12:00:00Z", "2026-12-20T00:00:00Z")
    assert term["overrides"]["StudentEnrollment"]["start_at"] == "2026-08-25T00:00:00Z"
    listed = ok(http.get("/api/v1/accounts/1/terms"))
    assert set(listed) == {"enrollment_terms"}
    assert [t["name"] for t in listed["enrollment_terms"]] == ["Default Term", "Fall 2026"]
    assert ok(http.get("/api/v1/accounts/1/terms/sis_term_id:T-2026F"))["id"] == term["id"]
    dup = http.post(
        "/api/v1/accounts/1/terms", data={"enrollment_term[name]": "x", "enrollment_term[sis_term_id]": "T-2026F"}
    )
    assert dup.status_code == 400
    assert dup.json()["errors"]["sis_source_id"][0]["type"] == "taken"
    renamed = ok(http.put(f"/api/v1/accounts/1/terms/{term['id']}", data={"enrollment_term[name]": "Autumn"}))
    assert renamed["name"] == "Autumn"
    assert ok(http.delete(f"/api/v1/accounts/1/terms/{term['id']}"))["workflow_state"] == "deleted"
    assert [t["name"] for t in ok(http.get("/api/v1/accounts/1/terms"))["enrollment_terms"]] == ["Default Term"]
    everything = ok(http.get("/api/v1/accounts/1/terms", params={"workflow_state[]": "all"}))["enrollment_terms"]
    assert len(everything) == 2


# --- courses ----------------------------------------------------------------------------------


def test_course_create_read_update_events_and_deleted_course_is_404(http: httpx.Client) -> None:
    term = ok(
        http.post("/api/v1/accounts/1/terms", data={"enrollment_term[name]": "F", "enrollment_term[sis_term_id]": "T1"})
    )
    course = make_course(
        http, "C-1", **{"course[term_id]": "sis_term_id:T1", "course[start_at]": "2026-08-20", "offer": "true"}
    )
    assert (course["workflow_state"], course["enrollment_term_id"], course["start_at"]) == (
        "available",
        term["id"],
        "2026-08-20T00:00:00Z",
    )
    assert ok(http.get("/api/v1/courses/sis_course_id:C-1"))["id"] == course["id"]
    assert ok(http.get(f"/api/v1/accounts/1/courses/{course['id']}"))["name"] == "Biology"
    changed = ok(
        http.put(f"/api/v1/courses/{course['id']}", data={"course[name]": "Biology II", "course[event]": "claim"})
    )
    assert (changed["name"], changed["workflow_state"]) == ("Biology II", "unpublished")
    assert (
        ok(http.put(f"/api/v1/courses/{course['id']}", data={"course[event]": "conclude"}))["workflow_state"]
        == "completed"
    )

    dup = http.post("/api/v1/accounts/1/courses", data={"course[name]": "x", "course[sis_course_id]": "C-1"})
    assert dup.status_code == 400
    assert dup.json()["errors"]["sis_source_id"][0] == {
        "attribute": "sis_source_id",
        "type": "taken",
        "message": 'SIS ID "C-1" is already in use',
    }

    assert ok(http.delete(f"/api/v1/courses/{course['id']}", params={"event": "delete"})) == {"delete": "true"}
    gone = http.get(f"/api/v1/courses/{course['id']}")
    assert gone.status_code == 404
    assert gone.json() == {"errors": [{"message": "The specified resource does not exist."}]}
    assert http.get("/api/v1/courses/sis_course_id:C-1").status_code == 404
    with_deleted = ok(http.get(f"/api/v1/courses/{course['id']}", params={"include[]": "all_courses"}))
    assert with_deleted["workflow_state"] == "deleted"
    assert [c["id"] for c in ok(http.get("/api/v1/accounts/1/courses"))] == []
    assert [c["id"] for c in ok(http.get("/api/v1/accounts/1/courses", params={"state[]": "deleted"}))] == [
        course["id"]
    ]

    revived = make_course(http, "C-1", enable_sis_reactivation="true")
    assert (revived["id"], revived["workflow_state"]) == (course["id"], "unpublished")


def test_sis_id_with_slash_dot_and_accent_round_trips(http: httpx.Client) -> None:
    course = make_course(http, SIS_ID)
    assert course["sis_course_id"] == SIS_ID
    for path_id in (SIS_ID_IN_PATH, "CS%2F101.11%C3%A9"):  # Python's quote() leaves "." alone
        found = ok(http.get(f"/api/v1/courses/sis_course_id:{path_id}"))
        assert (found["id"], found["sis_course_id"]) == (course["id"], SIS_ID)
    section = make_section(http, course["id"], "SEC/1.a")
    assert ok(http.get("/api/v1/sections/sis_section_id:SEC%2F1%2Ea"))["id"] == section["id"]
    assert ok(http.get(f"/api/v1/courses/sis_course_id:{SIS_ID_IN_PATH}/sections"))[0]["id"] == section["id"]
    stats = ok(http.get("/_sim/stats"))["requests"]
    assert stats["GET /api/v1/courses/:id"] == {"200": 2}


def test_account_routes(http: httpx.Client) -> None:
    http.post("/_sim/accounts", json={"name": "School", "sis_account_id": "SCH-1", "parent_account_id": 1})
    assert ok(http.get("/api/v1/accounts/self"))["name"] == "District A"
    school = ok(http.get("/api/v1/accounts/sis_account_id:SCH-1"))
    assert (school["parent_account_id"], school["root_account_id"]) == (1, 1)
    assert [a["id"] for a in ok(http.get("/api/v1/accounts"))] == [1]
    assert [a["id"] for a in ok(http.get("/api/v1/accounts/1/sub_accounts"))] == [school["id"]]
    sub_course = ok(http.post(f"/api/v1/accounts/{school['id']}/courses", data={"course[name]": "Art"}))
    assert sub_course["root_account_id"] == 1
    assert [c["id"] for c in ok(http.get("/api/v1/accounts/1/courses"))] == [sub_course["id"]]


# --- sections ---------------------------------------------------------------------------------


def test_sections_crud_and_sis_conflict(http: httpx.Client) -> None:
    course = make_course(http)
    section = make_section(http, course["id"], "SEC-1")
    assert (section["course_id"], section["sis_section_id"], section["sis_course_id"]) == (course["id"], "SEC-1", "C-1")
    assert ok(http.get(f"/api/v1/courses/{course['id']}/sections/{section['id']}"))["name"] == "Period 1"
    dup = http.post(
        f"/api/v1/courses/{course['id']}/sections",
        data={"course_section[name]": "x", "course_section[sis_section_id]": "SEC-1"},
    )
    assert dup.status_code == 400
    assert dup.json()["errors"]["sis_source_id"][0]["type"] == "taken"
    renamed = ok(http.put("/api/v1/sections/sis_section_id:SEC-1", data={"course_section[name]": "P2"}))
    assert renamed["name"] == "P2"
    assert [s["id"] for s in ok(http.get(f"/api/v1/courses/{course['id']}/sections"))] == [section["id"]]

    user = make_user(http, "ann", "S-1")
    enrollment = enroll(http, section["id"], str(user["id"]))
    blocked = http.delete(f"/api/v1/sections/{section['id']}")
    assert (blocked.status_code, blocked.json()) == (
        400,
        {"message": "You can't delete a section that has enrollments"},
    )
    ok(http.delete(f"/api/v1/courses/{course['id']}/enrollments/{enrollment['id']}", params={"task": "delete"}))
    ok(http.delete(f"/api/v1/sections/{section['id']}"))
    assert http.get(f"/api/v1/sections/{section['id']}").status_code == 404
    revived = ok(
        http.post(
            f"/api/v1/courses/{course['id']}/sections",
            data={"course_section[sis_section_id]": "SEC-1", "enable_sis_reactivation": "true"},
        )
    )
    assert revived["id"] == section["id"]


def test_without_manage_sis_the_sis_ids_are_dropped_silently(http: httpx.Client) -> None:
    course = make_course(http)
    no_sis = {"Authorization": f"Bearer {NO_SIS}"}
    created = http.post(
        f"/api/v1/courses/{course['id']}/sections",
        headers=no_sis,
        data={"course_section[name]": "P1", "course_section[sis_section_id]": "SEC-9"},
    )
    assert created.status_code == 200  # the create succeeds...
    seen_by_admin = ok(http.get(f"/api/v1/sections/{created.json()['id']}"))
    assert seen_by_admin["sis_section_id"] is None  # ...but the SIS id is gone
    assert http.get("/api/v1/sections/sis_section_id:SEC-9").status_code == 404
    # Setting it afterwards is refused outright (sections_controller#update).
    refused = http.put(
        f"/api/v1/sections/{created.json()['id']}", headers=no_sis, data={"course_section[sis_section_id]": "SEC-9"}
    )
    assert refused.status_code == 401
    for path, form, field in (
        ("/api/v1/accounts/1/courses", {"course[name]": "x", "course[sis_course_id]": "C-9"}, "sis_course_id"),
        ("/api/v1/accounts/1/users", {"pseudonym[unique_id]": "z", "pseudonym[sis_user_id]": "S-9"}, "sis_user_id"),
        (
            "/api/v1/accounts/1/terms",
            {"enrollment_term[name]": "x", "enrollment_term[sis_term_id]": "T-9"},
            "sis_term_id",
        ),
    ):
        body = ok(http.post(path, headers=no_sis, data=form))
        assert body[field] is None, path
    # The same switch for every token at once.
    http.put("/_sim/auth", json={"sis_permission": False}).raise_for_status()
    assert make_course(http, "C-10")["sis_course_id"] is None


# --- enrollments ------------------------------------------------------------------------------


def test_enrollment_user_id_takes_numeric_and_sis_ids(http: httpx.Client) -> None:
    course = make_course(http)
    section = make_section(http, course["id"])
    ann = make_user(http, "ann", "S-1")
    bob = make_user(http, "bob", "S-2", name="Bob Ray")
    by_sis = enroll(http, section["id"], "sis_user_id:S-1")
    by_id = enroll(http, section["id"], str(bob["id"]))
    assert (by_sis["user_id"], by_sis["sis_user_id"], by_sis["course_id"]) == (ann["id"], "S-1", course["id"])
    assert (by_id["user_id"], by_id["enrollment_state"], by_id["limit_privileges_to_course_section"]) == (
        bob["id"],
        "active",
        True,
    )
    assert by_id["user"]["name"] == "Bob Ray"
    assert (
        http.post(
            f"/api/v1/sections/{section['id']}/enrollments", data={"enrollment[user_id]": "sis_user_id:NOPE"}
        ).status_code
        == 404
    )
    via_course = ok(
        http.post(
            f"/api/v1/courses/{course['id']}/enrollments",
            data={"enrollment[user_id]": str(bob["id"]), "enrollment[type]": "TeacherEnrollment"},
        )
    )
    assert via_course["enrollment_state"] == "invited"  # documented default
    assert via_course["course_section_id"] != section["id"]  # the course's default section


def test_concluded_enrollment_is_hidden_by_default_and_shown_with_state_completed(
    sim: CanvasSimulator,
    http: httpx.Client,
) -> None:
    course = make_course(http)
    section = make_section(http, course["id"])
    users = [make_user(http, f"u{i}", f"S-{i}") for i in range(4)]
    enrollments = [enroll(http, section["id"], str(u["id"])) for u in users]
    path = f"/api/v1/courses/{course['id']}/enrollments"
    concluded = ok(http.delete(f"{path}/{enrollments[0]['id']}"))  # no task: conclude
    assert concluded["enrollment_state"] == "completed"
    assert (
        ok(http.delete(f"{path}/{enrollments[1]['id']}", params={"task": "deactivate"}))["enrollment_state"]
        == "inactive"
    )
    assert ok(http.delete(f"{path}/{enrollments[2]['id']}", params={"task": "delete"}))["enrollment_state"] == "deleted"

    section_path = f"/api/v1/sections/{section['id']}/enrollments"
    assert [e["id"] for e in ok(http.get(section_path))] == [enrollments[3]["id"]]
    completed = ok(http.get(section_path, params={"state[]": "completed"}))
    assert [e["id"] for e in completed] == [enrollments[0]["id"]]
    every = ok(http.get(path, params=[("state[]", s) for s in ("active", "completed", "inactive", "deleted")]))
    assert len(every) == 4
    assert ok(http.get(path, params={"type[]": "TeacherEnrollment"})) == []

    # reactivate is for inactive enrollments only; a concluded one comes back by enrolling again.
    assert ok(http.put(f"{path}/{enrollments[1]['id']}/reactivate"))["enrollment_state"] == "active"
    assert http.put(f"{path}/{enrollments[0]['id']}/reactivate").status_code == 400
    again = enroll(http, section["id"], str(users[0]["id"]))
    assert (again["id"], again["enrollment_state"]) == (enrollments[0]["id"], "active")

    ok(http.delete(f"/api/v1/courses/{course['id']}", params={"event": "delete"}))
    with sim.lock:
        states = {e.enrollment_state for e in sim.enrollments.enrollments.values()}
    assert states == {"deleted"}  # "All enrollments are deleted"


# --- assignments, submissions, Progress --------------------------------------------------------


def gradebook(http: httpx.Client) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A course with one section, a student S-1 and a 20-point assignment."""
    course = make_course(http)
    section = make_section(http, course["id"])
    student = make_user(http, "stu", "S-1")
    enroll(http, section["id"], str(student["id"]))
    assignment = ok(
        http.post(
            f"/api/v1/courses/{course['id']}/assignments",
            data={"assignment[name]": "Quiz 1", "assignment[points_possible]": "20", "assignment[published]": "true"},
        )
    )
    return course, student, assignment


@pytest.mark.parametrize(
    ("grading_type", "posted", "score", "grade"),
    [
        ("points", "13.5", 13.5, "13.5"),
        ("points", "40%", 8.0, "8"),
        ("percent", "40%", 8.0, "40%"),
        ("percent", "75", 15.0, "75%"),
        ("letter_grade", "B", 17.2, "B"),
        ("letter_grade", "18", 18.0, "A-"),
        ("pass_fail", "complete", 20.0, "complete"),
        ("pass_fail", "fail", 0.0, "incomplete"),
    ],
)
def test_posted_grade_per_grading_type(
    http: httpx.Client,
    grading_type: str,
    posted: str,
    score: float,
    grade: str,
) -> None:
    course, _, assignment = gradebook(http)
    ok(
        http.put(
            f"/api/v1/courses/{course['id']}/assignments/{assignment['id']}",
            data={"assignment[grading_type]": grading_type},
        )
    )
    graded = ok(
        http.put(
            f"/api/v1/courses/{course['id']}/assignments/{assignment['id']}/submissions/sis_user_id:S-1",
            data={"submission[posted_grade]": posted},
        )
    )
    assert (graded["score"], graded["grade"], graded["grader_id"], graded["workflow_state"]) == (
        score,
        grade,
        1,
        "graded",
    )
    assert graded["graded_at"].endswith("Z")


def test_submissions_read_excuse_list_and_not_enrolled_is_404(http: httpx.Client) -> None:
    course, student, assignment = gradebook(http)
    base = f"/api/v1/courses/{course['id']}/assignments/{assignment['id']}/submissions"
    fresh = ok(http.get(f"{base}/sis_user_id:S-1"))
    assert (fresh["workflow_state"], fresh["score"], fresh["user_id"]) == ("unsubmitted", None, student["id"])
    excused = ok(http.put(f"{base}/{student['id']}", data={"submission[excuse]": "true"}))
    assert (excused["excused"], excused["score"], excused["grade"]) == (True, None, None)

    outsider = make_user(http, "out", "S-OUT")
    assert http.get(f"{base}/{outsider['id']}").status_code == 404
    refused = http.put(f"{base}/sis_user_id:S-OUT", data={"submission[posted_grade]": "5"})
    assert refused.status_code == 404
    assert http.put(f"{base}/sis_user_id:S-1", data={"submission[posted_grade]": "B"}).status_code == 400

    ok(http.put(f"{base}/{student['id']}", data={"submission[posted_grade]": "15"}))
    listed = ok(
        http.get(
            f"/api/v1/courses/{course['id']}/students/submissions",
            params={"student_ids[]": "all", "assignment_ids[]": str(assignment["id"])},
        )
    )
    assert [(s["user_id"], s["score"]) for s in listed] == [(student["id"], 15.0)]
    by_sis = ok(
        http.get(f"/api/v1/courses/{course['id']}/students/submissions", params={"student_ids[]": "sis_user_id:S-1"})
    )
    assert len(by_sis) == 1
    assert [s["score"] for s in ok(http.get(base))] == [15.0]
    grades = ok(http.get(f"/api/v1/courses/{course['id']}/enrollments"))[0]["grades"]
    assert grades["current_score"] == 75.0
    # A teacher of the course may grade; a teacher elsewhere may not.
    teacher = {"Authorization": f"Bearer {TEACHER}"}
    assert (
        http.put(f"{base}/{student['id']}", headers=teacher, data={"submission[posted_grade]": "1"}).status_code == 401
    )
    section_id = ok(http.get(f"/api/v1/courses/{course['id']}/sections"))[0]["id"]
    enroll(http, section_id, "2", kind="TeacherEnrollment")
    assert (
        ok(http.put(f"{base}/{student['id']}", headers=teacher, data={"submission[posted_grade]": "1"}))["grader_id"]
        == 2
    )


def test_bulk_grades_answer_a_progress_that_completes(http: httpx.Client) -> None:
    course, student, assignment = gradebook(http)
    other = make_user(http, "stu2", "S-2")
    section_id = ok(http.get(f"/api/v1/courses/{course['id']}/sections"))[0]["id"]
    enroll(http, section_id, str(other["id"]))
    http.put("/_sim/progress", json={"running_polls": 1}).raise_for_status()
    progress = ok(
        http.post(
            f"/api/v1/courses/{course['id']}/assignments/{assignment['id']}/submissions/update_grades",
            data={
                f"grade_data[{student['id']}][posted_grade]": "10",
                "grade_data[sis_user_id:S-2][posted_grade]": "90%",
            },
        )
    )
    assert (progress["workflow_state"], progress["tag"], "results" in progress) == (
        "queued",
        "submissions_update",
        False,
    )
    assert ok(http.get(progress["url"]))["workflow_state"] == "running"
    done = ok(http.get(f"/api/v1/progress/{progress['id']}"))
    assert (done["workflow_state"], done["completion"]) == ("completed", 100.0)
    scores = ok(http.get(f"/api/v1/courses/{course['id']}/students/submissions", params={"student_ids[]": "all"}))
    assert sorted(s["score"] for s in scores) == [10.0, 18.0]
    assert http.get("/api/v1/progress/999").status_code == 404


# --- cross-cutting -----------------------------------------------------------------------------


def test_string_ids_header_renders_every_id_as_a_string(http: httpx.Client) -> None:
    course, student, _ = gradebook(http)
    as_strings = ok(http.get(f"/api/v1/courses/{course['id']}", headers=STRING_IDS))
    assert (as_strings["id"], as_strings["account_id"], as_strings["enrollment_term_id"]) == (
        str(course["id"]),
        "1",
        str(course["enrollment_term_id"]),
    )
    enrollment = ok(http.get(f"/api/v1/courses/{course['id']}/enrollments", headers=STRING_IDS))[0]
    assert enrollment["user_id"] == str(student["id"]) and enrollment["user"]["id"] == str(student["id"])
    assert ok(http.get(f"/api/v1/users/{student['id']}", headers=STRING_IDS))["id"] == str(student["id"])
    assert ok(http.get("/api/v1/accounts/1/terms", headers=STRING_IDS))["enrollment_terms"][0]["id"].isdigit()
    assert ok(http.get("/api/v1/accounts/1/outcome_groups", headers=STRING_IDS))[0]["id"] == "1"
    events = ok(http.get(f"/api/v1/audit/course/courses/{course['id']}", headers=STRING_IDS))["events"]
    assert events[0]["links"]["course"] == str(course["id"])
    assert isinstance(ok(http.get(f"/api/v1/courses/{course['id']}"))["id"], int)  # without the header


def test_every_response_carries_a_fresh_request_context_id(http: httpx.Client, server: str) -> None:
    responses = [
        http.get("/api/v1/accounts/1"),
        http.get("/api/v1/courses/999"),
        httpx.get(server + "/api/v1/accounts/1"),
        http.get("/_sim/state"),
        http.post("/login/oauth2/token", data={"grant_type": "refresh_token"}),
    ]
    http.put("/_sim/faults", json={"error_rate": 1.0, "remaining": 1}).raise_for_status()
    responses.append(http.get("/api/v1/accounts/1"))
    http.put("/_sim/throttle", json={"capacity": 1, "leak_rate": 0}).raise_for_status()
    http.get("/api/v1/accounts/1")
    responses.append(http.get("/api/v1/accounts/1"))
    assert [r.status_code for r in responses] == [200, 404, 401, 200, 401, 500, 403]
    ids = [r.headers["x-request-context-id"] for r in responses]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 for i in ids)


def test_oauth_tokens_expire_and_refresh(http: httpx.Client, server: str) -> None:
    minted = ok(http.post("/_sim/oauth/codes", json={"user_id": 1}))
    client = {"client_id": "10000000000001", "client_secret": "sim-client-secret"}
    first = ok(
        http.post("/login/oauth2/token", data={**client, "grant_type": "authorization_code", "code": minted["code"]})
    )
    assert (first["token_type"], first["expires_in"], first["user"]["id"]) == ("Bearer", 3600, 1)
    assert (
        http.post(
            "/login/oauth2/token", data={**client, "grant_type": "authorization_code", "code": minted["code"]}
        ).status_code
        == 400
    )  # single use
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert httpx.get(server + "/api/v1/accounts/1", headers=bearer).status_code == 200

    http.post("/_sim/oauth/expire", json={}).raise_for_status()  # an hour passes
    expired = httpx.get(server + "/api/v1/accounts/1", headers=bearer)
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer realm="canvas-lms"'
    assert expired.json() == {"errors": [{"message": "Expired access token"}]}

    refreshed = ok(
        http.post(
            "/login/oauth2/token",
            data={**client, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
    )
    assert "refresh_token" not in refreshed  # "the same refresh token is to be reused"
    assert refreshed["access_token"] != first["access_token"]
    fresh = {"Authorization": f"Bearer {refreshed['access_token']}"}
    assert httpx.get(server + "/api/v1/accounts/1", headers=fresh).status_code == 200
    again = ok(
        http.post(
            "/login/oauth2/token",
            data={**client, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
    )
    assert again["access_token"] not in (first["access_token"], refreshed["access_token"])

    # Lifetime is configurable: zero means every issued token is already expired.
    http.put("/_sim/oauth", json={"access_token_lifetime": 0}).raise_for_status()
    dead = ok(
        http.post(
            "/login/oauth2/token",
            data={**client, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
    )
    assert (
        httpx.get(
            server + "/api/v1/accounts/1", headers={"Authorization": f"Bearer {dead['access_token']}"}
        ).status_code
        == 401
    )
    bad_client = http.post(
        "/login/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": "x", "client_secret": "y", "refresh_token": "z"},
    )
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    unknown = http.post("/login/oauth2/token", data={**client, "grant_type": "refresh_token", "refresh_token": "z"})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    assert http.get("/api/v1/accounts/1").status_code == 200  # static tokens keep working


def test_lost_response_on_course_create_still_creates_the_course(http: httpx.Client) -> None:
    http.put("/_sim/faults", json={"lost_response_rate": 1.0, "remaining": 1}).raise_for_status()
    lost = http.post("/api/v1/accounts/1/courses", data={"course[name]": "Chem", "course[sis_course_id]": "C-LOST"})
    assert lost.status_code == 504
    found = ok(http.get("/api/v1/courses/sis_course_id:C-LOST"))
    assert found["name"] == "Chem"
    retry = http.post("/api/v1/accounts/1/courses", data={"course[name]": "Chem", "course[sis_course_id]": "C-LOST"})
    assert retry.status_code == 400  # a blind retry hits the SIS-id conflict
    assert ok(http.get("/_sim/stats"))["creates_by_vendor_guid"]["course"] == {"C-LOST": 1}


# --- an independent client, unchanged ----------------------------------------------------------


def test_canvasapi_drives_accounts_users_courses_sections_enrollments_and_submissions(
    http: httpx.Client,
    server: str,
) -> None:
    import canvasapi  # a dev dependency: its absence must fail, not skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # it warns about loopback http:// URLs
        canvas = canvasapi.Canvas(server, ADMIN)
    account = canvas.get_account(1)
    assert account.name == "District A"

    user = account.create_user(pseudonym={"unique_id": "ann@d.org", "sis_user_id": "S-1"}, user={"name": "Ann Lee"})
    assert canvas.get_user("S-1", "sis_user_id").id == user.id
    user.edit(user={"short_name": "Ann"})
    logins = list(user.get_user_logins())
    assert [lg.unique_id for lg in logins] == ["ann@d.org"]
    logins[0].edit(login={"sis_user_id": "S-1b"})
    assert canvas.get_user("S-1b", "sis_user_id").id == user.id

    term = account.create_enrollment_term(enrollment_term={"name": "Fall", "sis_term_id": "T-F"})
    assert [t.name for t in account.get_enrollment_terms()] == ["Default Term", "Fall"]
    course = account.create_course(course={"name": "Bio", "sis_course_id": SIS_ID, "term_id": term.id}, offer=True)
    assert canvas.get_course(SIS_ID_IN_PATH, use_sis_id=True).id == course.id
    assert course.update(course={"name": "Bio II"}) == "Bio II"
    section = course.create_course_section(course_section={"name": "P1", "sis_section_id": "SEC-1"})
    assert canvas.get_section("SEC-1", use_sis_id=True).id == section.id
    assert [s.id for s in course.get_sections()] == [section.id]

    enrollment = section.enroll_user(user, enrollment={"type": "StudentEnrollment", "enrollment_state": "active"})
    assert [e.user_id for e in course.get_enrollments()] == [user.id]
    enrollment.deactivate("conclude")
    assert list(course.get_enrollments()) == []
    assert [e.id for e in course.get_enrollments(state=["completed"])] == [enrollment.id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        again = course.enroll_user(
            user, "StudentEnrollment", enrollment={"enrollment_state": "active", "course_section_id": section.id}
        )
    assert again.id == enrollment.id

    assignment = course.create_assignment(assignment={"name": "Quiz", "points_possible": 20, "published": True})
    submission = assignment.get_submission(user)
    submission.edit(submission={"posted_grade": "15"})
    assert (submission.score, submission.grade) == (15.0, "15")
    progress = assignment.submissions_bulk_update(grade_data={user.id: {"posted_grade": "18"}})
    assert progress.query().workflow_state == "completed"
    assert [s.score for s in course.get_multiple_submissions(student_ids=["all"])] == [18.0]
    assert course.delete() == "true"
    assert http.get(f"/api/v1/courses/{course.id}").status_code == 404
