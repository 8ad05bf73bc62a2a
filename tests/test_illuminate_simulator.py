"""The Illuminate simulator: documented paths, auth, shapes, quirks, limits and control API,
exercised over loopback HTTP with raw signed requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.illuminate import DEFAULT_CREDENTIALS, IlluminateSimulator
from simulators.illuminate.oauth import Credentials, OAuthVerifier
from simulators.server import ThreadedServer
from worker.clients.illuminate import OAuth1Signer

C = DEFAULT_CREDENTIALS
DOC = Credentials("653e7a6ecc1d528c516cc8f92cf98611", "4f88a6d17f8b9ad90e00005f",
                  "72157626737672178-022bbd2f4c2f3432", "fccb68c4e6103197")
DOC_URL = "https://demo.illuminateed.com/live/rest_server.php/Api/Students?page=2&limit=50"
DOC_HEADER = (
    'OAuth oauth_consumer_key="653e7a6ecc1d528c516cc8f92cf98611",'
    'oauth_nonce="bfa41b93ec995f9385b5f34027181dc4",'
    'oauth_signature_method="HMAC-SHA1",oauth_timestamp="1305583298",oauth_version="1.0",'
    'oauth_token="72157626737672178-022bbd2f4c2f3432",oauth_signature="dbBJa4gFTWq9Z0utPzwmfncOleU="'
)
SEED = {"sites": 3, "students": 120, "staff": 10, "courses": 5, "sections_per_course": 2,
        "students_per_section": 12, "assessments": 2, "seed": 3}


class Sim:
    """Raw access to the simulator: signed API calls and control calls."""

    def __init__(self, server: ThreadedServer) -> None:
        self.base = f"{server.url}/live/rest_server.php"
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.signer = OAuth1Signer(C.consumer_key, C.consumer_secret, C.token, C.token_secret)

    def control(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        response = self.http.post(f"/_sim/{path}", json=body or {})
        assert response.status_code == status, response.text
        return response.json()

    def state(self, **params: Any) -> Any:
        return self.http.get("/_sim/state", params=params).json()

    def api(self, path: str, method: str = "GET", signer: OAuth1Signer | None = None,
            content: bytes | None = None, **params: Any) -> httpx.Response:
        request = self.http.build_request(method, f"{self.base}/Api/{path}", params=params, content=content)
        request.headers["Authorization"] = (signer or self.signer).authorization(method, str(request.url))
        return self.http.send(request)

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.api(path, page=page, limit=1000, **params).json()
            out.extend(body["results"])
            if page >= body["num_pages"]:
                return out
            page += 1


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(IlluminateSimulator().app) as srv:
        yield srv


@pytest.fixture
def sim(server: ThreadedServer) -> Iterator[Sim]:
    s = Sim(server)
    s.control("reset")
    s.control("clock", {"date": "2024-02-01"})
    s.control("seed", SEED)
    yield s
    s.http.close()


# -- OAuth ------------------------------------------------------------------------------------------


def test_verifier_accepts_the_documented_example_and_rejects_tampering() -> None:
    verifier = OAuthVerifier([DOC])
    assert verifier.verify("GET", DOC_URL, DOC_HEADER) == DOC
    # Percent-encoded values (what oauthlib and requests-oauthlib send) verify too.
    assert verifier.verify("GET", DOC_URL, DOC_HEADER.replace("OleU=", "OleU%3D")) == DOC
    assert verifier.verify("GET", DOC_URL.replace("page=2", "page=3"), DOC_HEADER) is None
    assert verifier.verify("POST", DOC_URL, DOC_HEADER) is None
    assert verifier.verify("GET", DOC_URL, DOC_HEADER.replace("HMAC-SHA1", "PLAINTEXT")) is None
    assert verifier.verify("GET", DOC_URL, None) is None
    # OAuth parameters belong in the header, never in the query.
    assert verifier.verify("GET", DOC_URL + "&oauth_token=x", DOC_HEADER) is None


def test_unsigned_or_badly_signed_requests_get_401_with_empty_body(sim: Sim) -> None:
    unsigned = sim.http.get(f"{sim.base}/Api/Students/")
    wrong = sim.api("Students/", signer=OAuth1Signer(C.consumer_key, C.consumer_secret, C.token, "nope"))
    unknown = sim.api("Students/", signer=OAuth1Signer("someone", "else", C.token, C.token_secret))
    for response in (unsigned, wrong, unknown):
        assert response.status_code == 401 and response.content == b""
    assert sim.api("Students/").status_code == 200


def test_replayed_nonce_is_refused_when_configured(sim: Sim) -> None:
    sim.control("config", {"check_nonce": True})
    request = sim.http.build_request("GET", f"{sim.base}/Api/Terms/")
    request.headers["Authorization"] = sim.signer.authorization("GET", str(request.url))
    assert sim.http.send(request).status_code == 200
    assert sim.http.send(request).status_code == 401


# -- routing ----------------------------------------------------------------------------------------


def test_documented_paths_with_and_without_trailing_slash(sim: Sim) -> None:
    for name in ("Sites", "Students", "Students2", "Users", "Courses", "Terms", "MasterSchedule", "Roster",
                 "Enrollment", "Assessments", "AssessmentAggregateStudentResponses",
                 "AssessmentAggregateStudentResponsesGroup", "AssessmentAggregateStudentResponsesStandard"):
        with_slash, without = sim.api(f"{name}/"), sim.api(name)
        assert with_slash.status_code == without.status_code == 200, name
        assert with_slash.json() == without.json(), name
        assert with_slash.headers["content-type"] == "application/json"


def test_unknown_method_is_404_and_wrong_verb_is_405_both_empty(sim: Sim) -> None:
    missing = sim.api("StudentsX/")
    wrong_verb = sim.api("Students/", method="POST", content=b"[]")
    wrong_dir = sim.http.get(sim.base.replace("/live/", "/other/") + "/Api/Students/")
    assert (missing.status_code, missing.content) == (404, b"")
    assert (wrong_verb.status_code, wrong_verb.content) == (405, b"")
    assert wrong_dir.status_code == 404
    assert sim.api("Assessment/999999/Scores/", method="POST", content=b"[]").status_code == 404


# -- shapes and typing quirks -------------------------------------------------------------------------


def test_sites_is_a_bare_array_with_the_district_as_its_own_parent(sim: Sim) -> None:
    sites = sim.api("Sites/").json()
    assert isinstance(sites, list) and len(sites) == 4
    district = sites[0]
    assert district["site_id"] == 1 and district["parent_site_id"] == 1
    assert all(s["parent_site_id"] == 1 for s in sites[1:])
    assert isinstance(district["state_school_id"], int)


def test_envelopes_and_per_endpoint_typing(sim: Sim) -> None:
    students = sim.api("Students/", limit=5).json()
    assert set(students) == {"page", "num_pages", "num_results", "results"}
    assert students["num_results"] == 120 and students["num_pages"] == 24
    first = students["results"][0]
    assert isinstance(first["student_id"], int) and first["aka_last_name"] == "NULL"
    assert first["is_hispanic"] in ("t", "f") and "current_homeroom_teacher" in first
    assert "current_homeroom_teacher" not in sim.api("Students2/", limit=1).json()["results"][0]
    programs = sim.api("Students2/", limit=1, include_programs="true").json()["results"][0]
    assert programs["lunch_status"] in ("FL", "RP", "PD")

    assessments = sim.api("Assessments/").json()
    assert assessments["num_results"] == "2"
    assert {type(a["assessment_id"]) for a in assessments["results"]} == {int, str}

    score = sim.api("AssessmentAggregateStudentResponses/", limit=1).json()["results"][0]
    assert all(isinstance(v, str) for v in score.values())
    assert score["mastered"] in ("t", "f") and "." in score["percent_correct"]
    course = sim.api("Courses/", limit=1).json()["results"][0]
    assert isinstance(course["site_ids"], str) and course["is_active"] == "t"
    section = sim.api("MasterSchedule/", limit=1).json()["results"][0]
    assert section["hqtcc"] == "N" and isinstance(section["room_number"], int)
    term = sim.api("Terms/", limit=1).json()["results"][0]
    assert "start_date" in term and "state_date" not in term


def test_group_and_standard_rows_fan_out_per_score(sim: Sim) -> None:
    total = sim.api("AssessmentAggregateStudentResponses/", limit=1).json()["num_results"]
    groups = sim.all_pages("AssessmentAggregateStudentResponsesGroup/")
    standards = sim.all_pages("AssessmentAggregateStudentResponsesStandard/")
    assert len(groups) == 2 * total and len(standards) == 3 * total
    group_keys = {(g["assessment_id"], g["local_student_id"], g["reporting_group"]) for g in groups}
    assert len(group_keys) == len(groups)
    assert all(s["academic_benchmark_guid"] and s["standard_code"] for s in standards)


# -- paging and limits ----------------------------------------------------------------------------------


def test_paging_math_and_past_the_end(sim: Sim) -> None:
    pages = [sim.api("Students/", page=p, limit=50).json() for p in (1, 2, 3, 4)]
    assert [len(p["results"]) for p in pages] == [50, 50, 20, 0]
    assert {p["num_pages"] for p in pages} == {3}
    ids = [r["student_id"] for p in pages for r in p["results"]]
    assert len(set(ids)) == 120 and ids == sorted(ids)
    # `page` may be omitted (the official samples do), defaulting to 1.
    assert sim.api("Students/", limit=50).json()["results"][0]["student_id"] == ids[0]
    none = sim.api("Students/", student_id=1).json()
    assert none["num_results"] == 0 and none["num_pages"] == 0 and none["results"] == []


def test_limit_maximums_are_enforced(sim: Sim) -> None:
    too_big = sim.api("Students/", limit=1001)
    assert too_big.status_code == 400
    assert too_big.json()["error"]["code"] == "invalid_limit"
    assert sim.api("Students2/", limit=30_000).status_code == 200
    assert sim.api("Students2/", limit=30_001).status_code == 400
    assert sim.api("Students/", limit=0).status_code == 400
    assert sim.api("Students/", date="2024-13-01").status_code == 400
    sim.control("config", {"limit_policy": "clamp", "require_page": True})
    assert sim.api("Students/", page=1, limit=5000).json()["num_pages"] == 1
    assert sim.api("Students/", limit=10).status_code == 400  # page now required


# -- change semantics ----------------------------------------------------------------------------------


def test_modified_after_is_inclusive_and_day_granular(sim: Sim) -> None:
    sim.control("clock", {"date": "2024-02-05"})
    body = sim.control("mutate", {"kind": "new_scores", "count": 2, "seed": 1})
    made = body["upserted"]["assessment_scores"]

    def keys(**params: Any) -> set[str]:
        rows = sim.all_pages("AssessmentAggregateStudentResponses/", **params)
        return {f"{r['assessment_id']}/{r['local_student_id']}" for r in rows}

    assert keys(modified_after="2024-02-05") == set(made)
    assert keys(modified_after="2024-02-05 18:30:00") == set(made)
    assert keys(modified_after="2024-02-06") == set()
    # Seeded scores were modified in the 30 days before the seed date (2024-02-01).
    assert set(made) < keys(modified_after="2024-01-01") == keys()
    assert sim.api("AssessmentAggregateStudentResponses/", modified_after="yesterday").status_code == 400


def test_withdraw_hard_deletes_without_trace(sim: Sim) -> None:
    deleted = sim.control("mutate", {"kind": "withdraw", "count": 1, "seed": 2})["deleted"]
    (student_key,) = deleted["students"]
    sid = int(student_key)
    local = sim.state(entity="students", limit=1000)
    assert all(s["student_id"] != sid for s in local["records"])
    assert sim.api("Students/", student_id=sid).json()["num_results"] == 0
    assert sim.state()["counts"]["students"] == 119
    everywhere = (sim.all_pages("Roster/", start_date="2000-01-01", end_date="2100-01-01")
                  + sim.all_pages("Enrollment/", start_date="2000-01-01", end_date="2100-01-01"))
    assert all(r["student_id"] != sid for r in everywhere)
    scores = sim.all_pages("AssessmentAggregateStudentResponses/")
    assert all(f"{s['assessment_id']}/{s['local_student_id']}" not in deleted.get("assessment_scores", [])
               for s in scores)


def test_soft_drop_leaves_the_default_view_but_stays_in_a_session_range(sim: Sim) -> None:
    body = sim.control("mutate", {"kind": "drop", "count": 1, "seed": 4, "mode": "soft"})
    (key,) = body["upserted"]["rosters"]
    section_id, student_id = (int(x) for x in key.split("/"))
    today = sim.api("Roster/", section_id=section_id, student_id=student_id).json()["results"]
    session = sim.api("Roster/", section_id=section_id, student_id=student_id,
                      start_date="2023-08-15", end_date="2024-06-14").json()["results"]
    assert today == []
    assert [r["leave_date"] for r in session] == ["2024-01-31"]


def test_departed_staff_is_inactive_and_new_staff_appears(sim: Sim) -> None:
    departed = sim.control("mutate", {"kind": "departed_staff", "count": 1, "seed": 1})["upserted"]["staff"]
    hired = sim.control("mutate", {"kind": "new_staff", "count": 1, "seed": 1})["upserted"]["staff"]
    users = {str(u["user_id"]): u for u in sim.all_pages("Users/")}
    assert users[departed[0]]["active"] == "f" and users[departed[0]]["exit_date"] == "2024-02-01"
    assert users[hired[0]]["active"] == "t" and users[hired[0]]["hire_date"] == "2024-02-01"


# -- control API ---------------------------------------------------------------------------------------


def test_seed_is_deterministic_and_reset_empties(sim: Sim) -> None:
    first = sim.state(entity="students", limit=5)["records"]
    sim.control("seed", SEED)
    assert sim.state(entity="students", limit=5)["records"] == first
    sim.control("seed", {**SEED, "seed": 4})
    assert sim.state(entity="students", limit=5)["records"] != first
    sim.control("reset")
    assert set(sim.state()["counts"].values()) == {0}
    assert sim.control("mutate", {"kind": "enrol"}, status=422)["error"] == "invalid request"


def test_control_api_validation_clock_and_state(sim: Sim) -> None:
    assert sim.control("mutate", {"kind": "explode"}, status=422)
    assert sim.control("seed", {"students": -1}, status=422)
    clock = sim.control("clock", {"advance_days": 3})
    assert clock["date"] == "2024-02-04" and clock["academic_year"] == 2024
    scores = sim.state(entity="assessment_scores", limit=2)
    assert scores["counts"]["assessment_scores"] > 0 and "_modified" in scores["records"][0]
    assert sim.http.get("/_sim/state", params={"entity": "nope"}).status_code == 404
    creds = sim.http.get("/_sim/credentials").json()
    assert creds[0]["consumer_key"] == C.consumer_key
