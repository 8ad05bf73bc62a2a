"""IlluminateClient against the real Illuminate simulator over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from simulators.illuminate import DEFAULT_CREDENTIALS, Credentials, IlluminateSimulator
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from worker.clients.errors import (
    AuthenticationError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    PermanentUpstreamError,
    TransientUpstreamError,
)
from worker.clients.illuminate import IlluminateClient, OAuth1Signer, ScoreEndpoint, oauth_base_string
from worker.clients.illuminate_coerce import (
    coerce_bool,
    coerce_count,
    coerce_id,
    coerce_list,
    coerce_null,
    coerce_record,
    coerce_results,
)
from worker.clients.illuminate_models import (
    AssessmentScore,
    AssessmentStandardScore,
    RosterRow,
    ScoreSubmission,
    Student,
)
from worker.metrics import total

pytestmark = pytest.mark.anyio

C = DEFAULT_CREDENTIALS
SITE2_ONLY = Credentials("site2-consumer", "site2-consumer-secret", "site2-token", "site2-token-secret",
                         sites=frozenset({2}))

# The worked example of the document (seed L113-L144; ref L131-L150).
DOC_URL = "https://demo.illuminateed.com/live/rest_server.php/Api/Students?page=2&limit=50"
DOC_BASE_STRING = (
    "GET&https%3A%2F%2Fdemo.illuminateed.com%2Flive%2Frest_server.php%2FApi%2FStudents&limit%3D50"
    "%26oauth_consumer_key%3D653e7a6ecc1d528c516cc8f92cf98611%26oauth_nonce%3Dbfa41b93ec995f9385b5f34027181dc4"
    "%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1305583298"
    "%26oauth_token%3D72157626737672178-022bbd2f4c2f3432%26oauth_version%3D1.0%26page%3D2"
)


class Sim:
    """The simulator served on loopback plus helpers for its control API."""

    def __init__(self, server: ThreadedServer) -> None:
        self.url = server.url
        self.base = f"{server.url}/live/rest_server.php"
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"/_sim/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"/_sim/{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def client(self, creds: Credentials = C, *, max_retries: int = 4, timeout: float = 60.0,
               **kwargs: Any) -> IlluminateClient:
        return IlluminateClient(self.base, creds.consumer_key, creds.consumer_secret, creds.token,
                                creds.token_secret, http=http_settings(max_retries, timeout), **kwargs)

    def signed_get(self, path: str, **params: Any) -> httpx.Response:
        """A raw signed GET, to look at the JSON exactly as the simulator sends it."""
        request = self.http.build_request("GET", f"{self.base}{path}", params=params)
        signer = OAuth1Signer(C.consumer_key, C.consumer_secret, C.token, C.token_secret)
        request.headers["Authorization"] = signer.authorization("GET", str(request.url))
        return self.http.send(request)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(IlluminateSimulator(credentials=[C, SITE2_ONLY]).app) as srv:
        yield srv


@pytest.fixture
def sim(server: ThreadedServer) -> Iterator[Sim]:
    s = Sim(server)
    s.control("reset")
    s.control("clock", {"date": "2024-03-10"})
    s.control("seed", {"sites": 3, "students": 250, "staff": 12, "courses": 6, "sections_per_course": 2,
                       "students_per_section": 15, "assessments": 3, "seed": 11})
    yield s
    s.http.close()


def requests_with_status(status: str) -> float:
    value = total("edusync_upstream_requests_total", system="illuminate", status=status)
    return value


async def collect(pages: Any) -> list[Any]:
    return [record async for page in pages for record in page.records]


# -- OAuth ------------------------------------------------------------------------------------


async def test_oauth_worked_example_reproduces_documented_base_string_and_signature() -> None:
    signer = OAuth1Signer("653e7a6ecc1d528c516cc8f92cf98611", "4f88a6d17f8b9ad90e00005f",
                          "72157626737672178-022bbd2f4c2f3432", "fccb68c4e6103197")
    header = signer.authorization("GET", DOC_URL, nonce="bfa41b93ec995f9385b5f34027181dc4",
                                  timestamp="1305583298")
    assert header.startswith("OAuth ")
    params = dict(oauth_utils.parse_authorization_header(header))
    assert oauth_utils.unescape(params["oauth_signature"]) == "dbBJa4gFTWq9Z0utPzwmfncOleU="
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_token"] == "72157626737672178-022bbd2f4c2f3432"
    assert oauth_base_string("GET", DOC_URL, header) == DOC_BASE_STRING
    # The documented header (raw "=") yields the same base string.
    doc_header = (
        'OAuth oauth_consumer_key="653e7a6ecc1d528c516cc8f92cf98611",'
        'oauth_nonce="bfa41b93ec995f9385b5f34027181dc4",'
        'oauth_signature_method="HMAC-SHA1",oauth_timestamp="1305583298",oauth_version="1.0",'
        'oauth_token="72157626737672178-022bbd2f4c2f3432",oauth_signature="dbBJa4gFTWq9Z0utPzwmfncOleU="'
    )
    assert oauth_base_string("GET", DOC_URL, doc_header) == DOC_BASE_STRING


async def test_oauth_parameters_travel_only_in_the_header(sim: Sim) -> None:
    async with sim.client() as client:
        sent: list[httpx.Request] = []

        async def spy(request: httpx.Request) -> None:
            sent.append(request)

        client._http.client.event_hooks["request"].append(spy)
        await collect(client.users())
    assert sent
    assert all("oauth_" not in str(r.url) for r in sent)
    assert all(r.headers["authorization"].startswith("OAuth ") for r in sent)
    assert repr(OAuth1Signer("k", "very-secret", "t", "token-secret")).count("secret") == 0


async def test_bad_signature_is_401_with_empty_body_and_authentication_error_without_retry(sim: Sim) -> None:
    request = sim.http.build_request("GET", f"{sim.base}/Api/Users/")
    request.headers["Authorization"] = OAuth1Signer(
        C.consumer_key, "wrong-secret", C.token, C.token_secret).authorization("GET", str(request.url))
    response = sim.http.send(request)
    assert response.status_code == 401
    assert response.content == b""

    before = requests_with_status("401")
    async with sim.client(Credentials(C.consumer_key, C.consumer_secret, C.token, "wrong")) as client:
        with pytest.raises(AuthenticationError) as info:
            await collect(client.users())
    assert info.value.status == 401
    assert "wrong" not in str(info.value)  # secrets never reach error messages
    assert requests_with_status("401") - before == 1  # a 401 is permanent: not retried


async def test_status_codes_map_to_typed_errors(sim: Sim) -> None:
    async with sim.client() as client:
        with pytest.raises(NotFoundError):
            await collect(client.pages("NoSuchResource"))
        with pytest.raises(PermanentUpstreamError) as info:
            await client.request_json("POST", "/Api/Students/", json_body=[])
        assert info.value.status == 405
        with pytest.raises(PermanentUpstreamError) as bad_limit:
            await client.request_json("GET", "/Api/Users/", {"page": "1", "limit": "1001"})
        assert bad_limit.value.status == 400 and "invalid_limit" in str(bad_limit.value)
    async with sim.client(SITE2_ONLY) as limited:
        assert await collect(limited.students({"site_id": "2"}))
        with pytest.raises(ForbiddenError):
            await collect(limited.students({"site_id": "3"}))


# -- paging -------------------------------------------------------------------------------------


async def test_paging_walks_every_page_one_at_a_time(sim: Sim) -> None:
    async with sim.client(page_limit=100) as client:
        before = requests_with_status("200")
        walk = client.pages("Students")
        first = await walk.__anext__()
        # Lazy: only the first page has been requested so far.
        assert requests_with_status("200") - before == 1
        pages = [first] + [p async for p in walk]
    assert [p.page for p in pages] == [1, 2, 3]
    assert [len(p.records) for p in pages] == [100, 100, 50]
    assert {p.num_results for p in pages} == {250} and {p.num_pages for p in pages} == {3}
    assert [p.is_last for p in pages] == [False, False, True]
    ids = [r["student_id"] for p in pages for r in p.records]
    assert len(set(ids)) == 250 == sim.get("state")["counts"]["students"]
    assert ids == sorted(ids, key=int)  # the simulator pages in a stable order


async def test_students2_uses_its_larger_limit_and_typed_records(sim: Sim) -> None:
    async with sim.client(page_limit=100, students2_page_limit=200) as client:
        assert client.limit_for("Students2") == 200 and client.limit_for("Students") == 100
        pages = [p async for p in client.students(include_programs=True)]
    assert [len(p.records) for p in pages] == [200, 50]
    student = pages[0].records[0]
    assert isinstance(student, Student)
    assert student.lunch_status in ("FL", "RP", "PD")
    assert student.current_homeroom_teacher is None  # Students2 has no homeroom teacher


async def test_num_results_shifting_mid_walk_raises_a_clear_error(sim: Sim) -> None:
    async with sim.client(page_limit=50) as client:
        walk = client.pages("Students")
        first = await walk.__anext__()
        assert first.num_results == 250
        sim.control("mutate", {"kind": "enrol", "count": 1, "seed": 5})
        with pytest.raises(MalformedResponseError) as info:
            await walk.__anext__()
    message = str(info.value)
    assert "shifted mid-walk" in message and "num_results=250" in message and "num_results=251" in message
    assert "do not compute deletes" in message


# -- retries and faults ---------------------------------------------------------------------------


async def test_500_is_retried_then_succeeds(sim: Sim) -> None:
    injected = sim.get("faults")["injected"]  # the injector's counter survives resets
    sim.control("faults", {"error_rate": 1.0, "remaining": 2, "seed": 1})
    async with sim.client(max_retries=4) as client:
        users = await collect(client.users())
    assert len(users) == 12
    assert sim.get("faults")["injected"] - injected == 2


async def test_persistent_500_gives_transient_error_after_bounded_retries(sim: Sim) -> None:
    injected = sim.get("faults")["injected"]  # the injector's counter survives resets
    sim.control("faults", {"error_rate": 1.0, "seed": 1})
    async with sim.client(max_retries=2) as client:
        with pytest.raises(TransientUpstreamError) as info:
            await collect(client.users())
    assert info.value.status == 500
    assert sim.get("faults")["injected"] - injected == 3  # one try plus two retries


async def test_timeout_is_retried_then_transient_error(sim: Sim) -> None:
    injected = sim.get("faults")["injected"]  # the injector's counter survives resets
    sim.control("faults", {"timeout_rate": 1.0, "timeout_seconds": 1.0, "seed": 1})
    async with sim.client(max_retries=1, timeout=0.2) as client:
        with pytest.raises(TransientUpstreamError) as info:
            await collect(client.terms())
    assert "timed out" in str(info.value)
    assert sim.get("faults")["injected"] - injected == 2


async def test_truncated_page_raises_malformed_response(sim: Sim) -> None:
    injected = sim.get("faults")["injected"]  # the injector's counter survives resets
    sim.control("faults", {"malformed_rate": 1.0, "seed": 1})
    async with sim.client(max_retries=1, page_limit=100) as client:
        with pytest.raises(MalformedResponseError) as info:
            await collect(client.pages("Students"))
    assert "unparseable JSON" in str(info.value)
    assert sim.get("faults")["injected"] - injected == 2


async def test_one_truncated_page_is_refetched(sim: Sim) -> None:
    injected = sim.get("faults")["injected"]  # the injector's counter survives resets
    sim.control("faults", {"malformed_rate": 1.0, "remaining": 1, "seed": 1})
    async with sim.client(max_retries=2, page_limit=100) as client:
        records = await collect(client.pages("Students"))
    assert len(records) == 250
    assert sim.get("faults")["injected"] - injected == 1


# -- coercion ---------------------------------------------------------------------------------------


def test_coercion_rules() -> None:
    # ids: numbers and strings normalise to the same string.
    assert coerce_id(1014) == coerce_id("1014") == coerce_id(" 1014 ") == "1014"
    assert coerce_id(None) is None and coerce_id("NULL") is None and coerce_id("") is None
    with pytest.raises(ValueError):
        coerce_id(True)
    # the four boolean encodings
    assert [coerce_bool(v) for v in ("t", True, 1, "1")] == [True] * 4
    assert [coerce_bool(v) for v in ("f", False, 0, "0")] == [False] * 4
    assert coerce_bool(None) is None and coerce_bool("NULL") is None
    with pytest.raises(ValueError):
        coerce_bool("maybe")
    assert coerce_null("NULL") is None and coerce_null("null") is None and coerce_null("Null") == "Null"
    assert coerce_results({"a": 1}) == [{"a": 1}] and coerce_results([{"a": 1}]) == [{"a": 1}]
    assert coerce_results(None) == []
    assert coerce_count("785") == 785 and coerce_count(785) == 785
    assert coerce_list("10, 11, 3") == ("10", "11", "3") and coerce_list("{A,B,C}") == ("A", "B", "C")
    raw = {"student_id": 5, "is_hispanic": "f", "cellphone": "NULL", "active": 1, "zip": 90000}
    assert coerce_record(raw) == {"student_id": "5", "is_hispanic": False, "cellphone": None, "active": True,
                                  "zip": 90000}


def test_natural_keys_and_hashes_ignore_json_types() -> None:
    as_numbers = {"assessment_id": 7001, "local_student_id": 500001, "points": 5, "percent_correct": 50,
                  "mastered": False, "date_taken": "2024-03-01", "first_name": "Ann"}
    as_strings = {"assessment_id": "7001", "local_student_id": "500001", "points": "5",
                  "percent_correct": "50.00", "mastered": "f", "date_taken": "2024-03-01", "first_name": "Bo"}
    a, b = AssessmentScore.model_validate(as_numbers), AssessmentScore.model_validate(as_strings)
    assert a.natural_key() == b.natural_key() == "7001/500001"
    # Equal after normalisation; the student's name is not part of a score's content.
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != AssessmentScore.model_validate({**as_strings, "points": "6"}).content_hash()
    row = RosterRow.model_validate({"student_id": 1, "section_id": 30001, "leave_date": "NULL"})
    assert row.natural_key() == "30001/1" and row.leave_date is None
    standard = AssessmentStandardScore.model_validate(
        {"assessment_id": 1, "local_student_id": 2, "academic_benchmark_guid": "", "standard_code": "A/B"})
    assert standard.natural_key() == "1/2/A%2FB"


async def test_coercions_on_simulator_output(sim: Sim) -> None:
    raw = sim.signed_get("/Api/Assessments/").json()
    assert isinstance(raw["num_results"], str)  # documented quirk: a string count
    raw_ids = [r["assessment_id"] for r in raw["results"]]
    assert {type(i) for i in raw_ids} == {int, str}  # mixed id types in one response
    students_raw = sim.signed_get("/Api/Students/", limit=2).json()["results"]
    assert students_raw[0]["aka_first_name"] == "NULL" and students_raw[0]["is_hispanic"] in ("t", "f")
    assert any("primary_disibility" in r for r in students_raw)  # the example's typo

    async with sim.client() as client:
        pages = [p async for p in client.pages("Assessments")]
        assert pages[0].num_results == 3
        assert [r["assessment_id"] for r in pages[0].records] == [str(i) for i in raw_ids]
        assessments = await collect(client.assessments())
        students = await collect(client.students(variant="Students", params={"limit": "2"}))
        scores = await collect(client.assessment_scores(ScoreEndpoint.AGGREGATE))
        courses = await collect(client.courses())
    assert all(isinstance(a.assessment_id, str) for a in assessments)
    assert assessments[0].updated_at is not None and assessments[0].grade_levels
    assert all(s.aka_first_name is None and isinstance(s.is_hispanic, bool) for s in students)
    assert all((s.current_homeroom_teacher_id or "0").isdigit() for s in students)
    assert all(isinstance(s.points, Decimal) and isinstance(s.mastered, bool) for s in scores)
    assert all(c.site_ids and all(x.isdigit() for x in c.site_ids) for c in courses)


async def test_results_object_is_read_as_a_one_record_page(sim: Sim) -> None:
    sim.control("config", {"single_result_as_object": True})
    users = sim.get("state", entity="staff", limit=1)["records"]
    raw = sim.signed_get("/Api/Users/", user_id=users[0]["user_id"]).json()
    assert isinstance(raw["results"], dict)
    async with sim.client() as client:
        got = await collect(client.users({"user_id": str(users[0]["user_id"])}))
    assert [u.user_id for u in got] == [str(users[0]["user_id"])]


# -- change detection -------------------------------------------------------------------------------


async def test_modified_after_is_inclusive_at_day_granularity(sim: Sim) -> None:
    sim.control("clock", {"date": "2024-03-12"})
    new = sim.control("mutate", {"kind": "new_scores", "count": 3, "seed": 1})["upserted"]
    sim.control("clock", {"date": "2024-03-13"})
    changed = sim.control("mutate", {"kind": "changed_scores", "count": 2, "seed": 2})["upserted"]
    new_keys, changed_keys = set(new["assessment_scores"]), set(changed["assessment_scores"])

    async def keys(variant: ScoreEndpoint, since: date | None, **params: str) -> set[str]:
        async with sim.client() as client:
            rows = await collect(client.assessment_scores(variant, since, params=params))
            return {r.natural_key() for r in rows}

    on_12 = await keys(ScoreEndpoint.AGGREGATE, date(2024, 3, 12))
    on_13 = await keys(ScoreEndpoint.AGGREGATE, date(2024, 3, 13))
    assert on_12 == new_keys | changed_keys  # everything from the 12th on, inclusive
    assert on_13 == changed_keys  # the 13th itself is included
    assert await keys(ScoreEndpoint.AGGREGATE, date(2024, 3, 14)) == set()
    # A datetime is truncated to its day: 23:59 on the 13th still returns the whole 13th.
    assert await keys(ScoreEndpoint.AGGREGATE, None, modified_after="2024-03-13 23:59:59") == changed_keys
    # The other variants follow the same filter.
    standards = await keys(ScoreEndpoint.STANDARD, date(2024, 3, 13))
    assert {k.rsplit("/", 1)[0] for k in standards} == changed_keys
    # Overlap day: a change made later on the watermark day is seen by the next poll of that day.
    third = sim.control("mutate", {"kind": "changed_scores", "count": 1, "seed": 3})["upserted"]
    later = await keys(ScoreEndpoint.AGGREGATE, date(2024, 3, 13))
    assert later == changed_keys | set(third["assessment_scores"])


async def test_mutations_are_visible_as_a_snapshot_diff(sim: Sim) -> None:
    clock = sim.get("clock")
    start, end = date.fromisoformat(clock["session_start"]), date.fromisoformat(clock["session_end"])

    async def snapshot() -> dict[str, dict[str, str]]:
        def hashes(records: list[Any]) -> dict[str, str]:
            return {r.natural_key(): r.content_hash() for r in records}

        async with sim.client(page_limit=100) as client:
            return {
                "students": hashes(await collect(client.students(start_date=start, end_date=end))),
                "staff": hashes(await collect(client.staff())),
                "rosters": hashes(await collect(client.roster(start_date=start, end_date=end))),
                "enrollments": hashes(await collect(client.enrollment(start_date=start, end_date=end))),
                "assessment_scores": hashes(await collect(client.assessment_scores(ScoreEndpoint.AGGREGATE))),
                "assessment_scores_group": hashes(
                    await collect(client.assessment_scores(ScoreEndpoint.GROUP))),
                "assessment_scores_standard": hashes(
                    await collect(client.assessment_scores(ScoreEndpoint.STANDARD))),
            }

    before = await snapshot()
    sim.control("clock", {"date": "2024-03-11"})
    reported: dict[str, dict[str, set[str]]] = {"upserted": {}, "deleted": {}}
    for kind, mode in (("enrol", None), ("drop", "hard"), ("drop", "soft"), ("transfer", None),
                       ("rename", None),
                       ("new_staff", None), ("departed_staff", None), ("new_scores", None),
                       ("changed_scores", None), ("deleted_scores", None)):
        body = sim.control("mutate", {"kind": kind, "count": 2, "seed": 9, "mode": mode})
        for bucket in ("upserted", "deleted"):
            for entity, keys in body[bucket].items():
                reported[bucket].setdefault(entity, set()).update(keys)
    after = await snapshot()

    for entity, old in before.items():
        new = after[entity]
        upserted = {k for k, h in new.items() if old.get(k) != h}
        deleted = set(old) - set(new)
        assert upserted == reported["upserted"].get(entity, set()) - deleted, entity
        assert deleted == reported["deleted"].get(entity, set()), entity
    assert reported["deleted"]["rosters"] and reported["upserted"]["students"]
    assert reported["upserted"]["assessment_scores_standard"]
    assert reported["deleted"]["assessment_scores_group"]


async def test_post_scores_shows_up_in_modified_after(sim: Sim) -> None:
    sim.control("clock", {"date": "2024-03-15"})
    student = sim.get("state", entity="students", limit=1)["records"][0]
    assessment = sim.get("state", entity="assessments", limit=1)["records"][0]
    submissions = [
        ScoreSubmission(local_student_id=str(student["district_student_id"]), responses=["A", "B", "C", "1"]),
        ScoreSubmission(local_student_id="999999999", responses=["A"]),
    ]
    async with sim.client() as client:
        result = await client.post_scores(str(assessment["assessment_id"]), submissions)
        recent = await collect(
            client.assessment_scores("AssessmentAggregateStudentResponses", date(2024, 3, 15)))
    assert result.students_count == 1 and result.rejected_responses_count == 1
    expected = f"{assessment['assessment_id']}/{student['district_student_id']}"
    assert [r.natural_key() for r in recent] == [expected]
    assert recent[0].date_taken == date(2024, 3, 15)
