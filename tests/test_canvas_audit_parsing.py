"""Parsing Canvas audit documents and roster objects: both compound shapes, ``event_data`` as an
object or a JSON string, link ids as strings or integers, Canvas's timestamp spellings; and a
Hypothesis property over every new parse function: any JSON parses or raises ``UpstreamError``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from worker.clients.canvas_audit_models import CourseEvent, GradeChangeEvent, parse_compound
from worker.clients.canvas_base import parse_as
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
from worker.clients.canvas_types import canvas_time, parse_canvas_time
from worker.clients.errors import MalformedResponseError, UpstreamError

EVENT = {
    "id": "e2b76430-27a5-0131-3ca1-48e0eb13f29b", "created_at": "2012-07-19T15:00:00-06:00",
    "event_type": "updated", "event_data": "{}", "event_source": "manual|sis|api",
    "links": {"course": "12345", "user": "12345", "page_view": "e2b76430-27a5-0131-3ca1-48e0eb13f29b"},
}


def test_seed_generic_shape_with_meta_primary_collection() -> None:
    doc = parse_compound({"meta": {"primaryCollection": "comments"}, "comments": [EVENT],
                          "authors": [{"id": 1}], "links": {}})
    assert doc.primary == [EVENT]
    assert doc.linked == {"authors": [{"id": 1}]}


def test_canvas_source_shape_with_links_events_and_linked() -> None:
    body = {"links": {"events.course": "https://x/api/v1/courses/{events.course}"}, "events": [EVENT],
            "linked": {"courses": [{"id": 12345, "sis_course_id": "C-1"}], "users": [], "page_views": []}}
    doc = parse_compound(body)
    assert doc.primary == [EVENT]
    assert doc.linked_by_id("courses") == {"12345": {"id": 12345, "sis_course_id": "C-1"}}


def test_superset_shape_prefers_linked_and_ignores_reserved() -> None:
    body = {"meta": {"primaryCollection": "events"}, "links": {"x": "y"}, "events": [],
            "linked": {"users": [{"id": "7"}]}, "users": [{"id": "8"}], "courses": [{"id": 1}]}
    doc = parse_compound(body)
    assert doc.linked == {"users": [{"id": "7"}], "courses": [{"id": 1}]}


@pytest.mark.parametrize("body", [
    [], "events", {"events": {}}, {"meta": {"primaryCollection": "links"}, "links": []},
    {"meta": {}, "events": []}, {"meta": {"primaryCollection": "comments"}, "events": []},
])
def test_documents_without_a_primary_collection_are_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_compound(body)


def test_course_event_data_as_string_and_link_ids_as_integers() -> None:
    event = parse_as(CourseEvent, EVENT)
    assert event.event_data == {}
    assert event.created_at == datetime(2012, 7, 19, 21, 0, tzinfo=UTC)
    as_object = parse_as(CourseEvent, {**EVENT, "event_data": {"name": ["A", "B"]},
                                       "links": {"course": 12345, "user": 12345, "copied_from": 99}})
    assert as_object.event_data == {"name": ["A", "B"]}
    assert (as_object.links.course, as_object.links.user) == ("12345", "12345")
    assert as_object.links.related() == {"copied_from": "99"}
    assert parse_as(CourseEvent, {**EVENT, "event_data": None}).event_data == {}
    for bad in ("{not json", "[1, 2]", 7):
        with pytest.raises(MalformedResponseError):
            parse_as(CourseEvent, {**EVENT, "event_data": bad})
    with pytest.raises(MalformedResponseError):
        parse_as(CourseEvent, {**EVENT, "links": {"course": True}})


def test_grade_change_event_with_anonymous_student() -> None:
    event = parse_as(GradeChangeEvent, {
        "id": "u-1", "created_at": "2013-12-12T16:09:09.960-07:00", "grade_before": 8, "grade_after": "B+",
        "excused_before": False, "excused_after": False, "request_id": "r-1",
        "links": {"assignment": 3, "course": "4", "student": None, "grader": 5},
    })
    assert (event.grade_before, event.grade_after, event.links.student, event.links.grader) == ("8", "B+", None, "5")
    assert event.created_at == datetime(2013, 12, 12, 23, 9, 9, 960000, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2012-07-19T15:00:00-06:00", datetime(2012, 7, 19, 21, 0, tzinfo=UTC)),
    ("2014-01-01T01:00Z", datetime(2014, 1, 1, 1, 0, tzinfo=UTC)),
    ("2014-05-14T05:00:00-04:0", datetime(2014, 5, 14, 9, 0, tzinfo=UTC)),  # the seed's malformed offset
    ("2015-09-05", datetime(2015, 9, 5, tzinfo=UTC)),
    ("2026-03-04T12:00:00+0530", datetime(2026, 3, 4, 6, 30, tzinfo=UTC)),
])
def test_canvas_timestamp_spellings(raw: str, expected: datetime) -> None:
    assert parse_canvas_time(raw) == expected


def test_bad_timestamps_raise_value_error() -> None:
    for raw in ("yesterday", "2024-02-30T00:00:00Z", "0001-01-01T00:00:00+05:00", "2024-01-01T00:00:00+25:00"):
        with pytest.raises(ValueError):
            parse_canvas_time(raw)
    assert canvas_time(datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)) == "2026-03-04T05:06:07Z"


# --- property: any JSON parses or raises UpstreamError ------------------------------------------

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
times = st.sampled_from(["2012-07-19T15:00:00-06:00", "2014-01-01T01:00Z", "2014-05-14T05:00:00-04:0", "",
                         "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2024-13-01"]) | st.text(max_size=25)
ids = st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=8) | st.none() | st.booleans()


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time, any JSON value otherwise."""
    return st.one_of(good, good, json_values)


