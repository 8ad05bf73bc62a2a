"""The Canvas simulator as an audit-log change source, over real loopback HTTP (no mocks).

Course events from course writes, grade-change events from grade writes (request_id = the write's
X-Request-Context-Id), anonymous grading, the five grade-change routes, compound-document shapes,
window bounds and tie order, bookmark paging that stays stable while events arrive at the head,
human changes through /_sim/, and the "not configured" switch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.canvas import CanvasSimulator
from tests import canvas_fixtures
from tests.canvas_fixtures import ADMIN, TEACHER

sim = canvas_fixtures.sim
server = canvas_fixtures.server

COURSE_FEED = "/api/v1/audit/course/accounts/1"


@pytest.fixture
def http(sim: CanvasSimulator, server: str) -> Iterator[httpx.Client]:
    sim.reset()
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def course(http: httpx.Client, sis: str = "C-1", **extra: str) -> dict[str, Any]:
    form = {"course[name]": "Biology", "course[sis_course_id]": sis, **extra}
    return ok(http.post("/api/v1/accounts/1/courses", data=form))  # type: ignore[no-any-return]


def gradebook(http: httpx.Client) -> tuple[int, int, int]:
    """(course id, student id, assignment id) with a 10-point assignment and student S-1."""
    course_id = course(http)["id"]
    student = ok(
        http.post("/api/v1/accounts/1/users", data={"pseudonym[unique_id]": "s1", "pseudonym[sis_user_id]": "S-1"})
    )
    ok(
        http.post(
            f"/api/v1/courses/{course_id}/enrollments",
            data={"enrollment[user_id]": str(student["id"]), "enrollment[enrollment_state]": "active"},
        )
    )
    assignment = ok(
        http.post(
            f"/api/v1/courses/{course_id}/assignments",
            data={"assignment[name]": "Lab", "assignment[points_possible]": "10"},
        )
    )
    return course_id, student["id"], assignment["id"]


def walk(http: httpx.Client, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every event of a feed, following rel=next only."""
    events: list[dict[str, Any]] = []
    next_url: str | None = url
    first = True
    while next_url:
        response = http.get(next_url, params=params if first else None)
        first = False
        events += ok(response)["events"]
        next_url = response.links.get("next", {}).get("url")
    return events


def grade(http: httpx.Client, course_id: int, assignment_id: int, user: str, **form: str) -> httpx.Response:
    path = f"/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions/{user}"
    return http.put(path, data={f"submission[{k}]": v for k, v in form.items()})


# --- course events ----------------------------------------------------------------------------


def test_course_writes_append_course_events(http: httpx.Client) -> None:
    created = course(http, "C-1", **{"course[course_code]": "BIO", "offer": "true"})
    cid = created["id"]
    ok(http.put(f"/api/v1/courses/{cid}", data={"course[name]": "Biology II", "course[course_code]": "BIO"}))
    ok(http.put(f"/api/v1/courses/{cid}", data={"course[event]": "conclude"}))
    ok(http.put(f"/api/v1/courses/{cid}", data={"course[event]": "offer"}))
    ok(http.delete(f"/api/v1/courses/{cid}", params={"event": "delete"}))
    ok(http.put(f"/api/v1/courses/{cid}", data={"course[event]": "undelete"}))

    events = list(reversed(walk(http, f"/api/v1/audit/course/courses/{cid}")))
    assert [e["event_type"] for e in events] == [
        "created",
        "published",
        "updated",
        "concluded",
        "unconcluded",
        "deleted",
        "restored",
    ]
    first = events[0]
    assert first["event_data"]["name"] == [None, "Biology"]
    assert first["event_data"]["sis_source_id"] == [None, "C-1"]
    assert first["event_data"]["created_source"] == "api"
    assert events[2]["event_data"] == {"name": ["Biology", "Biology II"]}  # changed fields only
    assert all(e["event_data"] == {} for e in events[3:])
    for event in events:
        assert event["event_source"] == "api"
        assert event["links"] == {"course": cid, "user": 1, "page_view": None, "sis_batch": None}
        assert event["created_at"].endswith("Z") and len(event["id"]) == 36
    assert len(walk(http, COURSE_FEED)) == 7


