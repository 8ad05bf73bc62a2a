"""The MatrixLMS simulator over real loopback HTTP: the seed's own example requests (httpx and
requests), the rate limit and its lockout on the simulated clock, add_user matching with
name-and-birth-date twins, add_class with a lost answer, all-or-nothing enrollment, nested
arguments and paging. No timing thresholds: the clock is frozen or scaled through /_sim/clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from simulators.matrixlms import DEMO_API_KEY, RATE_LIMIT_MESSAGE, KeyGrant, MatrixSimulator, create_app
from simulators.server import ThreadedServer

JSON_UTF8 = "application/json; charset=utf-8"  # seed 000:L29
OTHER_KEY = "99-10-abcdef0123"  # a second administrator key of the same site


@pytest.fixture(scope="module")
def sim() -> MatrixSimulator:
    return MatrixSimulator(keys={DEMO_API_KEY: KeyGrant(), OTHER_KEY: KeyGrant()})


@pytest.fixture(scope="module")
def server(sim: MatrixSimulator) -> Iterator[str]:
    with ThreadedServer(create_app(sim)) as srv:
        yield srv.url


@pytest.fixture
def http(sim: MatrixSimulator, server: str) -> Iterator[httpx.Client]:
    sim.reset()
    with httpx.Client(base_url=server) as client:
        yield client


def call(http: httpx.Client, function: str, params: Any = None, *, key: str = DEMO_API_KEY) -> httpx.Response:
    """One API call; ``params`` is a dict or a list of pairs (for repeated bracket keys)."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params or [])
    return http.get(f"/api/{function}", params=[("api_key", key), *pairs])


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_UTF8
    return response.json()


def failed(response: httpx.Response, status: int = 400) -> str:
    """The message of a documented error answer: that status and exactly ``{"message": ...}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["message"], body
    return str(body["message"])


# --- independent clients, written from the seed's example lines ------------------------------


SEED_EXAMPLES = {
    # seed 000:L33-35
    "get_version": ("/api/get_version?api_key=23-34-d315a3421", {"version": 1}),
    # seed 000:L36-38 (the response is truncated with "..." in the seed: compare the shown keys)
    "get_assignments_for_class": (
        "/api/get_assignments_for_class?api_key=23-34-d315a3421&class_id=1456",
        [{"type": "Freeform", "name": "PLOP", "points": 100.0}, {"type": "Quiz", "name": "XXX", "points": 0.0}],
    ),
    # seed 000:L39-41
    "get_users_with_ids": (
        "/api/get_users_with_ids?api_key=23-34-d315a3421&user_ids[]=1&user_ids[]=2",
        [{"ssn": "123-456-7890", "last_name": "Smith"}, {"ssn": None, "last_name": "Jones"}],
    ),
}


def _shown(actual: Any, documented: Any) -> Any:
    """``actual`` reduced to the keys the seed's (truncated) example shows."""
    if isinstance(documented, list):
        return [_shown(a, d) for a, d in zip(actual, documented, strict=True)]
    if isinstance(documented, dict):
        return {key: actual[key] for key in documented}
    return actual


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_seed_example_requests_get_the_documented_responses(http: httpx.Client, server: str, client: str) -> None:
    for path, documented in SEED_EXAMPLES.values():
        if client == "httpx":
            response: httpx.Response | requests.Response = httpx.get(server + path)
        else:
            response = requests.get(server + path, timeout=10)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == JSON_UTF8
        assert _shown(response.json(), documented) == documented, path
    # seed 000:L47-49: get_version with an incorrect API key
    wrong = "/api/get_version?api_key=23-34-d31dae3671"
    for response in (httpx.get(server + wrong), requests.get(server + wrong, timeout=10)):
        assert response.status_code == 401  # seed 000:L43
        assert response.headers["content-type"] == JSON_UTF8
        assert response.json() == {"message": "Invalid API key"}
    assert httpx.get(server + "/api/get_version").json() == {"message": "Invalid API key"}  # no key at all


