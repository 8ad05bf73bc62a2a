"""The Class simulator over real loopback HTTP: the seed's own request examples (httpx and
requests) get its documented responses, the create quirks (201 without class_id, one-element
arrays, duplicate ext_class_id, deferred variant, lost answer), scopes and keys, the enrollment
identifier rules (DELETE with a JSON body, PUT role default) and users.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from simulators.classroom import DEMO_SECRET, ClassSimulator, create_app
from simulators.server import ThreadedServer

AUTH = {"Authorization": f"Bearer {DEMO_SECRET}"}
READ_ONLY = "read-only-secret"
EXPIRED = "expired-secret"
DEMO_CLASS_ID = "01cceb4b-afce-4703-a842-6b41fad111b5"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
EXT = "074c697e-e20b-4da8-9361-1b707137d6e3"  # the ext_class_id of the seed's enrollment examples

# seed 001:L49-61 (also L357-368): Get Single Class Info
DEMO_CLASS = {
    "class_id": "01cceb4b-afce-4703-a842-6b41fad111b5", "ext_class_id": "demo-1", "class_name": "Demo Class",
    "class_description": "A demonstration of Class", "meeting_id": "92117646134", "host": "Anne Malley",
    "invite_link": "https://mydemo.class.com/class.html?class_uuid=01cceb4b-afce-4703-a842-6b41fad111b5",
    "password": "a1demo",
}
# seed 001:L282-303: the second class of Get All Classes Info
OTHER_CLASS = {
    "class_id": "a1cceb4b-afce-4703-a842-6b41fad111b5", "ext_class_id": "demo-2",
    "class_name": "Another Demo Class", "class_description": "Another demonstration of Class",
    "meeting_id": "92117646135", "host": "James Lloyd",
    "invite_link": "https://mydemo.class.com/class.html?class_uuid=a1cceb4b-afce-4703-a842-6b41fad111b5",
    "password": "demob2",
}
# seed 001:L588-609: Get Enrollments
DEMO_ROSTER = [
    {"student_id": "20cc140a-3462-4950-9ab7-c826fbf2376e", "meeting_id": "8456209194", "user_name": "Anne Malley",
     "first_name": "Anne", "last_name": "Malley", "email": "anne.malley@demo.com", "ext_person_id": "a.malley",
     "role": "teacher"},
    {"student_id": "abcc140a-3462-4950-9ab7-c826fbf2376f", "meeting_id": "8456209194",
     "user_name": "Francisco Beck", "first_name": "Francisco", "last_name": "Beck",
     "email": "francisco.beck@demo.com", "ext_person_id": "f.beck", "role": "student"},
]
# seed 001:L1281-1302: Get All Users
DEMO_USERS = [
    {"id": 1, "ext_user_id": None, "email": "john@mail.com", "user_name": "John Smith", "roles": ["instructor"],
     "is_zoom_configured": True},
    {"id": 2, "ext_user_id": "555", "email": "jane@mail.com", "user_name": "Jane Smith", "roles": ["instructor"],
     "is_zoom_configured": False},
]
# seed 001:L195-223: Create a Class example body
CREATE_BODY: dict[str, Any] = {
    "email": "anne.malley@demo.com", "first_name": "Anne", "last_name": "Malley", "timezone": "America/Los_Angeles",
    "ext_class_id": "demo-1", "class_name": "Demo Class", "class_description": "A demonstration of Class",
    "meeting_passcode": "a1demo", "session_times": [{"start_time": 1631810954, "end_time": 1631814554}],
    "settings": {"waiting_room": False, "join_before_host": True, "jbh_time": 0},
    "additional_instructors": [{"email": "james.lloyd@demo.com"}, {"email": "chaya.meyer@demo.com"}],
}


@pytest.fixture(scope="module")
def sim() -> ClassSimulator:
    return ClassSimulator(keys={
        DEMO_SECRET: {},
        READ_ONLY: {"scopes": ["class:read", "enrollment:read", "user:read"]},
        EXPIRED: {"expires_at": 1.0},
    })


@pytest.fixture(scope="module")
def server(sim: ClassSimulator) -> Iterator[str]:
    with ThreadedServer(create_app(sim)) as srv:
        yield srv.url


@pytest.fixture
def http(sim: ClassSimulator, server: str) -> Iterator[httpx.Client]:
    sim.reset()
    with httpx.Client(base_url=server, headers=AUTH) as client:
        yield client


def body_of(response: httpx.Response | requests.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def new_class(http: httpx.Client, ext: str | None = EXT, **extra: Any) -> str:
    """Create a class and learn its UUID from the invite link (the 201 carries no class_id)."""
    body = {**CREATE_BODY, "ext_class_id": ext, "additional_instructors": [], **extra}
    created = body_of(http.post("/api/v1/classes", json=body), 201)
    match = re.search(r"class_uuid=([0-9a-f-]+)$", created["invite_link"])
    assert match is not None
    return match.group(1)


# --- independent clients, written from the seed's example requests ---------------------------


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_seed_example_reads_get_the_documented_responses(http: httpx.Client, server: str, client: str) -> None:
    def get(path: str) -> httpx.Response | requests.Response:
        if client == "httpx":
            return httpx.get(server + path, headers=AUTH)
        return requests.get(server + path, headers=AUTH, timeout=10)

    # seed 001:L41-43 ("Making an API Call") and L345-347
    assert body_of(get(f"/api/v1/classes?class_id={DEMO_CLASS_ID}"), 200) == [DEMO_CLASS]
    assert body_of(get("/api/v1/classes?ext_class_id=demo-1"), 200) == [DEMO_CLASS]
    assert body_of(get("/api/v1/classes"), 200) == [DEMO_CLASS, OTHER_CLASS]  # seed 001:L274
    assert body_of(get(f"/api/v1/class/enrollments?class_id={DEMO_CLASS_ID}"), 200) == DEMO_ROSTER  # L580
    assert body_of(get("/api/v1/users"), 200) == DEMO_USERS  # seed 001:L1275
    assert body_of(get("/api/v1/users?id=2"), 200) == [DEMO_USERS[1]]  # L1314 (the seed spells "jane Smith")
    assert body_of(get("/api/v1/users?ext_user_id=555"), 200) == [DEMO_USERS[1]]  # L1316
    assert body_of(get("/api/v1/users?email=john@mail.com"), 200) == [DEMO_USERS[0]]  # L1318
    paged = body_of(get("/api/v1/users?page=1&limit=20"), 200)  # seed 001:L94
    assert paged == {"data": DEMO_USERS, "pagination": {"total_records": 2, "current_page": 1, "total_pages": 1,
                                                        "next_page": None, "prev_page": None}}
    launch = body_of(get("/api/v1/class/enrollments/launch?ext_class_id=demo-1&ext_person_id=f.beck"), 200)  # L719
    assert launch["launch_url"].startswith(f"https://mydemo.class.com/class.html?class_uuid={DEMO_CLASS_ID}"
                                           "&student_id=abcc140a-3462-4950-9ab7-c826fbf2376f&username=Francisco+Beck"
                                           "&code=")
    # seed 001:L1422-1428: the documented 404 body
    assert body_of(get("/api/v1/classes?class_id=01cceb4b-afce-4703-a842-6b41fad111b6"), 404) == {
        "error": "class 01cceb4b-afce-4703-a842-6b41fad111b6 not found"}


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_seed_example_writes_get_the_documented_responses(http: httpx.Client, server: str, client: str) -> None:
    http.post("/_sim/reset", json={"examples": False}).raise_for_status()

    def send(method: str, path: str, body: Any = None) -> httpx.Response | requests.Response:
        if client == "httpx":
            return httpx.request(method, server + path, headers=AUTH, json=body)
        return requests.request(method, server + path, headers=AUTH, json=body, timeout=10)

    # seed 001:L191-232: Create a Class, 201 with meeting_id and invite_link only.
    created = body_of(send("POST", "/api/v1/classes", CREATE_BODY), 201)
    assert set(created) == {"meeting_id", "invite_link"}
    assert re.fullmatch(r"\d{10,11}", created["meeting_id"])
    class_uuid = created["invite_link"].removeprefix("https://mydemo.class.com/class.html?class_uuid=")
    assert UUID.match(class_uuid)
    [read] = body_of(send("GET", "/api/v1/classes?ext_class_id=demo-1"), 200)
    assert read == {**DEMO_CLASS, "class_id": class_uuid, "meeting_id": created["meeting_id"],
                    "invite_link": created["invite_link"]}
    # seed 001:L1392-1397: the same create again
    assert body_of(send("POST", "/api/v1/classes", CREATE_BODY), 400) == {
        "error": "Class exists for external class ID provided: demo-1."}

    # seed 001:L402-425: Update a Class answers an object.
    patched = body_of(send("PATCH", "/api/v1/classes", {"ext_class_id": "demo-1", "class_name": "Demo class extended",
                                                        "class_description": "Updated description text"}), 200)
    assert patched == {**read, "class_name": "Demo class extended", "class_description": "Updated description text"}

    # seed 001:L498-524: Create an Enrollment (into a class with the example's ext_class_id).
    new_class(http, EXT)
    enrollment_body = {"email": "francisco.beck@demo.com", "ext_class_id": EXT, "ext_person_id": "f.beck",
                       "first_name": "Francisco", "last_name": "Beck", "role": "student",
                       "display_name": "Francisco Beck"}
    enrolled = body_of(send("POST", "/api/v1/class/enrollments", enrollment_body), 200)
    assert list(enrolled) == ["student_id", "meeting_id", "first_name", "last_name", "user_name", "role", "email",
                              "ext_person_id"]
    assert UUID.match(enrolled["student_id"])
    assert {k: enrolled[k] for k in ("first_name", "last_name", "user_name", "role", "email", "ext_person_id")} == {
        "first_name": "Francisco", "last_name": "Beck", "user_name": "Francisco Beck", "role": "student",
        "email": "francisco.beck@demo.com", "ext_person_id": "f.beck"}

    # seed 001:L627-653: Update an Enrollment (Kayla was enrolled as an assistant first).
    kayla = {"email": "kayla.becker@demo.com", "ext_class_id": EXT, "ext_person_id": "k.becker",
             "first_name": "Kayla", "last_name": "Becker", "role": "student", "display_name": "Kayla Becker"}
    body_of(send("POST", "/api/v1/class/enrollments", {**kayla, "role": "assistant", "first_name": "K"}), 200)
    updated = body_of(send("PUT", "/api/v1/class/enrollments", kayla), 200)
    assert list(updated) == ["student_id", "ext_person_id", "meeting_id", "first_name", "last_name", "user_name",
                             "role", "email"]
    assert (updated["first_name"], updated["role"], updated["user_name"]) == ("Kayla", "student", "Kayla Becker")

    # seed 001:L679-692: Remove an Enrollment, identified in a JSON body.
    body_of(send("POST", "/api/v1/class/enrollments", {"email": "jordan.day@demo.com", "ext_class_id": EXT,
                                                        "first_name": "Jordan", "last_name": "Day"}), 200)
    removed = send("DELETE", "/api/v1/class/enrollments", {"email": "jordan.day@demo.com", "ext_class_id": EXT})
    assert body_of(removed, 200) == {"message": "Success"}
    roster = body_of(send("GET", f"/api/v1/class/enrollments?ext_class_id={EXT}"), 200)
    assert [e["email"] for e in roster] == ["anne.malley@demo.com", "francisco.beck@demo.com", "kayla.becker@demo.com"]

    # seed 001:L1196-1251: Create or Update a User, 201 then 200; roles come back reordered.
    bob = {"identified_by": "email", "ext_user_id": "888", "email": "mail@mail.com", "user_name": "Bob Smith",
           "roles": ["admin", "instructor"]}
    expected = {"ext_user_id": "888", "email": "mail@mail.com", "user_name": "Bob Smith",
                "roles": ["instructor", "admin"], "is_zoom_configured": False}
    made = body_of(send("PUT", "/api/v1/users", bob), 201)
    assert {k: v for k, v in made.items() if k != "id"} == expected
    again = body_of(send("PUT", "/api/v1/users", {**bob, "identified_by": "id", "id": made["id"],
                                                  "ext_user_id": None}), 200)  # the second example body
    assert again == made
    # seed 001:L1358-1374: Remove a User answers the deleted user.
    assert body_of(send("DELETE", "/api/v1/users?email=mail@mail.com"), 200) == made
    assert body_of(send("DELETE", f"/api/v1/classes?ext_class_id={EXT}"), 200) == {"message": "Success"}  # L463


# --- create quirks -----------------------------------------------------------------------------


def test_create_answers_no_class_id_and_single_reads_are_one_element_arrays(http: httpx.Client) -> None:
    created = body_of(http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": "sec-1"}), 201)
    assert "class_id" not in created and "ext_class_id" not in created
    class_uuid = created["invite_link"].split("class_uuid=")[1]
    by_ext = body_of(http.get("/api/v1/classes", params={"ext_class_id": "sec-1"}), 200)
    by_id = body_of(http.get("/api/v1/classes", params={"class_id": class_uuid}), 200)
    assert isinstance(by_ext, list) and len(by_ext) == 1 and by_ext == by_id
    assert by_ext[0]["class_id"] == class_uuid
    roster = body_of(http.get("/api/v1/class/enrollments", params={"class_id": class_uuid}), 200)
    assert [(e["email"], e["role"]) for e in roster] == [  # the instructor and additional instructors
        ("anne.malley@demo.com", "teacher"), ("james.lloyd@demo.com", "teacher"), ("chaya.meyer@demo.com", "teacher")]
    dates = body_of(http.get("/api/v1/schedules", params={"class_id": class_uuid}), 200)
    assert [(d["start_time"], d["end_time"]) for d in dates] == [(1631810954, 1631814554)]

    # Only class_name and class_description change; other attributes are ignored.
    patched = body_of(http.patch("/api/v1/classes", json={"class_id": class_uuid, "class_name": "New",
                                                          "timezone": "Europe/Paris", "host": "X"}), 200)
    assert isinstance(patched, dict) and patched["class_name"] == "New" and patched["host"] == "Anne Malley"
    state = http.get("/_sim/state").json()
    assert next(c for c in state["classes"] if c["class_id"] == class_uuid)["timezone"] == "America/Los_Angeles"


def test_duplicate_ext_class_id_and_reuse_after_delete_switch(http: httpx.Client) -> None:
    new_class(http, "sec-7")
    duplicate = http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": "sec-7"})
    assert body_of(duplicate, 400) == {"error": "Class exists for external class ID provided: sec-7."}
    assert body_of(http.delete("/api/v1/classes", params={"ext_class_id": "sec-7"}), 200) == {"message": "Success"}
    new_class(http, "sec-7")  # default: a deleted ext_class_id may be used again

    http.put("/_sim/config", json={"reuse_deleted_ext_class_id": False}).raise_for_status()
    http.delete("/api/v1/classes", params={"ext_class_id": "sec-7"}).raise_for_status()
    again = http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": "sec-7"})
    assert body_of(again, 400) == {"error": "Class exists for external class ID provided: sec-7."}
    assert http.get("/_sim/state", params={"counts_only": 1}).json()["deleted_ext_class_ids"] == ["sec-7"]


def test_lost_answer_on_class_creation_leaves_the_class_and_a_retry_gets_the_duplicate_400(
    http: httpx.Client,
) -> None:
    http.put("/_sim/faults", json={"lost_response_rate": 1.0, "remaining": 1}).raise_for_status()
    lost = http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": "sec-9"})
    assert lost.status_code == 504 and lost.content == b""
    [found] = body_of(http.get("/api/v1/classes", params={"ext_class_id": "sec-9"}), 200)
    retry = http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": "sec-9"})
    assert body_of(retry, 400) == {"error": "Class exists for external class ID provided: sec-9."}
    stats = http.get("/_sim/stats").json()
    assert stats["class_creates_by_ext_class_id"] == {"sec-9": 1} and stats["faults_injected"] == 1
    assert stats["requests"]["POST /api/v1/classes"] == {"400": 1, "504": 1}
    assert found["ext_class_id"] == "sec-9"


def test_deferred_create_variant_behind_a_switch(http: httpx.Client) -> None:
    http.put("/_sim/config", json={"deferred_create": True}).raise_for_status()
    created = body_of(http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": "def-1"}), 201)
    assert set(created) == {"class_deferred_id", "class_id", "ext_id"}  # seed 001:L234-239: ext_id, not ext_class_id
    assert created["ext_id"] == "def-1" and isinstance(created["class_deferred_id"], int)

    assert http.get("/api/v1/classes", params={"ext_class_id": "def-1"}).status_code == 404
    [deferred] = body_of(http.get("/api/v1/classes", params={"ext_class_id": "def-1", "deferred": "true"}), 200)
    assert list(deferred) == ["class_deferred_id", "class_id", "ext_class_id", "email", "class_name",
                              "class_description", "created_at", "updated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", deferred["created_at"])
    enrolled = body_of(http.post("/api/v1/class/enrollments", json={
        "ext_class_id": "def-1", "ext_person_id": "p1", "email": "p1@example.org", "first_name": "P",
        "last_name": "One"}), 200)
    assert enrolled["class_deferred_id"] == str(created["class_deferred_id"])  # a string there (seed 001:L531)
    assert enrolled["enroll_params"]["class"] == {"ext_id": "def-1"} and enrolled["user"]["ext_person_id"] == "p1"
    patched = body_of(http.patch("/api/v1/classes", json={"class_deferred_id": created["class_deferred_id"],
                                                          "class_name": "Deferred renamed"}), 200)
    assert isinstance(patched, list) and patched[0]["class_name"] == "Deferred renamed"

    promoted = http.post("/_sim/deferred/promote", json={}).json()["promoted"]
    assert promoted == [created["class_id"]]
    [live] = body_of(http.get("/api/v1/classes", params={"ext_class_id": "def-1"}), 200)
    assert live["class_id"] == created["class_id"] and live["class_name"] == "Deferred renamed"


def test_create_validation_uses_the_documented_envelope(http: httpx.Client) -> None:
    bad = {**CREATE_BODY, "email": "not-an-email", "timezone": "Mars/Olympus", "ext_class_id": "v-1"}
    del bad["class_name"]
    body = body_of(http.post("/api/v1/classes", json=bad), 400)
    assert body["error"] == "Request failed validation"
    assert body["data"]["email"] == ["The email format is invalid."]  # seed 001:L1401-1410
    assert set(body["data"]) == {"email", "timezone", "class_name"}
    assert body_of(http.post("/api/v1/classes", json={**CREATE_BODY, "ext_class_id": 7}), 400)["data"] == {
        "ext_class_id": ["The ext class id must be a string."]}


# --- auth and scopes ---------------------------------------------------------------------------


def test_missing_scope_is_the_documented_403_and_bad_keys_are_401(http: httpx.Client, server: str) -> None:
    read_only = {"Authorization": f"Bearer {READ_ONLY}"}
    assert httpx.get(f"{server}/api/v1/classes", headers=read_only).status_code == 200
    denied = httpx.post(f"{server}/api/v1/classes", headers=read_only, json={})  # scope before validation
    assert body_of(denied, 403) == {"error": "Api key scope class:write required"}  # seed 001:L1414-1418
    assert body_of(httpx.put(f"{server}/api/v1/users", headers=read_only, json={}), 403) == {
        "error": "Api key scope user:write required"}
    assert body_of(httpx.get(f"{server}/api/v1/schedules", headers=read_only), 403) == {
        "error": "Api key scope schedule:read required"}

    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {DEMO_SECRET}"}):
        assert body_of(httpx.get(f"{server}/api/v1/classes", headers=headers), 401) == {"error": "Unauthorized"}
    expired = {"Authorization": f"Bearer {EXPIRED}"}
    assert body_of(httpx.get(f"{server}/api/v1/classes", headers=expired), 401) == {"error": "Api key expired"}

    # Keys are configured through the control API, which never shows a secret.
    http.put("/_sim/keys", json={"keys": {"late-key": {"scopes": ["class:read"], "expires_at": time.time() + 3600}}})
    assert httpx.get(f"{server}/api/v1/classes", headers={"Authorization": "Bearer late-key"}).status_code == 200
    described = http.get("/_sim/keys").json()["keys"]
    assert DEMO_SECRET not in str(described) and "late-key" not in str(described)


# --- enrollments -------------------------------------------------------------------------------


def test_delete_enrollment_reads_a_json_body(http: httpx.Client, server: str) -> None:
    new_class(http)
    person = {"ext_class_id": EXT, "ext_person_id": "s-1", "first_name": "Sam", "last_name": "One"}
    body_of(http.post("/api/v1/class/enrollments", json=person), 200)
    # A client that drops the DELETE body (or sends query parameters) gets a 400, not a deletion.
    assert http.request("DELETE", "/api/v1/class/enrollments").status_code == 400
    query_only = http.delete("/api/v1/class/enrollments", params={"ext_class_id": EXT, "ext_person_id": "s-1"})
    assert query_only.status_code == 400
    gone = http.request("DELETE", "/api/v1/class/enrollments", json={"ext_class_id": EXT, "ext_person_id": "s-1"})
    assert body_of(gone, 200) == {"message": "Success"}
    again = http.request("DELETE", "/api/v1/class/enrollments", json={"ext_class_id": EXT, "ext_person_id": "s-1"})
    assert body_of(again, 404) == {"error": "enrollment s-1 not found"}
    by_requests = requests.delete(f"{server}/api/v1/class/enrollments", headers=AUTH, timeout=10,
                                  json={"ext_class_id": EXT, "email": "anne.malley@demo.com"})
    assert body_of(by_requests, 200) == {"message": "Success"}


def test_put_without_role_demotes_a_teacher_to_student(http: httpx.Client) -> None:
    new_class(http)
    teacher = {"ext_class_id": EXT, "ext_person_id": "co-1", "first_name": "Co", "last_name": "Teacher",
               "role": "teacher"}
    assert body_of(http.post("/api/v1/class/enrollments", json=teacher), 200)["role"] == "teacher"
    renamed = {k: v for k, v in teacher.items() if k != "role"} | {"last_name": "Teacher-Renamed"}
    assert body_of(http.put("/api/v1/class/enrollments", json=renamed), 200)["role"] == "student"
    roster = body_of(http.get("/api/v1/class/enrollments", params={"ext_class_id": EXT}), 200)
    assert [e["role"] for e in roster if e["ext_person_id"] == "co-1"] == ["student"]
    missing = {**teacher, "ext_person_id": "nobody"}
    assert body_of(http.put("/api/v1/class/enrollments", json=missing), 404) == {"error": "enrollment nobody not found"}


def test_exactly_one_class_identifier_and_duplicate_enrollment(http: httpx.Client) -> None:
    class_uuid = new_class(http)
    both = {"class_id": class_uuid, "ext_class_id": EXT}
    for response in (
        http.get("/api/v1/classes", params=both),
        http.get("/api/v1/class/enrollments", params=both),
        http.get("/api/v1/class/enrollments"),
        http.post("/api/v1/class/enrollments", json={**both, "email": "a@b.org", "first_name": "A", "last_name": "B"}),
        http.delete("/api/v1/classes", params=both),
        http.get("/api/v1/users", params={"id": 1, "email": "john@mail.com"}),
    ):
        body = body_of(response, 400)
        assert body["error"] == "Request failed validation" and "Exactly one of" in next(iter(body["data"].values()))[0]
    person = {"class_id": class_uuid, "email": "a@b.org", "first_name": "A", "last_name": "B"}
    body_of(http.post("/api/v1/class/enrollments", json=person), 200)
    assert body_of(http.post("/api/v1/class/enrollments", json=person), 400) == {
        "error": "Enrollment exists for the person provided."}
    no_person = {"class_id": class_uuid, "first_name": "A", "last_name": "B"}
    assert "ext_person_id" in body_of(http.post("/api/v1/class/enrollments", json=no_person), 400)["data"]


# --- users and the control API -------------------------------------------------------------------


def test_user_upsert_paging_and_uniqueness(http: httpx.Client) -> None:
    http.post("/_sim/reset", json={"examples": False}).raise_for_status()
    for n in range(45):
        body_of(http.put("/api/v1/users", json={"identified_by": "ext_user_id", "ext_user_id": f"staff-{n}",
                                                "email": f"t{n}@example.org", "user_name": f"T {n}"}), 201)
    same = body_of(http.put("/api/v1/users", json={"identified_by": "ext_user_id", "ext_user_id": "staff-3",
                                                   "user_name": "T Three", "roles": ["admin"]}), 200)
    assert (same["id"], same["email"], same["roles"]) == (4, "t3@example.org", ["admin"])
    taken = http.put("/api/v1/users", json={"identified_by": "ext_user_id", "ext_user_id": "staff-99",
                                            "email": "t3@example.org", "user_name": "X"})
    assert body_of(taken, 400)["data"] == {"email": ["The email has already been taken."]}
    page = body_of(http.get("/api/v1/users", params={"page": 3}), 200)  # default limit 20
    assert len(page["data"]) == 5 and page["pagination"] == {
        "total_records": 45, "current_page": 3, "total_pages": 3, "next_page": None, "prev_page": 2}
    assert len(body_of(http.get("/api/v1/users"), 200)) == 45  # bare array without page/limit
    assert "limit" in body_of(http.get("/api/v1/users", params={"limit": 1001}), 400)["data"]
    assert "identified_by" in body_of(http.put("/api/v1/users", json={"user_name": "X"}), 400)["data"]


def test_seeded_organisation_and_non_normative_throttle(http: httpx.Client) -> None:
    counts = http.post("/_sim/seed", json={"size": 1000, "examples": False}).json()["counts"]
    assert counts["classes"] == 92 and counts["enrollments"] == 92 * 31 and counts["users"] == 40
    first = body_of(http.get("/api/v1/classes", params={"ext_class_id": "seed-section-1"}), 200)[0]
    assert len(body_of(http.get("/api/v1/class/enrollments", params={"class_id": first["class_id"]}), 200)) == 31

    http.put("/_sim/config", json={"throttle_next": 2}).raise_for_status()
    for _ in range(2):
        throttled = http.get("/api/v1/classes")
        assert body_of(throttled, 429) == {"error": "Too Many Requests"} and throttled.headers["retry-after"] == "1"
    assert http.get("/api/v1/classes").status_code == 200
    assert http.get("/_sim/stats").json()["throttled"] == 2
