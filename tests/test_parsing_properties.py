"""Property-based tests (Hypothesis) of every client's response parsing: any body either parses
into a valid model or raises a typed upstream error, never another exception.

Bodies are drawn two ways: arbitrary JSON, and near-valid shapes of each API whose fields take
arbitrary JSON values (a number where a string belongs, a list for an object, null anywhere).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from worker.clients.abconnect_models import (
    parse_document_answer,
    parse_document_guids,
    parse_events_page,
    parse_standards_page,
)
from worker.clients.canvas import parse_as
from worker.clients.canvas_models import Outcome, OutcomeGroup, OutcomeLink
from worker.clients.canvas_roster_models import (
    Account,
    Assignment,
    Course,
    Enrollment,
    Login,
    Progress,
    Section,
    Submission,
    Term,
    User,
)
from worker.clients.errors import UpstreamError
from worker.clients.http import UpstreamHTTP
from worker.clients.illuminate import parse_page, typed_page
from worker.clients.illuminate_models import RECORD_MODELS

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time, any JSON value otherwise."""
    return st.one_of(good, good, json_values)


def _typed(call: Any, *args: Any) -> None:
    try:
        result = call(*args)
    except UpstreamError:
        return
    assert result is not None


# -- AB Connect ------------------------------------------------------------------------------------

ab_dates = maybe(st.sampled_from(["2017-11-12 00:00:00", "2024-02-29T10:00:00Z", "", "yesterday"]))
ab_events = st.fixed_dictionaries({
    "id": maybe(st.text(min_size=1, max_size=8)),
    "type": st.just("events"),
    "attributes": maybe(st.fixed_dictionaries({
        "seq": maybe(st.integers(min_value=0, max_value=10**12)), "date_utc": ab_dates,
        "change_type": maybe(st.sampled_from(["added", "removed", "modified", "deleted"])),
        "target": maybe(st.sampled_from(["document", "section", "standard"])),
        "document_guid": maybe(st.text(max_size=8) | st.none()),
        "affected_properties": maybe(st.lists(st.fixed_dictionaries({"name": maybe(st.text(max_size=5))}),
                                              max_size=2)),
    })),
    "relationships": maybe(st.fixed_dictionaries({"standard": json_values})),
})
ab_standards = st.fixed_dictionaries({
    "id": maybe(st.text(min_size=1, max_size=8)),
    "attributes": maybe(st.fixed_dictionaries({
        "status": maybe(st.sampled_from(["active", "deleted"])), "seq": maybe(st.integers() | st.none()),
        "number": maybe(st.fixed_dictionaries({"enhanced": maybe(st.text(max_size=6))})),
        "statement": maybe(st.fixed_dictionaries({"descr": maybe(st.text(max_size=20))})),
        "document": maybe(st.fixed_dictionaries({"guid": maybe(st.text(min_size=1, max_size=8)),
                                                 "descr": maybe(st.text(max_size=8))})),
        "education_levels": maybe(st.fixed_dictionaries({"grades": maybe(st.lists(
            st.fixed_dictionaries({"code": maybe(st.text(max_size=2))}), max_size=2))})),
        "utilizations": maybe(st.lists(st.fixed_dictionaries({"type": maybe(st.text(max_size=8))}), max_size=2)),
        "date_modified_utc": ab_dates,
    })),
})
ab_meta = maybe(st.fixed_dictionaries({"count": maybe(st.integers(min_value=0, max_value=500)),
                                       "facets": maybe(st.lists(st.fixed_dictionaries({
                                           "facet": st.sampled_from(["section", "document"]),
                                           "details": maybe(st.lists(st.fixed_dictionaries({
                                               "data": maybe(st.fixed_dictionaries({
                                                   "guid": maybe(st.text(min_size=1, max_size=6)),
                                                   "seq": maybe(st.integers())}))}), max_size=3))}),
                                           max_size=2))}))


@SETTINGS
@given(st.one_of(json_values, st.fixed_dictionaries({"data": maybe(st.lists(ab_events, max_size=4)),
                                                      "meta": ab_meta, "links": json_values})))
def test_ab_connect_events_pages(body: Any) -> None:
    _typed(parse_events_page, body)