def test_human_course_changes_through_the_control_api(http: httpx.Client) -> None:
    cid = course(http)["id"]
    manual = ok(http.post(f"/_sim/courses/{cid}/change", json={"user_id": 42, "course": {"name": "Bio (Teacher)"}}))
    assert (manual["name"], manual["events_recorded"]) == ("Bio (Teacher)", 1)
    ok(
        http.post(
            f"/_sim/courses/{cid}/change",
            json={"user_id": 7, "event_source": "sis", "sis_batch_id": 99, "event": "conclude"},
        )
    )
    newest, previous = walk(http, f"/api/v1/audit/course/courses/{cid}", {"per_page": 2})[:2]
    by_type = {e["event_type"]: e for e in (newest, previous)}
    assert list(by_type) == ["concluded", "updated"]  # same-second writes still list newest first
    assert by_type["updated"]["event_source"] == "manual"
    assert by_type["updated"]["links"]["user"] == 42
    assert by_type["concluded"]["event_source"] == "sis"
    assert by_type["concluded"]["links"]["sis_batch"] == 99
    linked_users = {u["id"] for u in ok(http.get(f"/api/v1/audit/course/courses/{cid}"))["linked"]["users"]}
    assert linked_users == {1, 7, 42}


# --- grade events -----------------------------------------------------------------------------


def test_grade_writes_append_grade_events_with_the_writes_request_id(http: httpx.Client) -> None:
    cid, student, aid = gradebook(http)
    first = grade(http, cid, aid, "sis_user_id:S-1", posted_grade="8")
    second = grade(http, cid, aid, str(student), posted_grade="9.5")
    same = grade(http, cid, aid, str(student), posted_grade="9.5")  # no change: no event
    excused = grade(http, cid, aid, str(student), excuse="true")
    assert {r.status_code for r in (first, second, same, excused)} == {200}

    events = walk(http, f"/api/v1/audit/grade_change/courses/{cid}")
    assert [e["request_id"] for e in events] == [r.headers["x-request-context-id"] for r in (excused, second, first)]
    newest = events[0]
    assert (newest["grade_before"], newest["grade_after"], newest["excused_before"], newest["excused_after"]) == (
        "9.5",
        None,
        False,
        True,
    )
    assert [(e["grade_before"], e["grade_after"], e["version_number"]) for e in events[1:]] == [
        ("8", "9.5", 2),
        (None, "8", 1),
    ]
    assert events[-1]["points_possible_before"] is None and events[-1]["points_possible_after"] == 10.0
    assert newest["event_type"] == "grade_change" and newest["graded_anonymously"] is False
    assert newest["links"] == {"assignment": aid, "course": cid, "student": student, "grader": 1, "page_view": None}


def test_anonymous_grade_events_have_no_student(http: httpx.Client) -> None:
    cid, student, aid = gradebook(http)
    grade(http, cid, aid, str(student), posted_grade="4").raise_for_status()
    ok(http.put(f"/_sim/assignments/{aid}", json={"anonymous_grading": True}))
    grade(http, cid, aid, str(student), posted_grade="6").raise_for_status()

    events = walk(http, f"/api/v1/audit/grade_change/assignments/{aid}")
    assert [(e["links"]["student"], e["graded_anonymously"]) for e in events] == [(None, True), (student, False)]
    doc = ok(http.get(f"/api/v1/audit/grade_change/courses/{cid}", params={"per_page": 1}))
    assert doc["linked"]["users"] == [u for u in doc["linked"]["users"] if u["id"] != student]
    # The student route drops such events entirely, as does a student condition in the advanced query.
    assert [e["grade_after"] for e in walk(http, f"/api/v1/audit/grade_change/students/{student}")] == ["4"]
    query = walk(http, "/api/v1/audit/grade_change", {"student_id": student, "course_id": cid})
    assert [e["grade_after"] for e in query] == ["4"]


def test_grade_change_routes_and_the_advanced_query(http: httpx.Client) -> None:
    cid, student, aid = gradebook(http)
    grade(http, cid, aid, str(student), posted_grade="5").raise_for_status()
    teacher = ok(
        http.post(
            "/_sim/grades",
            json={
                "course_id": str(cid),
                "assignment_id": str(aid),
                "user_id": "sis_user_id:S-1",
                "grader_id": 77,
                "posted_grade": "7",
            },
        )
    )
    assert teacher["grader_id"] == 77

    by_grader = walk(http, "/api/v1/audit/grade_change/graders/77")
    assert [(e["grade_after"], e["request_id"]) for e in by_grader] == [("7", teacher["request_id"])]
    assert len(walk(http, "/api/v1/audit/grade_change/graders/1")) == 1
    assert len(walk(http, f"/api/v1/audit/grade_change/students/{student}")) == 2
    assert len(walk(http, "/api/v1/audit/grade_change/students/sis_user_id:S-1")) == 2
    assert len(walk(http, f"/api/v1/audit/grade_change/assignments/{aid}")) == 2
    assert len(walk(http, "/api/v1/audit/grade_change", {"assignment_id": aid, "grader_id": 77})) == 1
    assert len(walk(http, "/api/v1/audit/grade_change", {"course_id": cid})) == 2

    missing = http.get("/api/v1/audit/grade_change")
    assert (missing.status_code, missing.json()) == (400, {"message": "Must specify at least one query condition"})
    assert http.get("/api/v1/audit/grade_change/assignments/999").status_code == 404


