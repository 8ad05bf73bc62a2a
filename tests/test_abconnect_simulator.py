"""AB Connect simulator: auth, JSON:API shapes, paging links, filters, events, throttling, control API."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from simulators.abconnect import ABConnectSimulator, MutateRequest, SeedRequest, SimConfig, create_app
from simulators.abconnect.auth import AuthFailure, verify
from simulators.abconnect.query import FilterError, parse_fields, parse_filter, prune
from simulators.abconnect.state import MutationError
from simulators.faults import FaultInjector
from simulators.server import ThreadedServer
from worker.clients.abconnect_auth import auth_params, encode_query, sign

pytestmark = pytest.mark.anyio

PARTNERS = {"alpha": "alpha-key", "beta": "beta-key"}
JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ABConnectSimulator, FaultInjector, str]]:
    sim = ABConnectSimulator(PARTNERS)
    faults = FaultInjector()
    with ThreadedServer(create_app(sim, faults)) as srv:
        yield sim, faults, srv.url


@pytest.fixture
def sim(served: tuple[ABConnectSimulator, FaultInjector, str]) -> ABConnectSimulator:
    s, faults, _ = served
    s.config = SimConfig(rate_per_second=1e6, burst=1e6)
    s.seed(SeedRequest(documents=3, standards_per_document=40, sections_per_document=4, seed=11))
    faults.clear()
    return s


@pytest.fixture
async def http(served: tuple[ABConnectSimulator, FaultInjector, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served[2]) as client:
        yield client


def signed(path: str, params: list[tuple[str, str]] | None = None, *, partner: str = "alpha",
           method: str | None = "GET", resource: str | None = None, user: str | None = None,
           expires: int | None = None) -> str:
    """A signed API URL (path relative to the server root)."""
    exp = expires if expires is not None else int(time.time()) + 600
    sig = sign(PARTNERS[partner], exp, user_id=user, method=method, resource=resource)
    query = encode_query([*(params or []), *auth_params(partner, sig, exp, user_id=user)])
    return f"/rest/v4.1/{path}?{query}"


# ---------------------------------------------------------------- auth (pure)


def test_verify_accepts_every_documented_message_form() -> None:
    exp = int(time.time()) + 60
    path = "/rest/v4.1/standards/ABC"

    def ok(**kw: Any) -> str:
        user = kw.get("user_id")
        sig = sign("alpha-key", exp, **kw)
        query = {"partner.id": "alpha", "auth.signature": sig, "auth.expires": str(exp)}
        if user:
            query["user.id"] = user
        return verify(PARTNERS, query, method="GET", path=path, now=time.time())

    assert ok() == "alpha"
    assert ok(user_id="bob") == "alpha"
    assert ok(method="GET") == "alpha"
    assert ok(method="GET", resource="standards") == "alpha"
    assert ok(user_id="bob", method="GET", resource="standards") == "alpha"
    for kwargs, reason in [
        ({"method": "POST"}, "signature does not match"),  # signed for another method
        ({"method": "GET", "resource": "topics"}, "signature does not match"),  # another resource
    ]:
        with pytest.raises(AuthFailure, match=reason):
            ok(**kwargs)


def test_verify_rejections_name_the_parameter() -> None:
    now = time.time()
    exp = int(now) + 60
    good = sign("alpha-key", exp)
    cases = [
        ({"auth.signature": good, "auth.expires": str(exp)}, "partner.id"),
        ({"partner.id": "nobody", "auth.signature": good, "auth.expires": str(exp)}, "partner.id"),
        ({"partner.id": "alpha", "auth.signature": good, "auth.expires": "soon"}, "auth.expires"),
        ({"partner.id": "alpha", "auth.signature": sign("alpha-key", int(now) - 5),
          "auth.expires": str(int(now) - 5)}, "auth.expires"),
        ({"partner.id": "alpha", "auth.signature": good, "auth.expires": str(exp), "user.id": "eve"},
         "auth.signature"),  # a user-less signature does not cover a request naming a user
        ({"partner.id": "beta", "auth.signature": good, "auth.expires": str(exp)}, "auth.signature"),
    ]
    for query, parameter in cases:
        with pytest.raises(AuthFailure) as info:
            verify(PARTNERS, query, method="GET", path="/rest/v4.1/events", now=now)
        assert info.value.parameter == parameter, query
    # An unencoded '+' arrives as a space; the simulator reads it back as '+'.
    plus = next(e for e in itertools.count(exp) if "+" in sign("alpha-key", e))
    query = {"partner.id": "alpha", "auth.signature": sign("alpha-key", plus).replace("+", " "),
             "auth.expires": str(plus)}
    assert verify(PARTNERS, query, method="GET", path="/rest/v4.1/events", now=now) == "alpha"


# ---------------------------------------------------------------- filters and fields (pure)


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("seq GT 28974", {"seq": 28975}, True),
        ("seq gt 28974", {"seq": 28974}, False),
        ("(seq ge 5 and seq le 6)", {"seq": 6}, True),
        ("utilizations.type eq alignable", {"utilizations": [{"type": "x"}, {"type": "alignable"}]}, True),
        ("status IN ('active','deleted')", {"status": "deleted"}, True),
        ('grades in ("F1", "AB")', {"grades": "ab"}, True),
        ("a eq 1 or b eq 2 and c eq 3", {"a": 1, "b": 0, "c": 0}, True),  # and binds tighter than or
        ("not a eq 1 and b eq 2", {"a": 0, "b": 2}, True),
        ("descr eq 'don\\'t'", {"descr": "don't"}, True),
        ("isempty(peers)", {"peers": []}, True),
        ("not isempty(peers) and x ne 'y'", {"peers": [1], "x": "z"}, True),
        ("date_utc gt '2017-09-12 12:00:00'", {"date_utc": "2017-11-12 00:00:00"}, True),
        ("query(descr, 'adding fractions')", {"descr": "Adding and subtracting fractions"}, True),
    ],
)
def test_filter_grammar(text: str, record: dict[str, Any], expected: bool) -> None:
    from simulators.abconnect.query import dig

    assert parse_filter(text).matches(record, dig) is expected


@pytest.mark.parametrize("text", ["seq GT", "(seq gt 1", "seq between 1", "and seq gt 1", "seq gt 1 2", ""])
def test_malformed_filters(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_sparse_fieldsets_keep_minimal_containing_objects() -> None:
    attrs = {"number": {"enhanced": "E", "raw": "1."}, "statement": {"descr": "S", "combined_descr": "C"},
             "standard_type": "objective", "education_levels": {"grades": [{"code": "9", "seq": 1}]}}
    tree = parse_fields("statement.descr,standard_type,number.enhanced,education_levels.grades.code")
    assert tree is not None
    assert prune(attrs, tree) == {
        "statement": {"descr": "S"}, "standard_type": "objective", "number": {"enhanced": "E"},
        "education_levels": {"grades": [{"code": "9"}]},
    }
    assert prune(attrs, parse_fields("*") or {}) == attrs
    assert parse_fields(None) is None
    assert parse_fields("number,number.raw") == {"number": {}}  # the whole object wins


# ---------------------------------------------------------------- state (pure)


def test_seed_scales_to_2000_standards_and_announces_every_document() -> None:
    sim = ABConnectSimulator(PARTNERS)
    result = sim.seed(SeedRequest(documents=20, standards_per_document=100, sections_per_document=5, seed=1))
    assert (result["documents"], result["standards"], result["sections"]) == (20, 2000, 100)
    for partner in PARTNERS:
        snap = sim.snapshot(partner)
        assert len(snap["documents"]) == 20 and len(snap["standards"]) == 2000 and snap["events"] == 20
    events, count = sim.list_events("alpha", parse_filter("seq GT 0"), [("seq", False)], 0, 100)
    assert count == 20 and {(e.target, e.change_type) for e in events} == {("document", "added")}
    assert {e.document_guid for e in events} == set(sim.documents)
    # Quirk reproduced from the example (L1450): a document event carries a section_guid.
    assert all(e.section_guid in sim.documents[e.document_guid or ""].section_guids for e in events)
    beta, _ = sim.list_events("beta", None, [], 0, 100)
    assert not {e.seq for e in events} & {e.seq for e in beta}  # each partner has its own seqs
    # Same seed, same catalogue.
    again = ABConnectSimulator(PARTNERS)
    again.seed(SeedRequest(documents=20, standards_per_document=100, sections_per_document=5, seed=1))
    assert list(again.standards) == list(sim.standards)


def test_mutations_produce_matching_events_and_visibility() -> None:
    sim = ABConnectSimulator(PARTNERS)
    sim.seed(SeedRequest(documents=2, standards_per_document=20, sections_per_document=2, seed=2))
    doc = next(iter(sim.documents))
    section = sim.documents[doc].section_guids[0]
    std = next(g for g in sim.sections[section].standard_guids if sim.standards[g].deepest)

    def one(**kw: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = sim.mutate(MutateRequest(**kw))["events"]
        return events

    [ev] = one(kind="modify_standard", standard_guid=std)
    assert (ev["target"], ev["change_type"], ev["standard_guid"], ev["partners"]) == (
        "standard", "modified", std, ["alpha", "beta"])
    removed = one(kind="remove_section", section_guid=section, partner_id="alpha")
    assert [(e["target"], e["change_type"], e["partners"]) for e in removed] == [
        ("section", "removed", ["alpha"])]
    # Visibility is decided at event time: alpha no longer sees changes in that section.
    [ev] = one(kind="delete_standard", standard_guid=std)
    assert (ev["change_type"], ev["partners"]) == ("deleted", ["beta"])
    assert not sim.deliverable("alpha", std) and sim.deliverable("beta", std)
    [ev] = one(kind="add_standard", section_guid=sim.documents[doc].section_guids[1])
    assert ev["change_type"] == "added" and sim.standards[ev["standard_guid"]].level == 2
    added = one(kind="add_section", document_guid=doc)
    assert [(e["target"], e["change_type"]) for e in added] == [("section", "added")] * 2
    assert len(sim.sections[added[0]["section_guid"]].standard_guids) == 10
    [readd] = one(kind="add_section", section_guid=section, partner_id="alpha")
    assert readd["section_guid"] == section and sim.deliverable("alpha", std)
    new_docs = one(kind="add_document")
    assert {(e["target"], e["change_type"]) for e in new_docs} == {("document", "added")}
    gone = one(kind="remove_document", document_guid=doc)
    assert len(gone) == 2 and doc not in {d["guid"] for d in sim.snapshot("beta")["documents"]}
    with pytest.raises(MutationError):
        one(kind="remove_document", document_guid=doc)
    with pytest.raises(MutationError):
        one(kind="modify_standard", standard_guid="00000000-0000-0000-0000-000000000000")
    visible = [s for s in sim.snapshot("beta")["standards"] if not s["deleted"] and s["level"] == 2]
    [ev] = one(kind="delete_standard", standard_guid=visible[0]["guid"])
    after = {s["guid"]: s for s in sim.snapshot("beta")["standards"]}
    assert after[ev["standard_guid"]]["deleted"] and after[ev["standard_guid"]]["status"] == "deleted"
    mixed = one(kind="random", count=50, seed=9)
    assert len({e["change_type"] for e in mixed}) >= 3
    assert all(b["seq"] > a["seq"] for a, b in itertools.pairwise(mixed))


# ---------------------------------------------------------------- HTTP: JSON:API shapes


async def test_error_bodies_and_content_type(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    resp = await http.get("/rest/v4.1/standards")
    assert resp.status_code == 401 and resp.headers["content-type"] == JSON_TYPE
    assert resp.json() == {"errors": [{
        "status": "401", "title": "Unauthorized", "source": {"parameter": "partner.id"},
        "detail": "Missing required authentication parameter partner.id.",
    }]}
    expired = await http.get(signed("events", expires=int(time.time()) - 10))
    assert expired.status_code == 401 and "expired" in expired.json()["errors"][0]["detail"]
    missing = await http.get(signed("standards/00000000-0000-0000-0000-000000000000", method=None))
    assert missing.status_code == 404 and missing.json()["errors"][0]["status"] == "404"
    unknown = await http.get(signed("widgets"))
    assert unknown.status_code == 404
    bad_filter = await http.get(signed("standards", [("filter[standards]", "level eq")]))
    err = bad_filter.json()["errors"][0]
    assert bad_filter.status_code == 400 and err["source"] == {"parameter": "filter[standards]"}
    too_big = await http.get(signed("events", [("limit", "101")]))
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["source"]["parameter"] == "limit"
    resource_sig = await http.get(signed("events", resource="events"))
    assert resource_sig.status_code == 200
    wrong_resource = await http.get(signed("events", resource="standards"))
    assert wrong_resource.status_code == 401
    assert sim.stats()["auth_failures"] == 3


async def test_list_links_and_meta(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    flt = [("filter[standards]", f"document.guid eq '{next(iter(sim.documents))}'")]
    first = (await http.get(signed("standards", flt))).json()
    assert first["meta"]["count"] == 40 and first["meta"]["limit"] == 10 and first["meta"]["offset"] == 0
    assert set(first["links"]) == {"self", "next", "last"}
    assert first["links"]["next"].endswith("&offset=10") and first["links"]["last"].endswith("&offset=30")
    assert "auth.signature" not in first["links"]["self"] and "partner.id" not in first["links"]["next"]
    assert first["data"][0] == {"type": "standards", "id": first["data"][0]["id"]}  # id and type only
    middle = (await http.get(signed("standards", [*flt, ("limit", "15"), ("offset", "15")]))).json()
    assert set(middle["links"]) == {"self", "first", "prev", "next", "last"}
    assert middle["links"]["last"].endswith("limit=15&offset=30")
    assert "offset" not in middle["links"]["first"] and middle["links"]["prev"].endswith("limit=15")
    last = (await http.get(signed("standards", [*flt, ("offset", "30")]))).json()
    assert "next" not in last["links"] and len(last["data"]) == 10
    empty = (await http.get(signed("standards", [*flt, ("limit", "0"), ("facet", "section")]))).json()
    assert empty["data"] == [] and empty["meta"]["count"] == 40
    [facet] = empty["meta"]["facets"]
    assert facet["facet"] == "section" and facet["count"] == 4
    assert sum(d["count"] for d in facet["details"]) == 40 and set(facet["details"][0]["data"]) == {
        "guid", "descr", "seq"}


async def test_standard_resource_shapes(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    rec = next(s for s in sim.standards.values() if s.deepest)
    fields = ("fields[standards]", "statement.descr,number.enhanced,parent")
    sparse = (await http.get(signed(f"standards/{rec.guid}", [fields]))).json()
    assert set(sparse) == {"links", "data", "meta"} and set(sparse["meta"]) == {"took"}
    data = sparse["data"]
    assert data["attributes"] == {
        "statement": {"descr": rec.statement}, "number": {"enhanced": rec.number_enhanced}}
    assert data["relationships"]["parent"]["data"] == {"type": "standards", "id": rec.parent_guid}
    full = (await http.get(signed(f"standards/{rec.guid}", [("fields[standards]", "*")]))).json()["data"]
    attrs = full["attributes"]
    assert attrs["status"] == "active" and attrs["document"]["guid"] == rec.document_guid
    assert attrs["section"]["guid"] == rec.section_guid and attrs["utilizations"][0]["type"] == "alignable"
    assert {"children", "ancestors", "parent"} <= set(full["relationships"])
    children = (await http.get(signed(f"standards/{rec.parent_guid}/children",
                                      [("fields[standards]", "guid")]))).json()
    assert rec.guid in {d["id"] for d in children["data"]}


async def test_list_filters_and_deleted_standards(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    doc = next(iter(sim.documents))
    rec = next(sim.standards[g] for g in sim.standards if sim.standards[g].document_guid == doc
               and sim.standards[g].deepest)
    sim.mutate(MutateRequest(kind="delete_standard", standard_guid=rec.guid))

    async def ids(flt: str) -> set[str]:
        body = (await http.get(signed("standards", [("filter[standards]", flt), ("limit", "100")]))).json()
        return {d["id"] for d in body["data"]}

    active = await ids(f"document.id EQ '{doc}'")  # the follow-up example's spelling (L1468)
    assert len(active) == 39 and rec.guid not in active
    both = await ids(f"document.guid eq '{doc}' and status IN ('active','deleted')")
    assert len(both) == 40 and rec.guid in both
    assert await ids("status EQ 'deleted'") == {rec.guid}
    assert len(await ids(f"section.guid eq '{rec.section_guid}' and level eq 1")) >= 1
    assert await ids(f"parent.id eq '{rec.parent_guid}' and guid eq '{rec.guid}'") == set()
    one = await http.get(signed(f"standards/{rec.guid}", [("fields[standards]", "status,date_deleted_utc")]))
    assert one.status_code == 200 and one.json()["data"]["attributes"]["status"] == "deleted"
    assert one.json()["data"]["attributes"]["date_deleted_utc"]


async def test_events_endpoint(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    sim.mutate(MutateRequest(kind="modify_standard", count=5, seed=1))
    fields = ("fields[events]", "seq,date_utc,change_type,target,document_guid,section_guid,"
                                "affected_properties,standard,deleted_standard,nondeliverable_standard")
    bare = (await http.get(signed("events", [("filter[events]", "seq GT 0")]))).json()
    assert set(bare["data"][0]) == {"id", "type"}  # sparse default without fields[events]
    full = (await http.get(signed("events", [("filter[events]", "seq GT 0"), ("sort[events]", "seq"),
                                             ("limit", "100"), fields]))).json()
    seqs = [e["attributes"]["seq"] for e in full["data"]]
    assert seqs == sorted(seqs) and len(seqs) == 3 + 5 and full["meta"]["count"] == 8
    doc_event, change = full["data"][0], full["data"][-1]
    assert doc_event["type"] == "events" and doc_event["attributes"]["target"] == "document"
    assert doc_event["relationships"]["standard"] == {"data": {}}  # as in the example (L1453)
    assert change["attributes"]["change_type"] == "modified"
    assert change["relationships"]["standard"]["data"]["type"] == "standards"
    assert change["attributes"]["affected_properties"][0]["name"] == "statement.descr"
    after = (await http.get(signed("events", [("filter[events]", f"seq GT {seqs[3]}"), fields]))).json()
    assert [e["attributes"]["seq"] for e in after["data"]] == seqs[4:]
    desc = (await http.get(signed("events", [("sort[events]", "-seq"), ("limit", "1"), fields]))).json()
    assert desc["data"][0]["attributes"]["seq"] == seqs[-1] and "next" in desc["links"]
    single = (await http.get(signed(f"events/{change['id']}", [fields]))).json()
    assert single["data"]["attributes"]["seq"] == seqs[-1]
    beta = (await http.get(signed("events", [("limit", "100"), fields], partner="beta"))).json()
    assert not {e["id"] for e in beta["data"]} & {e["id"] for e in full["data"] if e["attributes"]["target"]
                                                    == "document"}


async def test_forbidden_when_delivery_removed(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    rec = next(iter(sim.standards.values()))
    sim.mutate(MutateRequest(kind="remove_document", document_guid=rec.document_guid, partner_id="alpha"))
    alpha = await http.get(signed(f"standards/{rec.guid}"))
    assert alpha.status_code == 403 and alpha.json()["errors"][0]["status"] == "403"
    beta = await http.get(signed(f"standards/{rec.guid}", partner="beta"))
    assert beta.status_code == 200
    flt = ("filter[standards]", f"document.guid eq '{rec.document_guid}'")
    listed = await http.get(signed("standards", [flt]))
    assert listed.json()["meta"]["count"] == 0


# ---------------------------------------------------------------- HTTP: rate limiting


async def test_bucket_answers_429_with_error_body(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    sim.update_config({"rate_per_second": 0.1, "burst": 25.0})
    sim.reset_buckets()
    sim.reset_stats()
    statuses = [(await http.get(signed("events"))).status_code for _ in range(27)]
    assert statuses[:25] == [200] * 25 and statuses[25:] == [429, 429]
    resp = await http.get(signed("events", partner="beta"))  # buckets are per account
    assert resp.status_code == 200
    throttled = await http.get(signed("events"))
    assert throttled.status_code == 429 and "retry-after" not in throttled.headers
    assert throttled.json()["errors"][0]["status"] == "429"
    stats = sim.stats()
    assert stats["throttled"] == 3 and stats["by_partner"] == {"alpha": 28, "beta": 1}


async def test_wildcard_fields_throttled_to_2_per_second(
    sim: ABConnectSimulator, http: httpx.AsyncClient,
) -> None:
    guid = next(iter(sim.standards))
    codes = [(await http.get(signed(f"standards/{guid}", [("fields[standards]", "*")]))).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    assert (await http.get(signed(f"standards/{guid}", [("fields[standards]", "guid")]))).status_code == 200


# ---------------------------------------------------------------- HTTP: control API


async def test_control_api(sim: ABConnectSimulator, http: httpx.AsyncClient) -> None:
    seeded = (await http.post("/_sim/seed", json={"documents": 2, "standards_per_document": 12,
                                                 "sections_per_document": 3, "seed": 4})).json()
    assert seeded["documents"] == 2 and seeded["standards"] == 24 and seeded["events"] == 4
    mutated = await http.post("/_sim/mutate", json={"kind": "delete_standard", "count": 2, "seed": 1})
    assert mutated.status_code == 200 and len(mutated.json()["events"]) == 2
    bad = await http.post("/_sim/mutate", json={"kind": "explode"})
    assert bad.status_code == 422
    conflict = await http.post("/_sim/mutate", json={"kind": "remove_section", "section_guid": "NOPE"})
    assert conflict.status_code == 409
    state = (await http.get("/_sim/state", params={"partner_id": "beta"})).json()
    assert state["partner_id"] == "beta" and len(state["documents"]) == 2 and len(state["standards"]) == 24
    assert sum(s["deleted"] for s in state["standards"]) == 2
    assert {"guid", "statement", "deleted", "number", "document_guid", "section_guid", "section_descr"} <= set(
        state["standards"][0])
    assert (await http.get("/_sim/state", params={"partner_id": "nobody"})).status_code == 404
    faults = await http.put("/_sim/faults", json={"error_rate": 1.0, "remaining": 1})
    assert faults.json()["error_rate"] == 1.0
    assert (await http.get(signed("events"))).status_code == 500
    assert (await http.get(signed("events"))).status_code == 200
    config = (await http.put("/_sim/config", json={"relationship_shape": "nested"})).json()
    assert config["relationship_shape"] == "nested" and config["burst"] == 1e6
    stats = (await http.get("/_sim/stats")).json()
    assert stats["by_status"] == {"200": 1} and stats["requests"] == 1  # faults never reach the app
    assert (await http.delete("/_sim/stats")).json()["requests"] == 0
    assert (await http.post("/_sim/reset")).json() == {"ok": True}
    assert (await http.get("/_sim/state")).json()["standards"] == []