@SETTINGS
@given(st.one_of(json_values, st.fixed_dictionaries({"data": maybe(st.lists(ab_standards, max_size=4)),
                                                      "meta": ab_meta})), st.integers(0, 300))
def test_ab_connect_standards_pages_documents_and_facets(body: Any, offset: int) -> None:
    _typed(parse_standards_page, body, offset, 100)
    _typed(parse_document_answer, "D1", body)
    _typed(parse_document_guids, body)


# -- Canvas ----------------------------------------------------------------------------------------

canvas_group = st.fixed_dictionaries({
    "id": maybe(st.integers(min_value=1)), "title": maybe(st.text(max_size=10)),
    "vendor_guid": maybe(st.text(max_size=8) | st.none()),
    "parent_outcome_group": maybe(st.fixed_dictionaries({"id": maybe(st.integers())})),
})
canvas_link = st.fixed_dictionaries({
    "outcome_group": maybe(canvas_group),
    "outcome": maybe(st.fixed_dictionaries({"id": maybe(st.integers()), "title": maybe(st.text(max_size=10)),
                                            "ratings": maybe(st.lists(json_values, max_size=2))})),
})


@SETTINGS
@given(st.one_of(json_values, canvas_group, canvas_link), st.sampled_from([OutcomeGroup, OutcomeLink, Outcome]))
def test_canvas_objects(body: Any, model: type[BaseModel]) -> None:
    _typed(parse_as, model, body)


CANVAS_ROSTER_MODELS: list[type[BaseModel]] = [Account, User, Login, Term, Course, Section, Enrollment, Assignment,
                                               Submission, Progress]
# Objects built from the models' own field names, so most generated bodies come close to a real one.
roster_fields = sorted({name for model in CANVAS_ROSTER_MODELS for name in model.model_fields})
canvas_roster_object = st.dictionaries(
    st.sampled_from(roster_fields),
    maybe(st.integers(min_value=0, max_value=10**9) | st.text(max_size=12) | st.booleans()
          | st.sampled_from(["2024-02-01T00:00:00Z", "active", "completed", "StudentEnrollment", "1.5", "sis:1"])),
    max_size=12)


@SETTINGS
@given(st.one_of(json_values, canvas_roster_object), st.sampled_from(CANVAS_ROSTER_MODELS))
def test_canvas_roster_and_gradebook_objects(body: Any, model: type[BaseModel]) -> None:
    _typed(parse_as, model, body)


# -- Illuminate ------------------------------------------------------------------------------------

record_values = maybe(st.sampled_from(["1", "0", "t", "f", "NULL", "2024-01-31", "12.5", "a,b", ""])
                      | st.integers() | st.booleans())
illuminate_record = st.dictionaries(
    st.sampled_from(["student_id", "user_id", "section_id", "course_id", "term_id", "site_id", "assessment_id",
                     "local_student_id", "entry_date", "birth_date", "primary_teacher", "points", "site_ids",
                     "reporting_group", "academic_benchmark_guid", "last_name", "active", "start_date"]),
    record_values, max_size=10,
)


@SETTINGS
@given(st.one_of(json_values, st.fixed_dictionaries({
    "page": maybe(st.integers(1, 3) | st.sampled_from(["1", "2"])),
    "num_pages": maybe(st.integers(0, 3) | st.just("1")),
    "num_results": maybe(st.integers(0, 3000) | st.just("5")),
    "results": maybe(st.lists(maybe(illuminate_record), max_size=3)),
})), st.sampled_from(sorted(RECORD_MODELS)))
def test_illuminate_pages_and_records(body: Any, endpoint: str) -> None:
    try:
        page = parse_page(endpoint, 1, body)
    except UpstreamError:
        return
    _typed(typed_page, RECORD_MODELS[endpoint], page)


# -- the shared HTTP layer: bodies as bytes ------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> UpstreamHTTP:
    return UpstreamHTTP("test", "http://127.0.0.1:9")


@SETTINGS
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       content_type=st.sampled_from(["application/json", "text/html; charset=utf-8", "", "text/plain"]))
def test_any_body_is_json_or_a_malformed_response_error(http: UpstreamHTTP, body: bytes, content_type: str) -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/x")
    response = httpx.Response(200, headers={"content-type": content_type}, content=body, request=request)
    try:
        http.parse_json(response)
    except UpstreamError:
        return