# --- shapes, permissions, switches --------------------------------------------------------------


def test_compound_document_shapes(http: httpx.Client) -> None:
    cid = course(http)["id"]
    superset = ok(http.get(COURSE_FEED))
    assert set(superset) == {"meta", "links", "events", "linked", "courses", "users", "page_views"}
    assert superset["meta"] == {"primaryCollection": "events"}
    assert superset["courses"] == superset["linked"]["courses"]
    assert [c["id"] for c in superset["courses"]] == [cid]
    assert superset["links"]["events.course"].endswith("/api/v1/courses/{events.course}")

    http.put("/_sim/audit", json={"shape": "seed"}).raise_for_status()
    seed = ok(http.get(COURSE_FEED))
    assert set(seed) == {"meta", "events", "courses", "users", "page_views"}
    assert seed[seed["meta"]["primaryCollection"]] == superset["events"]

    http.put("/_sim/audit", json={"shape": "canvas", "event_data_as_string": True}).raise_for_status()
    canvas = ok(http.get(COURSE_FEED))
    assert set(canvas) == {"links", "events", "linked"}
    assert set(canvas["linked"]) == {"courses", "users", "page_views"}
    assert json.loads(canvas["events"][0]["event_data"])["name"] == [None, "Biology"]
    grades = ok(http.get(f"/api/v1/audit/grade_change/courses/{cid}"))
    assert set(grades["linked"]) == {"assignments", "courses", "users", "page_views"}
    assert http.put("/_sim/audit", json={"shape": "xml"}).status_code == 422


def test_audit_needs_admin_rights_and_can_be_not_configured(http: httpx.Client, server: str) -> None:
    course(http)
    teacher = httpx.get(server + COURSE_FEED, headers={"Authorization": f"Bearer {TEACHER}"})
    assert teacher.status_code == 401 and "www-authenticate" not in teacher.headers
    http.put("/_sim/audit", json={"configured": False}).raise_for_status()
    for path in (COURSE_FEED, "/api/v1/audit/course/courses/1", "/api/v1/audit/grade_change/courses/1"):
        gone = http.get(path)
        assert gone.status_code == 404, path
        assert gone.json() == {"errors": [{"message": "The specified resource does not exist."}]}
    http.put("/_sim/audit", json={"configured": True}).raise_for_status()
    assert http.get(COURSE_FEED).status_code == 200


# --- windows, ties and paging -----------------------------------------------------------------


def test_five_thousand_events_over_three_days_window_bounds_and_ties(http: httpx.Client) -> None:
    cid = course(http)["id"]
    seeded = ok(
        http.post(
            "/_sim/audit/seed",
            json={
                "kind": "course",
                "course_id": cid,
                "count": 5000,
                "days": 3,
                "same_second": 50,
                "end": "2026-03-04T12:00:00Z",
            },
        )
    )
    assert (seeded["first"], seeded["last"]) == ("2026-03-01T12:00:00Z", "2026-03-04T12:00:00Z")
    tie = seeded["shared_second"]

    window = {"start_time": "2026-03-01T00:00:00Z", "end_time": "2026-03-05T00:00:00Z", "per_page": 100}
    everything = walk(http, f"/api/v1/audit/course/courses/{cid}", window)
    assert len(everything) == len({e["id"] for e in everything}) == 5000
    stamps = [e["created_at"] for e in everything]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    shared = [e for e in everything if e["created_at"] == tie]
    assert len(shared) == 50
    assert [e["id"] for e in shared] == sorted((e["id"] for e in shared), reverse=True)  # ties: id descending

    exact = {"start_time": tie, "end_time": tie, "per_page": 100}
    assert len(walk(http, f"/api/v1/audit/course/courses/{cid}", exact)) == 50  # both bounds inclusive
    http.put("/_sim/audit", json={"end_inclusive": False}).raise_for_status()
    assert walk(http, f"/api/v1/audit/course/courses/{cid}", exact) == []
    http.put("/_sim/audit", json={"end_inclusive": True, "start_inclusive": False}).raise_for_status()
    assert walk(http, f"/api/v1/audit/course/courses/{cid}", exact) == []

    http.put("/_sim/audit", json={"start_inclusive": True, "tie_order": "id_asc"}).raise_for_status()
    ascending = walk(http, f"/api/v1/audit/course/courses/{cid}", exact)
    assert [e["id"] for e in ascending] == sorted(e["id"] for e in shared)

    # An unparseable bound is ignored (App. A.3) unless the simulator is told to reject it.
    day = {"start_time": "2026-03-04T00:00:00Z", "end_time": "not a time", "per_page": 100}
    assert walk(http, f"/api/v1/audit/course/courses/{cid}", day) != []
    http.put("/_sim/audit", json={"invalid_time": "reject"}).raise_for_status()
    assert http.get(f"/api/v1/audit/course/courses/{cid}", params=day).status_code == 400