links = st.fixed_dictionaries({
    "course": maybe(ids), "user": maybe(ids), "assignment": maybe(ids), "student": maybe(ids),
    "grader": maybe(ids), "copied_to": maybe(ids),
})
events = st.fixed_dictionaries({
    "id": maybe(ids), "created_at": maybe(times), "event_type": maybe(st.text(max_size=10)),
    "event_data": maybe(st.sampled_from(["{}", '{"name": [null, "x"]}', "{bad", "[]"]) | json_values),
    "grade_before": maybe(st.text(max_size=4) | st.integers()), "excused_after": maybe(st.booleans()),
    "version_number": maybe(st.integers()), "links": maybe(links),
})
linked = st.fixed_dictionaries({"users": maybe(st.lists(json_values, max_size=3))})
documents = st.one_of(
    st.fixed_dictionaries({"meta": maybe(st.fixed_dictionaries({"primaryCollection": maybe(st.just("events"))})),
                           "events": maybe(st.lists(events, max_size=3)), "courses": json_values}),
    st.fixed_dictionaries({"links": json_values, "events": maybe(st.lists(events, max_size=3)),
                           "linked": maybe(linked)}),
    json_values,
)
roster = st.fixed_dictionaries({
    "id": maybe(ids), "name": maybe(st.text(max_size=8)), "user_id": maybe(ids), "course_id": maybe(ids),
    "assignment_id": maybe(ids), "unique_id": maybe(st.text(max_size=8)), "type": maybe(st.text(max_size=8)),
    "enrollment_state": maybe(st.sampled_from(["active", "completed"])), "start_at": maybe(times),
    "updated_at": maybe(times), "score": maybe(st.floats(allow_nan=False)), "excused": maybe(st.booleans()),
    "workflow_state": maybe(st.sampled_from(["queued", "running", "completed", "failed", "available"])),
})
ROSTER_MODELS: list[type[BaseModel]] = [Account, User, Login, Term, Course, Section, Enrollment, Assignment,
                                        Submission, Progress]


def _typed(call: Any, *args: Any) -> None:
    try:
        result = call(*args)
    except UpstreamError:
        return
    assert result is not None


@SETTINGS
@given(documents)
def test_any_audit_document_parses_or_raises_upstream_error(body: Any) -> None:
    try:
        doc = parse_compound(body)
    except UpstreamError:
        return
    doc.linked_by_id("users")
    for raw in doc.primary:
        _typed(parse_as, CourseEvent, raw)
        _typed(parse_as, GradeChangeEvent, raw)


@SETTINGS
@given(roster, st.sampled_from(ROSTER_MODELS))
def test_any_roster_object_parses_or_raises_upstream_error(body: Any, model: type[BaseModel]) -> None:
    _typed(parse_as, model, body)


@SETTINGS
@given(json_values, st.sampled_from([CourseEvent, GradeChangeEvent, *ROSTER_MODELS]))
def test_any_json_value_parses_or_raises_upstream_error(body: Any, model: type[BaseModel]) -> None:
    _typed(parse_as, model, body)
    _typed(parse_compound, body)
