"""AB Connect client: signing, encoding, paging, error mapping and retries, against the real simulator."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx
import pytest

from handlers.standards_text import standard_outcome_text
from simulators.abconnect import ABConnectSimulator, MutateRequest, SeedRequest, SimConfig, create_app
from simulators.faults import FaultConfig, FaultInjector
from simulators.server import ThreadedServer
from simulators.standards_convergence import expected_text
from tests.http_settings import FAST, http_settings
from worker.backoff import Backoff
from worker.clients.abconnect import ABConnectClient
from worker.clients.abconnect_auth import auth_params, encode_query, quote_literal, sign, signature_message
from worker.clients.abconnect_models import parse_event, parse_standard, relationship_ids
from worker.clients.errors import (
    AuthenticationError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    ThrottledError,
    TransientUpstreamError,
)
from worker.clients.rate_limit import TokenBucket

pytestmark = pytest.mark.anyio

PARTNER, KEY = "district-a", "s3cr3t+key/=="
OTHER, OTHER_KEY = "district-b", "other-key"


@dataclass
class Sim:
    sim: ABConnectSimulator
    faults: FaultInjector
    url: str

    def client(self, *, max_retries: int = 5, timeout: float = 30.0, backoff: Backoff = FAST,
               **kwargs: object) -> ABConnectClient:
        """A client with a bucket that never waits and quick retries, unless overridden."""
        kwargs.setdefault("bucket", TokenBucket(1e6, 1e6))
        return ABConnectClient(self.url, PARTNER, KEY, http=http_settings(max_retries, timeout, backoff),
                               **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[Sim]:
    sim = ABConnectSimulator({PARTNER: KEY, OTHER: OTHER_KEY})
    faults = FaultInjector()
    with ThreadedServer(create_app(sim, faults)) as srv:
        yield Sim(sim, faults, srv.url)


@pytest.fixture
def ab(server: Sim) -> Iterator[Sim]:
    # Every test starts from a clean, unthrottled simulator with a small catalogue.
    server.sim.config = SimConfig(rate_per_second=1e6, burst=1e6)
    server.sim.seed(SeedRequest(documents=2, standards_per_document=30, sections_per_document=3, seed=7))
    server.faults.clear()
    yield server
    server.faults.clear()


@pytest.fixture
async def client(ab: Sim) -> AsyncIterator[ABConnectClient]:
    c = ab.client()
    yield c
    await c.aclose()


# ---------------------------------------------------------------- signing and encoding (pure)


def test_signature_matches_documented_worked_example() -> None:
    # api/abconnect.md §1.2, seeds L8598-8601: read-only signature for test_account.
    assert signature_message(1512570029, method="GET") == "1512570029\n\nGET"
    sig = sign("ajk84Hjk93h59skaAJ8732", 1512570029, method="get")
    assert sig == "Sdcfa9xgRAUzQnlLik5nKj1ntqdB85jFYyFCkNxwD/M="
    fragment = encode_query(auth_params("test_account", sig, 1512570029))
    assert fragment == (
        "partner.id=test_account&auth.signature=Sdcfa9xgRAUzQnlLik5nKj1ntqdB85jFYyFCkNxwD%2FM%3D"
        "&auth.expires=1512570029"
    )
    # The unrestricted form, computed in the reference for contrast.
    assert sign("ajk84Hjk93h59skaAJ8732", 1512570029) == "Zy+Vh/+ur/sC9CsLfuLIIie1q58SiXrhD54mAWwZMic="


def test_signature_message_forms() -> None:
    assert signature_message(1508419888) == "1508419888"
    assert signature_message(1508419888, user_id="bmarley") == "1508419888\nbmarley"
    assert signature_message(1508419888, method="GET", resource="Standards") == "1508419888\n\nGET\nstandards"
    assert signature_message(1508419888, user_id="u", method="get") == "1508419888\nu\nGET"
    with pytest.raises(ValueError, match="without a method"):
        signature_message(1508419888, resource="assets")  # "your message can not look like ...\n\n\nassets"
    assert auth_params("p", "s", 1, user_id="bob")[-1] == ("user.id", "bob")


def test_query_encoding() -> None:
    query = encode_query([
        ("filter[standards]", "document.guid eq " + quote_literal("A'B\\C")),
        ("fields[standards]", "statement.descr,number.enhanced"),
        ("fields[topics]", "*"),
        ("sort[events]", "-seq"),
        ("auth.signature", "a+b/c="),
        ("filter[events]", "(seq GT 5)"),
    ])
    assert query == (
        "filter[standards]=document.guid%20eq%20%27A%5C%27B%5C%5CC%27"
        "&fields[standards]=statement.descr,number.enhanced"
        "&fields[topics]=%2A&sort[events]=-seq&auth.signature=a%2Bb%2Fc%3D"
        "&filter[events]=(seq%20GT%205)"
    )
    # Round trip: a server decoding the query sees exactly the original values (never '+' as space).
    decoded = dict(parse_qsl(query))
    assert decoded["auth.signature"] == "a+b/c="
    assert decoded["filter[standards]"] == "document.guid eq 'A\\'B\\\\C'"


async def test_signed_url_is_accepted_and_carries_encoded_filter(ab: Sim, client: ABConnectClient) -> None:
    url = client._signed_url("events", [("filter[events]", "seq GT 0")])
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["filter[events]"] == "seq GT 0"
    assert query["partner.id"] == PARTNER
    assert "%20GT%20" in url and "+" not in urlsplit(url).query
    # The key contains '+', '/' and '=': the server must still verify what we sent.
    page = await client.events(0)
    assert page.events


# ---------------------------------------------------------------- relationship and field parsing (pure)


@pytest.mark.parametrize(
    ("relationship", "expected"),
    [
        ({"data": {"type": "standards", "id": "G1"}}, ["G1"]),
        ({"data": [{"type": "standards", "id": "G1"}, {"type": "standards", "id": "G2"}]}, ["G1", "G2"]),
        ({"data": {"data": [{"type": "standards", "id": "G1"}], "links": {"related": "x"}}}, ["G1"]),
        ({"data": {}}, []),
        ({"data": None}, []),
        ({"data": []}, []),
        ({"data": {"data": [], "links": {}}}, []),
        (None, []),
        ([{"id": "G3"}], ["G3"]),
    ],
)
def test_relationship_ids_tolerates_every_documented_shape(relationship: object, expected: list[str]) -> None:
    assert relationship_ids(relationship) == expected


def test_parse_event_keeps_unknown_kinds_and_raw() -> None:
    item = {
        "id": "e1", "type": "events",
        "attributes": {"seq": 7, "date_utc": "2017-11-12 00:00:00", "change_type": "renumbered",
                       "target": "topic", "document_guid": "D", "section_guid": None},
        "relationships": {"standard": {"data": {}}, "deleted_standard": {"data": [{"id": "S", "type": "x"}]}},
    }
    event = parse_event(item)
    assert (event.change_type, event.target, event.seq) == ("renumbered", "topic", 7)
    assert event.standard_guid == "S" and event.standard_relationship == "deleted_standard"
    assert event.date_utc.year == 2017 and event.date_utc.tzinfo is not None
    assert event.raw == item  # kept whole, so a handler can dead-letter it


def test_missing_fields_raise_malformed_with_a_clear_message() -> None:
    with pytest.raises(MalformedResponseError, match="no 'attributes'"):
        parse_event({"id": "e1", "type": "events"})
    with pytest.raises(MalformedResponseError, match="'seq' is missing"):
        parse_event({"id": "e1", "attributes": {"date_utc": "2017-11-12 00:00:00", "change_type": "added",
                                                 "target": "document"}})
    with pytest.raises(MalformedResponseError, match="'status' is missing"):
        parse_standard({"id": "S1", "type": "standards", "attributes": {"guid": "S1"}})
    with pytest.raises(MalformedResponseError, match="event e2"):
        parse_event({"id": "e2", "attributes": {"seq": "not-a-number", "date_utc": "2017-11-12 00:00:00",
                                                 "change_type": "added", "target": "document"}})


# ---------------------------------------------------------------- paging


async def test_iter_standards_walks_more_than_100(ab: Sim, client: ABConnectClient) -> None:
    ab.sim.seed(SeedRequest(documents=1, standards_per_document=250, sections_per_document=2, seed=1))
    doc = next(iter(ab.sim.documents))
    ab.sim.reset_stats()
    guids = [s.guid async for s in client.iter_standards(document_guid=doc)]
    assert len(guids) == 250 == len(set(guids))
    assert guids == sorted(guids)  # sorted by GUID: stable pages while the catalogue changes
    assert ab.sim.stats()["by_resource"]["standards"] == 3  # 100 + 100 + 50
    last = await client.standards_page(document_guid=doc, offset=200)
    assert (last.total, len(last.standards), last.has_more) == (250, 50, False)
    first = await client.standards_page(document_guid=doc, limit=500)  # clamped to the cap of 100
    assert (first.limit, len(first.standards), first.has_more) == (100, 100, True)
    section = ab.sim.documents[doc].section_guids[0]
    in_section = [s async for s in client.iter_standards(section_guid=section)]
    assert len(in_section) == 125 and {s.section_guid for s in in_section} == {section}


async def test_a_walk_meets_each_standard_once_while_others_are_added_and_deleted(
    ab: Sim, client: ABConnectClient,
) -> None:
    # bench/chaos: an offset walk met one standard on two pages (one added before the offset
    # meanwhile) and the reconcile created its outcome twice; a deletion before the offset skips one.
    ab.sim.seed(SeedRequest(documents=1, standards_per_document=250, sections_per_document=2, seed=3))
    doc = next(iter(ab.sim.documents))
    before = {s.guid async for s in client.iter_standards(document_guid=doc)}
    met: list[str] = []
    deleted: set[str] = set()
    async for std in client.iter_standards(document_guid=doc):
        met.append(std.guid)
        if len(met) == 100:  # the first page is read: change the catalogue before the next request
            for guid in sorted(met)[:10]:
                ab.sim.mutate(MutateRequest(kind="delete_standard", standard_guid=guid))
                deleted.add(guid)
            ab.sim.mutate(MutateRequest(kind="add_standard", document_guid=doc, count=20, seed=5))
    assert len(met) == len(set(met)), "a standard was met twice"
    assert before - deleted <= set(met), "a standard that was there all along was skipped"
    assert met == sorted(met, key=str.lower)


async def test_events_paging_with_gaps(ab: Sim, client: ABConnectClient) -> None:
    ab.sim.seed(SeedRequest(documents=6, standards_per_document=20, sections_per_document=2, seed=3))
    ab.sim.mutate(MutateRequest(kind="random", count=40, seed=5))
    seen = []
    cursor, pages = 0, 0
    while True:
        page = await client.events(cursor, limit=7)
        pages += 1
        seen.extend(page.events)
        if page.last_seq is not None:
            cursor = page.last_seq
        if not page.has_more:
            break
    seqs = [e.seq for e in seen]
    state = ab.sim.snapshot(PARTNER)
    assert len(seqs) == state["events"] and seqs[-1] == state["max_seq"]
    assert all(b > a for a, b in itertools.pairwise(seqs))  # unique, increasing
    assert any(b - a > 1 for a, b in itertools.pairwise(seqs))  # and not contiguous
    assert pages >= len(seqs) // 7
    assert [e for e in seen[:6] if e.target == "document" and e.change_type == "added"]
    assert (await client.events(cursor)).events == []


@pytest.mark.parametrize("shape", ["object", "list", "nested"])
async def test_events_relationship_shapes(ab: Sim, client: ABConnectClient, shape: str) -> None:
    ab.sim.update_config({"relationship_shape": shape})
    std = next(s for s in ab.sim.standards.values() if s.deepest)
    ab.sim.mutate(MutateRequest(kind="modify_standard", standard_guid=std.guid))
    ab.sim.mutate(MutateRequest(kind="delete_standard", standard_guid=std.guid))
    page = await client.events(0)
    modified, deleted = page.events[-2:]
    assert (modified.change_type, modified.standard_guid, modified.standard_relationship) == (
        "modified", std.guid, "standard")
    assert modified.affected_properties[0].name == "statement.descr"
    assert (deleted.change_type, deleted.standard_guid, deleted.standard_relationship) == (
        "deleted", std.guid, "deleted_standard")
    doc_event = page.events[0]
    assert doc_event.standard_guid is None and doc_event.target == "document"


# ---------------------------------------------------------------- standards and documents


async def test_standard_fields_and_outcome_text(ab: Sim, client: ABConnectClient) -> None:
    rec = next(s for s in ab.sim.standards.values() if s.deepest)
    std = await client.standard(rec.guid.lower())  # GUID lookups are case-insensitive
    assert std.guid == rec.guid and std.document_guid == rec.document_guid
    assert std.section_guid == rec.section_guid and std.parent_guid == rec.parent_guid
    assert std.statement == rec.statement and std.number == rec.number_enhanced
    assert std.alignable and not std.deleted and std.level == 2 and std.grades
    title, description = standard_outcome_text(std)
    assert (title, description) == (rec.number_enhanced, rec.statement)
    state = {s["guid"]: s for s in ab.sim.snapshot(PARTNER)["standards"]}
    assert expected_text(state[rec.guid]) == (title, description)


async def test_deleted_standard_still_returned(ab: Sim, client: ABConnectClient) -> None:
    rec = next(s for s in ab.sim.standards.values() if s.deepest)
    ab.sim.mutate(MutateRequest(kind="delete_standard", standard_guid=rec.guid))
    std = await client.standard(rec.guid)
    assert std.deleted and std.status == "deleted" and std.date_deleted_utc is not None
    listed = {s.guid async for s in client.iter_standards(section_guid=rec.section_guid)}
    assert rec.guid not in listed  # lists exclude deleted standards by default (L13964)
    with_deleted = {s.guid async for s in client.iter_standards(section_guid=rec.section_guid,
                                                                  include_deleted=True)}
    assert rec.guid in with_deleted


async def test_undeliverable_standard_is_forbidden(ab: Sim, client: ABConnectClient) -> None:
    # The documented trap (L1139-1146): a visible change event, then the delivery is removed.
    rec = next(s for s in ab.sim.standards.values() if s.deepest)
    ab.sim.mutate(MutateRequest(kind="modify_standard", standard_guid=rec.guid))
    ab.sim.mutate(MutateRequest(kind="remove_section", section_guid=rec.section_guid))
    events = (await client.events(0)).events
    change, removal = events[-2], events[-1]
    assert (change.change_type, change.standard_guid) == ("modified", rec.guid)
    assert (removal.target, removal.change_type) == ("section", "removed")
    assert removal.section_guid == rec.section_guid
    with pytest.raises(ForbiddenError) as info:
        await client.standard(rec.guid)
    assert info.value.status == 403 and "not in your license" in str(info.value)
    with pytest.raises(NotFoundError):
        await client.standard("00000000-0000-0000-0000-000000000000")


async def test_document(ab: Sim, client: ABConnectClient) -> None:
    doc_guid = next(iter(ab.sim.documents))
    rec = ab.sim.documents[doc_guid]
    doc = await client.document(doc_guid)
    assert doc.guid == doc_guid and doc.descr == rec.descr and doc.adopt_year == rec.adopt_year
    assert [s.guid for s in doc.sections] == rec.section_guids
    assert doc.standard_count == 30 and doc.authority
    ab.sim.mutate(MutateRequest(kind="remove_document", document_guid=doc_guid, partner_id=PARTNER))
    with pytest.raises(NotFoundError):
        await client.document(doc_guid)


# ---------------------------------------------------------------- authentication


async def test_bad_signature_is_authentication_error_with_documented_body(ab: Sim) -> None:
    bad = ABConnectClient(ab.url, PARTNER, "wrong-key", bucket=TokenBucket(1e6, 1e6), http=http_settings())
    try:
        with pytest.raises(AuthenticationError) as info:
            await bad.events(0)
    finally:
        await bad.aclose()
    assert info.value.status == 401 and "signature does not match" in str(info.value)
    assert "wrong-key" not in str(info.value)  # secrets never appear in errors
    async with httpx.AsyncClient() as http:
        query = f"partner.id={PARTNER}&auth.signature=x&auth.expires=9999999999"
        resp = await http.get(f"{ab.url}/rest/v4.1/events?{query}")
    assert resp.status_code == 401 and resp.headers["content-type"] == "application/json; charset=utf-8"
    err = resp.json()["errors"][0]
    assert err["status"] == "401" and err["source"] == {"parameter": "auth.signature"}
    assert err["title"] and err["detail"]


async def test_expired_signature(ab: Sim) -> None:
    stale = ab.client(clock=lambda: time.time() - 7200, signature_ttl=3600)
    try:
        with pytest.raises(AuthenticationError, match="expired"):
            await stale.standards_page()
    finally:
        await stale.aclose()


async def test_documented_base_url_form(ab: Sim) -> None:
    full = ABConnectClient(f"{ab.url}/rest/v4.1/", PARTNER, KEY, bucket=TokenBucket(1e6, 1e6))
    try:
        assert (await full.events(0)).events
    finally:
        await full.aclose()


async def test_user_id_is_signed(ab: Sim) -> None:
    user = ab.client(user_id="teacher-7")
    try:
        assert (await user.events(0)).events
        assert "user.id=teacher-7" in user._signed_url("events", [])
    finally:
        await user.aclose()


# ---------------------------------------------------------------- rate limiting


async def test_burst_without_bucket_gets_429(ab: Sim) -> None:
    ab.sim.update_config({"rate_per_second": 5.0, "burst": 25.0})
    ab.sim.reset_buckets()
    ab.sim.reset_stats()
    guid = next(iter(ab.sim.standards))
    no_retry = ab.client(max_retries=0)
    failures: list[BaseException] = []

    async def one() -> None:
        try:
            await no_retry.standard(guid)
        except ThrottledError as exc:
            failures.append(exc)

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(one)
    finally:
        await no_retry.aclose()
    stats = ab.sim.stats()
    assert failures and stats["throttled"] == len(failures) >= 10
    assert all(isinstance(f, ThrottledError) and f.status == 429 for f in failures)


async def test_429_is_retried_until_success(ab: Sim) -> None:
    ab.sim.update_config({"rate_per_second": 20.0, "burst": 5.0, "send_retry_after": True})
    ab.sim.reset_buckets()
    ab.sim.reset_stats()
    guid = next(iter(ab.sim.standards))
    retrying = ab.client(max_retries=8, backoff=Backoff(base=0.05, cap=0.2))
    got = []

    async def one() -> None:
        got.append(await retrying.standard(guid))

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(one)
    finally:
        await retrying.aclose()
    assert len(got) == 12 and ab.sim.stats()["throttled"] > 0


async def test_retry_after_header_is_reported(ab: Sim) -> None:
    ab.sim.update_config({"rate_per_second": 0.5, "burst": 1.0, "send_retry_after": True})
    ab.sim.reset_buckets()
    c = ab.client(max_retries=0)
    try:
        await c.events(0)
        with pytest.raises(ThrottledError) as info:
            await c.events(0)
    finally:
        await c.aclose()
    assert info.value.retry_after is not None and info.value.retry_after >= 1


async def test_default_bucket_never_trips_the_server(ab: Sim) -> None:
    ab.sim.update_config({"rate_per_second": 5.0, "burst": 25.0})
    ab.sim.reset_buckets()
    ab.sim.reset_stats()
    guid = next(iter(ab.sim.standards))
    polite = ABConnectClient(ab.url, PARTNER, KEY, http=http_settings())  # default bucket: 5/s, burst 25
    assert (polite.bucket.rate, polite.bucket.burst) == (5.0, 25.0)

    async def worker(n: int) -> None:
        for _ in range(n):
            await polite.standard(guid)

    try:
        async with anyio.create_task_group() as tg:  # 35 calls from 5 concurrent workers
            for _ in range(5):
                tg.start_soon(worker, 7)
    finally:
        await polite.aclose()
    stats = ab.sim.stats()
    assert stats["by_status"] == {"200": 35} and stats["throttled"] == 0


# ---------------------------------------------------------------- server failures and bad bodies


async def test_5xx_is_retried_then_succeeds(ab: Sim, client: ABConnectClient) -> None:
    before = ab.faults.injected
    ab.faults.set(FaultConfig(error_rate=1.0, remaining=2, seed=1))
    page = await client.events(0)
    assert page.events and ab.faults.injected - before == 2


async def test_5xx_exhausts_retries(ab: Sim) -> None:
    before = ab.faults.injected
    ab.faults.set(FaultConfig(error_rate=1.0, seed=1))
    c = ab.client(max_retries=2)
    try:
        with pytest.raises(TransientUpstreamError) as info:
            await c.events(0)
    finally:
        await c.aclose()
    assert info.value.status == 500 and ab.faults.injected - before == 3


async def test_html_error_page_is_malformed(ab: Sim) -> None:
    ab.faults.set(FaultConfig(html_error_rate=1.0, seed=1))
    c = ab.client(max_retries=1)
    try:
        with pytest.raises(MalformedResponseError, match="HTML page instead of JSON") as info:
            await c.standards_page()
    finally:
        await c.aclose()
    assert info.value.status == 502


async def test_truncated_body_is_malformed(ab: Sim) -> None:
    before = ab.faults.injected
    ab.faults.set(FaultConfig(malformed_rate=1.0, seed=1))
    c = ab.client(max_retries=1)
    try:
        with pytest.raises(MalformedResponseError, match="unparseable JSON"):
            await c.events(0)
    finally:
        await c.aclose()
    assert ab.faults.injected - before == 2  # one truncated body is retried once, like any transport glitch


async def test_timeout_is_transient(ab: Sim) -> None:
    ab.faults.set(FaultConfig(timeout_rate=1.0, timeout_seconds=0.6, seed=1))
    c = ab.client(timeout=0.2, max_retries=1)
    try:
        with pytest.raises(TransientUpstreamError, match="timed out"):
            await c.events(0)
    finally:
        await c.aclose()