def test_simulator_logs_neither_api_key_nor_personal_data(
    http: httpx.Client, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ok(call(http, "add_user", {"first_name": "Zelda", "last_name": "Quimby", "birthdate": "2010-01-02"}))
    ok(call(http, "get_users_with_ids", [("user_ids[]", "1")]))
    failed(call(http, "add_user", {"first_name": "Zelda"}, key="secret-wrong-key"), 401)
    # The test's own client logs its URLs; everything else (server, app) must not.
    server_side = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    for secret in (DEMO_API_KEY, "secret-wrong-key", "Zelda", "Quimby", "Smith"):
        assert secret not in server_side
    keys = http.get("/_sim/keys").json()["keys"]
    assert DEMO_API_KEY not in str(keys) and keys[0]["hint"] == DEMO_API_KEY[:4] + "..."


# --- rate limit and lockout ------------------------------------------------------------------


def test_121st_call_in_a_minute_is_refused_and_every_call_for_the_next_minute_too(http: httpx.Client) -> None:
    # seed 000:L23. A frozen clock puts all calls in one simulated instant, so the test does not
    # depend on how fast this machine answers.
    http.post("/_sim/clock", json={"scale": 0}).raise_for_status()
    for _ in range(120):
        assert ok(call(http, "get_version")) == {"version": 1}
    assert failed(call(http, "get_version")) == RATE_LIMIT_MESSAGE  # the 121st

    # Locked out: every function, writes and unknown names included, for 60 simulated seconds.
    http.post("/_sim/clock", json={"advance_seconds": 59}).raise_for_status()
    for function, params in (("get_version", {}), ("add_class", {"name": "Never"}), ("get_all_classes", {}),
                             ("no_such_function", {})):
        assert failed(call(http, function, params)) == RATE_LIMIT_MESSAGE, function
    assert failed(call(http, "get_version", key=OTHER_KEY)) == RATE_LIMIT_MESSAGE  # per site: every key

    # Let simulated time run 600x faster and poll until the lockout is over.
    http.post("/_sim/clock", json={"scale": 600}).raise_for_status()
    polls = 0
    while (response := call(http, "get_version")).status_code != 200:
        assert failed(response) == RATE_LIMIT_MESSAGE
        polls += 1
        assert polls < 100_000, "the lockout never ended"
    http.post("/_sim/clock", json={"scale": 0}).raise_for_status()
    for _ in range(5):
        assert ok(call(http, "get_version")) == {"version": 1}

    stats = http.get("/_sim/stats", params={"site": "demo"}).json()
    site = stats["sites"]["demo"]
    assert len(site["lockouts"]) == 1 and site["lockouts"][0]["seconds"] == 60
    assert site["refused"] == 1 + 4 + 1 + polls
    assert site["functions"]["add_class"] == {"400": 1}
    assert site["max_calls_in_any_window"] >= 121
    assert sum(w["calls"] for w in site["windows"]) == site["calls"]
    assert http.get("/_sim/state", params={"counts_only": 1}).json()["sites"]["demo"]["counts"]["classes"] == 1


def test_rolling_window_fixed_window_and_per_key_budget(http: httpx.Client) -> None:
    http.post("/_sim/clock", json={"scale": 0}).raise_for_status()
    http.put("/_sim/config", json={"rate_limit": {"limit": 3}}).raise_for_status()
    for _ in range(3):
        ok(call(http, "get_version"))
    http.post("/_sim/clock", json={"advance_seconds": 59}).raise_for_status()
    assert failed(call(http, "get_version")) == RATE_LIMIT_MESSAGE  # rolling: the 3 calls are < 60 s old

    # Fixed windows: three calls at second 59 of a minute, and the next minute starts afresh.
    http.put("/_sim/config", json={"rate_limit": {"window": "fixed"}}).raise_for_status()
    now = http.get("/_sim/clock").json()["epoch"]
    http.post("/_sim/clock", json={"advance_seconds": 60 - now % 60 + 59}).raise_for_status()
    for _ in range(3):
        ok(call(http, "get_version"))
    http.post("/_sim/clock", json={"advance_seconds": 2}).raise_for_status()
    ok(call(http, "get_version"))

    # Per key: one key's lockout leaves the other key of the same site alone.
    http.put("/_sim/config", json={"rate_limit": {"window": "rolling", "scope": "key"}}).raise_for_status()
    for _ in range(3):
        ok(call(http, "get_version"))
    assert failed(call(http, "get_version")) == RATE_LIMIT_MESSAGE
    assert ok(call(http, "get_version", key=OTHER_KEY)) == {"version": 1}

    # Configurable status; the message stays the way to recognise it.
    http.put("/_sim/config", json={"rate_limit": {"status": 429, "limit": 0}}).raise_for_status()
    assert failed(call(http, "get_version", key=OTHER_KEY), 429) == RATE_LIMIT_MESSAGE


def test_control_api_is_never_rate_limited_and_config_is_validated(http: httpx.Client) -> None:
    http.put("/_sim/config", json={"rate_limit": {"limit": 0}}).raise_for_status()
    assert failed(call(http, "get_version")) == RATE_LIMIT_MESSAGE
    for _ in range(5):
        assert http.get("/_sim/state", params={"counts_only": 1}).status_code == 200
    assert http.put("/_sim/config", json={"readd_unenrolled": "sometimes"}).status_code == 422
    assert http.put("/_sim/config", json={"rate_limit": {"window": "sliding"}}).status_code == 422


# --- add_user matching -----------------------------------------------------------------------


def _twins(http: httpx.Client) -> list[dict[str, Any]]:
    """The generator's 19 twin pairs (38 students sharing first, last name and birth date)."""
    http.post("/_sim/seed", json={"size": 400, "twins": 19, "classes": 1, "examples": False}).raise_for_status()
    users = http.get("/_sim/state").json()["sites"]["demo"]["users"]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for user in users:
        if user["student"]:
            groups.setdefault((user["first_name"], user["last_name"], user["birthdate"]), []).append(user)
    shared = [group for group in groups.values() if len(group) > 1]
    assert len(shared) == 19 and all(len(group) == 2 for group in shared)
    return [user for group in shared for user in group]


def test_twins_stay_distinct_with_ids_and_merge_without_them(http: httpx.Client, sim: MatrixSimulator) -> None:
    twins = _twins(http)
    assert len(twins) == 38 and len({t["student_id"] for t in twins}) == 38

    sim.reset()  # an empty Matrix site as the target
    fields = ("first_name", "last_name", "birthdate")
    with_ids = [ok(call(http, "add_user", {**{f: t[f] for f in fields}, "userid": t["userid"],
                                           "student_id": t["student_id"], "account_types": "student"}))
                for t in twins]
    assert len({answer["id"] for answer in with_ids}) == 38
    assert [answer["userid"] for answer in with_ids] == [t["userid"] for t in twins]
    ok(call(http, "add_user", {**{f: twins[0][f] for f in fields}, "userid": twins[0]["userid"]}))  # re-send
    counts = http.get("/_sim/state", params={"counts_only": 1}).json()["sites"]["demo"]["counts"]
    assert counts["users"] == 38 + 3  # plus the seed's two example users and the site administrator

    sim.reset()
    without_ids = [ok(call(http, "add_user", {f: t[f] for f in fields}))["id"] for t in twins]
    assert len(set(without_ids)) == 19, "name + birth date matched the first twin of every pair"
    assert without_ids[0::2] == without_ids[1::2]


def test_add_user_match_order_and_update_user_without_match(http: httpx.Client) -> None:
    first = ok(call(http, "add_user", {"first_name": "Ann", "last_name": "Lee", "userid": "alee",
                                       "student_id": "S1", "birthdate": "2011-03-04"}))
    teacher = ok(call(http, "add_user", {"first_name": "Tom", "last_name": "Ray", "teacher_id": "T9",
                                         "account_types": "teacher"}))
    # userid wins over a student ID that belongs to nobody; the student ID is updated.
    assert ok(call(http, "add_user", {"userid": "alee", "student_id": "S2"})) == first
    assert ok(call(http, "add_user", {"student_id": "S2", "email": "ann@example.org"}))["id"] == first["id"]
    assert ok(call(http, "add_user", {"teacher_id": "T9", "phone": "555"}))["id"] == teacher["id"]
    users = {u["id"]: u for u in ok(call(http, "get_users_with_ids", {"user_ids": f"[{first['id']},{teacher['id']}]"}))}
    assert users[first["id"]]["student_id"] == "S2" and users[first["id"]]["email"] == "ann@example.org"
    assert users[teacher["id"]]["teacher"] is True and users[teacher["id"]]["student"] is False

    message = failed(call(http, "update_user", {"userid": "nobody", "first_name": "X"}))
    assert "No user matches" in message
    assert ok(call(http, "update_user", {"userid": "alee", "last_name": "Lee-Smith"}))["id"] == first["id"]

    # The literal reading (switch): a twin with fresh ids still matches by name + birth date.
    http.put("/_sim/config", json={"name_birthdate_match": "always"}).raise_for_status()
    twin = ok(call(http, "add_user", {"first_name": "Ann", "last_name": "Lee-Smith", "birthdate": "2011-03-04",
                                      "userid": "alee2", "student_id": "S3"}))
    assert twin["id"] == first["id"] and twin["userid"] == "alee2"

    assert failed(call(http, "add_user", {"first_name": "A", "last_name": "B", "favourite": "x"})) == (
        "Unknown attribute: favourite")
    assert "birthdate" in failed(call(http, "add_user", {"first_name": "A", "last_name": "B", "birthdate": "3/4/2011"}))


# --- add_class is not idempotent ---------------------------------------------------------------


def test_add_class_with_a_lost_answer_exists_and_a_retry_makes_a_duplicate(http: httpx.Client) -> None:
    http.put("/_sim/faults", json={"lost_response_rate": 1.0, "remaining": 1}).raise_for_status()
    lost = call(http, "add_class", {"name": "Algebra I - P1 [S30001]", "style": "Instructor"})
    assert lost.status_code == 504 and lost.content == b""

    found = ok(call(http, "get_classes_that_match", {"name": "Algebra I - P1 [S30001]"}))
    assert len(found) == 1, "the class was created although its answer was lost"
    retry = ok(call(http, "add_class", {"name": "Algebra I - P1 [S30001]", "style": "Instructor"}))
    assert isinstance(retry, int) and retry != found[0]["id"]
    again = ok(call(http, "get_classes_that_match", {"name": "Algebra I - P1 [S30001]"}))
    assert sorted(c["id"] for c in again) == sorted([found[0]["id"], retry])  # a duplicate: look up first
    assert http.get("/_sim/faults").json()["injected"] == 1

    # add_class/edit_class answer the bare id; codes are not settable (strict attributes).
    assert ok(call(http, "edit_class", {"class_id": retry, "attributes[name]": "Renamed"})) == retry
    assert "course_code" in failed(call(http, "add_class", {"name": "X", "course_code": "M1"}))


# --- members ---------------------------------------------------------------------------------


def _class_and_students(http: httpx.Client, n: int) -> tuple[int, list[int]]:
    class_id = ok(call(http, "add_class", {"name": "Biology - P2", "style": "Instructor"}))
    ids = [ok(call(http, "add_user", {"first_name": f"S{i}", "last_name": "Kid", "userid": f"kid{i}"}))["id"]
           for i in range(n)]
    return class_id, ids


def _enrolled(http: httpx.Client, class_id: int) -> dict[int, bool]:
    """user id -> unenrolled flag, from get_students_for_class."""
    return {s["id"]: s["unenrolled"] for s in ok(call(http, "get_students_for_class", {"class_id": class_id}))}


def test_add_students_is_all_or_nothing_unless_ignore_already_enrolled(http: httpx.Client) -> None:
    class_id, (a, b, c) = _class_and_students(http, 3)
    assert ok(call(http, "add_students_to_class", [("class_id", class_id), ("user_ids[]", a)])) == 1

    refused = call(http, "add_students_to_class", [("class_id", class_id), ("user_ids[]", a), ("user_ids[]", b)])
    assert "already enrolled" in failed(refused)
    assert _enrolled(http, class_id) == {a: False}, "one enrolled student failed the whole batch"
    assert "No user" in failed(call(http, "add_students_to_class",
                                    [("class_id", class_id), ("user_ids[]", b), ("user_ids[]", 999_999)]))
    assert _enrolled(http, class_id) == {a: False}

    batch = [("class_id", class_id), ("user_ids[]", a), ("user_ids[]", b)]
    assert ok(call(http, "add_students_to_class", [*batch, ("ignore_already_enrolled", "true")])) == 1
    assert ok(call(http, "add_students_to_class", [*batch, ("options[ignore_already_enrolled]", "true")])) == 0

    # Unenrolled students stay listed with unenrolled=true.
    assert ok(call(http, "remove_students_from_class", [("class_id", class_id), ("user_ids[]", a)])) == 1
    assert _enrolled(http, class_id) == {a: True, b: False}
    # Removing a non-member: ignored and not counted by default, a 400 with the switch.
    assert ok(call(http, "remove_students_from_class", [("class_id", class_id), ("user_ids[]", c)])) == 0
    http.put("/_sim/config", json={"remove_non_member": "error"}).raise_for_status()
    assert "not enrolled" in failed(call(http, "remove_students_from_class",
                                         [("class_id", class_id), ("user_ids[]", b), ("user_ids[]", c)]))
    assert _enrolled(http, class_id) == {a: True, b: False}

    # Re-adding an unenrolled student: an error with the switch, a re-enrollment by default.
    http.put("/_sim/config", json={"readd_unenrolled": "error"}).raise_for_status()
    readd = [("class_id", class_id), ("user_ids[]", a)]
    assert "already enrolled" in failed(call(http, "add_students_to_class", readd))
    http.put("/_sim/config", json={"readd_unenrolled": "reenroll"}).raise_for_status()
    assert ok(call(http, "add_students_to_class", readd)) == 1
    assert _enrolled(http, class_id) == {a: False, b: False}

    assert ok(call(http, "add_teachers_to_class", [("class_id", class_id), ("user_ids[]", c)])) == 1
    teachers = ok(call(http, "get_teachers_for_class", {"class_id": class_id}))
    assert [(t["id"], t["coteacher"]) for t in teachers] == [(c, False)]


# --- nested arguments and grades ---------------------------------------------------------------


def test_nested_arguments_in_bracket_and_json_string_form(http: httpx.Client) -> None:
    class_id, (a, b, c) = _class_and_students(http, 3)
    # user_ids as a JSON string; attributes as attributes[...] and as a JSON object.
    assert ok(call(http, "add_students_to_class", {"class_id": class_id, "user_ids": f"[{a},{b},{c}]"})) == 3
    ok(call(http, "update_user", {"userid": "kid0", "attributes[email]": "kid0@example.org"}))
    ok(call(http, "update_user", {"attributes": '{"userid": "kid1", "email": "kid1@example.org"}'}))
    emails = [u["email"] for u in ok(call(http, "get_users_with_ids", [("user_ids[]", a), ("user_ids[]", b)]))]
    assert emails == ["kid0@example.org", "kid1@example.org"]

    assignment = ok(call(http, "get_assignments_for_class", {"class_id": class_id}))
    assert assignment == []  # the API cannot create assignments; the control API can
    made = http.post("/_sim/assignments", json={"class_id": class_id, "name": "Lab 1", "points": 20}).json()

    indexed = [("assignment_id", made["id"]), ("grades[0][user_id]", a), ("grades[0][grade]", "B+"),
               ("grades[1][user_id]", b), ("grades[1][grade]", "15%")]
    assert ok(call(http, "set_grades_for_assignment", indexed)) is True
    rack = [("assignment_id", made["id"]), ("grades[][user_id]", c), ("grades[][grade]", "3.1")]
    assert ok(call(http, "set_grades_for_assignment", rack)) is True
    grades = {g["user_id"]: g["grading_periods"][0]["assignments"][0]
              for g in ok(call(http, "get_grades_for_class", {"class_id": class_id}))}
    assert (grades[a]["grade"], grades[b]["percent"], grades[c]["score"]) == ("B+", 15.0, 3.1)

    as_json = f'[{{"user_id": {a}, "grade": "AB"}}, {{"user_id": {b}, "grade": ""}}]'
    assert ok(call(http, "set_grades_for_assignment", {"assignment_id": made["id"], "grades": as_json})) is True
    grades = {g["user_id"]: g["grading_periods"][0]["assignments"][0]
              for g in ok(call(http, "get_grades_for_class", {"class_id": class_id}))}
    assert grades[a]["grade"] == "AB" and grades[b]["grade"] is None  # a blank clears the cell

    # All or nothing: one bad grade changes nothing.
    bad = [("assignment_id", made["id"]), ("grades[0][user_id]", a), ("grades[0][grade]", "C"),
           ("grades[1][user_id]", b), ("grades[1][grade]", "excellent")]
    assert "Invalid grade" in failed(call(http, "set_grades_for_assignment", bad))
    assert ok(call(http, "get_grades_for_class", {"class_id": class_id}))[0]["grading_periods"][0][
        "assignments"][0]["grade"] == "AB"


# --- paging and errors -----------------------------------------------------------------------


def test_pages_of_100_from_page_1_and_an_empty_array_past_the_end(http: httpx.Client) -> None:
    http.post("/_sim/seed", json={"size": 250, "staff": 1, "classes": 205, "examples": False}).raise_for_status()
    # 250 students + 1 teacher + the administrator = 252 users; 205 classes.
    sizes = [len(ok(call(http, "get_all_users", {"page": p}))) for p in (1, 2, 3, 4, 50)]
    assert sizes == [100, 100, 52, 0, 0]
    assert ok(call(http, "get_all_users")) == ok(call(http, "get_all_users", {"page": 1}))
    assert [len(ok(call(http, "get_all_classes", {"page": p}))) for p in (1, 2, 3, 4)] == [100, 100, 5, 0]
    assert len(ok(call(http, "get_users_that_match", {"student": "true", "page": 3}))) == 50
    assert ok(call(http, "get_users_that_match", {"student": "true", "page": 4})) == []
    assert len(ok(call(http, "get_users_that_match", {"studentID": "100007"}))) == 1
    assert "page" in failed(call(http, "get_all_users", {"page": 0}))


def test_error_answers_are_400_with_a_message(http: httpx.Client, server: str) -> None:
    assert failed(call(http, "no_such_function")) == "Unknown function: no_such_function"
    assert failed(call(http, "begin_sync")) == "Function not simulated: begin_sync"
    assert failed(call(http, "get_students_for_class")) == "Missing argument: class_id"
    assert "No class" in failed(call(http, "get_students_for_class", {"class_id": 424242}))
    assert "integer" in failed(call(http, "get_students_for_class", {"class_id": "abc"}))
    assert failed(call(http, "get_version", {"api_version": "7"})) == "Unsupported API version: 7"
    posted = httpx.post(f"{server}/api/get_version", params={"api_key": DEMO_API_KEY})
    assert posted.status_code == 400 and list(posted.json()) == ["message"]
    http.put("/_sim/sites", json={"site": "demo", "api_enabled": False}).raise_for_status()
    assert "disabled" in failed(call(http, "get_version"), 401)