def test_bookmark_pages_stay_stable_while_events_arrive_at_the_head(http: httpx.Client) -> None:
    cid = course(http)["id"]
    ok(
        http.post(
            "/_sim/audit/seed",
            json={
                "kind": "course",
                "course_id": cid,
                "count": 60,
                "days": 1,
                "same_second": 12,
                "end": "2026-03-04T12:00:00Z",
            },
        )
    )
    assert len(walk(http, COURSE_FEED, {"per_page": 100})) == 61  # the 60 seeded plus the course's "created"

    for frozen in (False, True):
        expected = {e["id"] for e in walk(http, COURSE_FEED, {"per_page": 100})}
        params: dict[str, Any] = {"per_page": 5}
        if frozen:
            params["end_time"] = "2026-12-31T00:00:00Z"
        seen: list[str] = []
        response = http.get(COURSE_FEED, params=params)
        inserted = 0
        while True:
            page = ok(response)["events"]
            assert len(page) <= 5
            seen += [e["id"] for e in page]
            assert "last" not in response.links and "prev" not in response.links
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                break
            assert "page=bookmark%3A" in next_url
            if inserted < 200:  # 200 new events at the head while the walk goes on
                ok(http.post("/_sim/audit/inject", json={"course_id": cid, "count": 20}))
                inserted += 20
            response = http.get(next_url)
        head = set(seen) - expected
        assert len(seen) == len(set(seen))  # nothing seen twice
        assert expected <= set(seen)  # nothing skipped
        assert not head, "events injected at the head never reach later pages"
        assert inserted == 200
    assert http.get(COURSE_FEED, params={"page": "bookmark:???"}).status_code == 400


def test_account_feed_covers_sub_account_courses(http: httpx.Client) -> None:
    school = ok(http.post("/_sim/accounts", json={"name": "School", "parent_account_id": 1}))
    art = ok(http.post(f"/api/v1/accounts/{school['id']}/courses", data={"course[name]": "Art"}))
    course(http)
    district = walk(http, COURSE_FEED)
    assert len(district) == 2
    assert [e["links"]["course"] for e in walk(http, f"/api/v1/audit/course/accounts/{school['id']}")] == [art["id"]]


def test_seeded_grade_history_pages_by_bookmark_with_a_window(http: httpx.Client) -> None:
    cid, student, aid = gradebook(http)
    seeded = ok(
        http.post(
            "/_sim/audit/seed",
            json={
                "kind": "grade",
                "course_id": cid,
                "assignment_id": aid,
                "student_id": student,
                "count": 30,
                "days": 2,
                "same_second": 5,
                "end": "2026-03-03T00:00:00Z",
                "user_id": 77,
            },
        )
    )
    assert seeded["created"] == 30
    events = walk(http, f"/api/v1/audit/grade_change/courses/{cid}", {"per_page": 4})
    assert len(events) == len({e["id"] for e in events}) == 30
    assert {e["links"]["grader"] for e in events} == {77}
    day_two = walk(
        http,
        f"/api/v1/audit/grade_change/students/{student}",
        {"start_time": "2026-03-02T00:00:00Z", "end_time": "2026-03-03T00:00:00Z"},
    )
    assert 0 < len(day_two) < 30
    assert all("2026-03-02" <= e["created_at"] <= "2026-03-03T00:00:00Z" for e in day_two)
