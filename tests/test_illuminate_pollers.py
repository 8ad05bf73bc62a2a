"""Illuminate pollers against the real broker and the Illuminate simulator: snapshot diff per
entity (upserts, confirmed deletes, the mass-deletion guard), ``modified_after`` scores with
overlap and reconciliation, crash safety under SIGKILL, and upstream failures."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import ValidationError

from schemas.envelope import CloudEvent
from schemas.illuminate import DELETED, ENTITY_KIND, UPSERT_PAYLOADS, UPSERTED, DeletedV1, StudentUpsertedV1
from simulators.illuminate import DEFAULT_CREDENTIALS, IlluminateSimulator
from tests.http_settings import http_settings
from tests.kafka_tools import read_topic
from worker.clients.errors import AuthenticationError, MalformedResponseError, TransientUpstreamError, UpstreamError
from worker.clients.illuminate import IlluminateClient, OAuth1Signer, ScoreEndpoint
from worker.components import poller_transactional_id
from worker.flows import event_types
from worker.flows.illuminate_changes import ILLUMINATE_CHANGES, IlluminateChangesSettings
from worker.kafka.producer import Transaction, TransactionalProducer
from worker.poller_frame import Poller, PollerRunner, cursor_key
from worker.pollers.illuminate_wiring import illuminate_pollers
from worker.pollers.snapshot_diff import DeletionGuard
from worker.pollers.snapshot_store import Section, Seen, SnapshotStore, walk_tag
from worker.state_store import StateStore
from worker.topics import CURSORS, ILLUMINATE_ASSESSMENT_SCORES, all_topics, ensure_topics, illuminate_topic

pytestmark = pytest.mark.anyio

C = DEFAULT_CREDENTIALS
CLOCK = "2024-02-01"
SOURCE = "illuminate:test/live"
ENTITIES = ("students", "staff", "sections", "rosters", "enrollments", "courses", "terms")
SMALL = {"sites": 3, "students": 400, "staff": 30, "courses": 12, "sections_per_course": 3,
         "students_per_section": 20, "assessments": 4, "seed": 5}


# -- the simulator ---------------------------------------------------------------------------------


class Sim:
    """The simulator on loopback: control API and clients."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"/_sim/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self, **config: Any) -> None:
        response = self.http.put("/_sim/faults", json=config)
        assert response.status_code == 200, response.text

    def today(self) -> date:
        return date.fromisoformat(self.http.get("/_sim/clock").json()["date"])

    def counts(self) -> dict[str, int]:
        return dict(self.http.get("/_sim/state").json()["counts"])

    def client(self, page_limit: int = 1000) -> IlluminateClient:
        return IlluminateClient(
            f"{self.url}/live/rest_server.php", C.consumer_key, C.consumer_secret, C.token, C.token_secret,
            page_limit=page_limit, students2_page_limit=page_limit if page_limit < 1000 else 5000,
            http=http_settings(max_retries=1),
        )

    def config(self, **overrides: Any) -> IlluminateChangesSettings:
        return IlluminateChangesSettings(**overrides)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from worker.asgi_server import ThreadedServer

    with ThreadedServer(IlluminateSimulator().app) as srv:
        yield srv.url


@pytest.fixture
def sim(server: str) -> Iterator[Sim]:
    s = Sim(server)
    s.control("reset")
    s.control("clock", {"date": CLOCK})
    yield s
    s.http.close()


@pytest.fixture
async def topics(kafka_bootstrap: str) -> str:
    await ensure_topics(kafka_bootstrap, all_topics(ILLUMINATE_CHANGES.topics))
    return kafka_bootstrap


# -- running pollers in-process ---------------------------------------------------------------------


@dataclass
class Cycle:
    """What one poller published until it went idle."""

    events: list[CloudEvent] = field(default_factory=list)
    cursor: Any = None

    def subjects(self, suffix: str) -> set[str]:
        return {e.subject.split("/", 2)[2] for e in self.events if e.type.endswith(suffix)}

    @property
    def upserted(self) -> set[str]:
        return self.subjects(".upserted.v1")

    @property
    def deleted(self) -> set[str]:
        return self.subjects(".deleted.v1")


class Harness:
    """One tenant's Illuminate pollers, each with its own transactional producer."""

    def __init__(
        self, bootstrap: str, tenant: str, sim: Sim, client: IlluminateClient, cfg: IlluminateChangesSettings,
    ) -> None:
        self.bootstrap, self.tenant, self.sim = bootstrap, tenant, sim
        self.store = SnapshotStore(bootstrap, tenant)
        self.pollers: dict[str, Poller] = {
            p.name: p for p in illuminate_pollers(tenant, cfg, client, self.store, source=SOURCE, today=sim.today)
        }
        self.cursors = StateStore(bootstrap, CURSORS)
        self.runners: dict[str, PollerRunner] = {}
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Harness:
        await self.cursors.restore()
        for name, poller in self.pollers.items():
            producer = await self._stack.enter_async_context(
                TransactionalProducer(self.bootstrap, poller_transactional_id(self.tenant, name)))
            self.runners[name] = PollerRunner(poller, producer, self.cursors, interval=0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def cycle(self, name: str, max_polls: int = 10_000) -> Cycle:
        """Poll until the poller goes idle (a complete walk, or a complete reconciliation)."""
        out = Cycle()
        for _ in range(max_polls):
            result = await self.runners[name].run_once()
            out.events += [o.event for o in result.events]
            out.cursor = result.cursor
            if not result.more:
                return out
        raise AssertionError(f"{name} did not finish in {max_polls} polls")

    def cursor(self, name: str) -> Any:
        return self.cursors.get(cursor_key(self.tenant, name))


@pytest.fixture
async def harness_factory(topics: str, sim: Sim, unique: str) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:
        async def make(tenant: str | None = None, page_limit: int = 1000, **cfg: Any) -> Harness:
            client = await stack.enter_async_context(sim.client(page_limit=page_limit))
            return await stack.enter_async_context(
                Harness(topics, tenant or f"t{unique}", sim, client, sim.config(**cfg)))
        yield make


async def tenant_events(bootstrap: str, topic: str, tenant: str) -> list[CloudEvent]:
    """Every committed event of ``tenant`` on ``topic``."""
    out = []
    for record in await read_topic(bootstrap, topic):
        event = CloudEvent.from_bytes(record.value)
        if event.tenant == tenant:
            out.append(event)
    return out


def held_gauge(tenant: str, poller: str) -> float | None:
    return REGISTRY.get_sample_value("edusync_snapshot_deletions_held", {"tenant": tenant, "poller": poller})


def merge_changes(changes: list[dict[str, Any]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The final operation per key over several /_sim/mutate answers: (upserted, deleted) by entity."""
    final: dict[str, dict[str, str]] = {}
    for change in changes:
        for bucket, op in (("upserted", "up"), ("deleted", "down")):
            for entity, keys in change[bucket].items():
                for key in keys:
                    final.setdefault(entity, {})[key] = op
    up = {e: {k for k, op in ops.items() if op == "up"} for e, ops in final.items()}
    down = {e: {k for k, op in ops.items() if op == "down"} for e, ops in final.items()}
    return up, down


# -- pure logic -------------------------------------------------------------------------------------


def test_section_tracks_changes_and_unseen_keys_per_walk() -> None:
    section = Section("student")
    first, second = walk_tag(1), walk_tag(2)
    assert section.observe("1", 10, first).seen is Seen.NEW
    assert section.observe("2", 20, first).seen is Seen.NEW
    assert section.observe("1", 10, first).duplicate
    assert section.observe("1", 11, second).seen is Seen.CHANGED
    assert section.unseen(second) == ["2"]
    section.apply("2", {"hash": f"{20:016x}", "pending": True})
    section.mark_handled("2", second)
    assert section.is_pending("2") and section.unseen(second) == []
    revived = section.observe("2", 20, walk_tag(3))
    assert revived.seen is Seen.REVIVED and not section.is_pending("2")


def test_a_record_dropped_and_recreated_or_changed_back_is_a_new_event_id_and_a_retried_walk_the_same() -> None:
    from datetime import UTC, datetime

    from worker.clients.illuminate_models import RosterRow
    from worker.pollers.snapshot_diff import Differ

    def differ() -> Differ:
        d = Differ(tenant="t1", source="/illuminate/t1", kind="roster", topic=illuminate_topic("rosters"),
                   store=SnapshotStore("127.0.0.1:1", "t1"), detector="snapshot_diff")
        d.section = Section("roster")
        return d

    row, now = RosterRow(student_id="7", section_id="30"), datetime.now(UTC)
    d = differ()
    first = d.page([row], walk_tag(1), "walk 1", now, walk=1).events
    d.page([], walk_tag(2), "walk 2", now, walk=2)
    d.settle([row.natural_key()], walk_tag(2), 2, "walk 2", now)  # missing once: pending
    dropped = d.settle([row.natural_key()], walk_tag(3), 3, "walk 3", now).events  # twice: deleted
    again = d.page([row], walk_tag(4), "walk 4", now, walk=4).events
    assert len(first) == len(dropped) == len(again) == 1
    assert len({first[0].event.id, dropped[0].event.id, again[0].event.id}) == 3, "a re-enrolment is news"
    # A retry of walk 4 (the transaction failed; the section is read again) makes the same id.
    retry = differ()
    retry.page([row], walk_tag(1), "walk 1", now, walk=1)
    assert retry.section is not None
    retry.section.apply(row.natural_key(), None)
    assert retry.page([row], walk_tag(4), "walk 4 again", now, walk=4).events[0].event.id == again[0].event.id
    # A change, its undoing and the same change again: three events, three ids.
    moved = RosterRow(student_id="7", section_id="30", leave_date="2026-06-01")
    flips = [d.page([r], walk_tag(w), f"walk {w}", now, walk=w).events for w, r in ((5, moved), (6, row), (7, moved))]
    assert len({f[0].event.id for f in flips}) == 3


def test_deletion_guard_holds_only_large_shares_beyond_the_floor() -> None:
    guard = DeletionGuard(max_share=0.1, min_count=10)
    assert not guard.holds(10, 20)  # at or under the floor: always allowed (tiny entities)
    assert not guard.holds(100, 1000)
    assert guard.holds(101, 1000)


def test_config_validates_guard_and_time_zone() -> None:
    assert IlluminateChangesSettings().max_delete_share == 0.1
    for bad in ({"max_delete_share": 0}, {"max_delete_share": 1.5}, {"district_timezone": "Mars/Olympus"},
                {"snapshot_entities": ["students", "students"]}, {"session_start": "2024-01-01"}):
        with pytest.raises(ValidationError):
            IlluminateChangesSettings(**bad)


def test_every_kind_has_registered_upsert_and_delete_types() -> None:
    registered = event_types()
    for kind, payload in UPSERT_PAYLOADS.items():
        assert registered[UPSERTED[kind]] is payload
        assert registered[DELETED[kind]] is DeletedV1
    assert set(ENTITY_KIND) == set(ENTITIES)


# -- snapshot diff ----------------------------------------------------------------------------------


async def test_first_run_publishes_one_upsert_per_record_and_a_second_run_nothing(
    sim: Sim, harness_factory: Any, topics: str, unique: str,
) -> None:
    seeded = sim.control("seed", {"sites": 4, "students": 20_000, "staff": 200, "courses": 40,
                                  "sections_per_course": 5, "students_per_section": 30, "assessments": 0,
                                  "seed": 11})["counts"]
    h = await harness_factory()
    for entity in ENTITIES:
        first = await h.cycle(f"illuminate.{entity}")
        assert len(first.events) == len(first.upserted) == seeded[entity], entity
        assert not first.deleted
    for entity in ENTITIES:
        assert (await h.cycle(f"illuminate.{entity}")).events == [], f"{entity}: second run published changes"

    # What Kafka holds: exactly one upsert per record, ids unique, payloads valid.
    students = await tenant_events(topics, illuminate_topic("students"), h.tenant)
    assert len(students) == seeded["students"] == 20_000
    assert len({e.id for e in students}) == len({e.subject for e in students}) == 20_000
    sample = students[0].payload(StudentUpsertedV1)
    assert students[0].subject == f"{h.tenant}/student/{sample.natural_key}" and sample.previous_hash is None
    for entity in ENTITIES:
        events = await tenant_events(topics, illuminate_topic(entity), h.tenant)
        assert Counter(e.subject for e in events).most_common(1)[0][1] == 1, entity
        assert len(events) == seeded[entity], entity
    # Roster and section-teacher rows are keyed by their section (FLOWS.md decision 4); everything
    # else by its subject.
    for entity in ("rosters", "sections"):
        rows = await tenant_events(topics, illuminate_topic(entity), h.tenant)
        section_of = {e.subject: e.subject.split("/")[2] for e in rows}
        assert all(e.key() == f"{h.tenant}/section/{section_of[e.subject]}".encode() for e in rows), entity
    assert all(e.key() == e.subject.encode() for e in students)

    # A restarted worker restores the snapshot from Kafka and still publishes nothing.
    restarted = await harness_factory(tenant=h.tenant)
    for entity in ENTITIES:
        assert (await restarted.cycle(f"illuminate.{entity}")).events == [], entity
    assert len(restarted.store) == sum(seeded[e] for e in ENTITIES)


async def test_each_mutation_produces_exactly_the_expected_events(sim: Sim, harness_factory: Any) -> None:
    sim.control("seed", SMALL)
    h = await harness_factory(page_limit=100)
    baseline = {e: (await h.cycle(f"illuminate.{e}")).upserted for e in ENTITIES}
    script = [("enrol", 3, None), ("drop", 3, "hard"), ("drop", 2, "soft"), ("transfer", 2, None),
              ("rename", 3, None), ("new_staff", 2, None), ("departed_staff", 2, "soft"),
              ("departed_staff", 1, "hard"), ("withdraw", 2, None)]
    changes = [sim.control("mutate", {"kind": k, "count": n, "mode": m, "seed": i})
               for i, (k, n, m) in enumerate(script)]
    upserted, deleted = merge_changes(changes)
    assert upserted.get("rosters") and deleted.get("students") and deleted.get("staff")  # the script did bite

    for entity in ENTITIES:
        name = f"illuminate.{entity}"
        expected_deletes = deleted.get(entity, set()) & baseline[entity]
        first = await h.cycle(name)
        assert first.upserted == upserted.get(entity, set()), entity
        assert first.deleted == set(), f"{entity}: deleted before a second snapshot confirmed it"
        second = await h.cycle(name)
        assert second.upserted == set(), entity
        assert second.deleted == expected_deletes, entity
        assert (await h.cycle(name)).events == [], entity
        for event in second.events:
            assert event.payload(DeletedV1).detected_by == "snapshot_diff"


async def test_mass_deletion_is_held_back_until_the_share_is_raised(sim: Sim, harness_factory: Any) -> None:
    sim.control("seed", {**SMALL, "students": 300, "assessments": 0})
    h = await harness_factory(snapshot_entities=["students"], score_endpoints=[], max_delete_share=0.1)
    name = "illuminate.students"
    await h.cycle(name)
    gone = set(sim.control("mutate", {"kind": "withdraw", "count": 60, "seed": 3})["deleted"]["students"])
    with structlog.testing.capture_logs() as logs:
        held = await h.cycle(name)
        again = await h.cycle(name)
    assert held.events == [] and again.events == []
    assert held_gauge(h.tenant, name) == 60 and h.cursor(name)["held"] == 60
    warnings = [e for e in logs if e["event"].startswith("mass deletion held back")]
    assert warnings and warnings[0]["missing"] == 60 and warnings[0]["log_level"] == "warning"
    assert not any(v.get("pending") for _, v in h.store.items(f"{h.tenant}/student/"))

    # An operator raises the share: the next walk marks them pending, the one after deletes them.
    raised = await harness_factory(tenant=h.tenant, snapshot_entities=["students"], score_endpoints=[],
                                   max_delete_share=0.5)
    marked = await raised.cycle(name)
    assert marked.events == [] and held_gauge(h.tenant, name) == 0
    confirmed = await raised.cycle(name)
    assert confirmed.deleted == gone and confirmed.upserted == set()


async def test_today_scope_turns_an_end_dated_roster_row_into_a_confirmed_delete(
    sim: Sim, harness_factory: Any,
) -> None:
    sim.control("seed", {**SMALL, "assessments": 0})
    h = await harness_factory(snapshot_entities=["rosters"], score_endpoints=[], snapshot_scope="today")
    await h.cycle("illuminate.rosters")
    dropped = set(sim.control("mutate", {"kind": "drop", "count": 2, "mode": "soft", "seed": 4})["upserted"]["rosters"])
    assert (await h.cycle("illuminate.rosters")).events == []
    assert (await h.cycle("illuminate.rosters")).deleted == dropped


# -- assessment scores ------------------------------------------------------------------------------


async def test_scores_publish_only_real_changes_and_the_overlap_day_publishes_nothing(
    sim: Sim, harness_factory: Any, topics: str,
) -> None:
    counts = sim.control("seed", SMALL)["counts"]
    endpoints = ["AssessmentAggregateStudentResponses", "AssessmentAggregateStudentResponsesGroup"]
    h = await harness_factory(snapshot_entities=[], score_endpoints=endpoints, scores_reconcile_every=50)
    agg, group = "illuminate.scores.aggregate", "illuminate.scores.group"
    first = await h.cycle(agg)  # no watermark yet: a full reconciliation is the initial load
    assert len(first.upserted) == len(first.events) == counts["assessment_scores"]
    assert len((await h.cycle(group)).upserted) == 2 * counts["assessment_scores"]
    assert h.cursor(agg)["watermark"] == CLOCK

    changed = sim.control("mutate", {"kind": "changed_scores", "count": 5, "seed": 8})
    update = await h.cycle(agg)
    assert update.upserted == set(changed["upserted"]["assessment_scores"])
    assert h.cursor(agg)["modified_after"] == "2024-01-31"
    # Every group row of a re-graded score matches modified_after; only those whose share changed go out.
    assert (await h.cycle(group)).upserted == set(changed["upserted"]["assessment_scores_group"])

    # The same day and the next: modified_after still re-delivers today's rows, unchanged.
    async with sim.client() as client:
        redelivered = 0
        async for page in client.assessment_scores(ScoreEndpoint.AGGREGATE, modified_after=date(2024, 1, 31)):
            redelivered += len(page.records)
    assert redelivered >= 5
    assert (await h.cycle(agg)).events == [] and (await h.cycle(group)).events == []
    sim.control("clock", {"advance_days": 1})
    assert (await h.cycle(agg)).events == []
    assert h.cursor(agg)["watermark"] == "2024-02-02"

    on_topic = [e for e in await tenant_events(topics, ILLUMINATE_ASSESSMENT_SCORES, h.tenant)
                if e.type == UPSERTED["assessment_score"]]
    assert len(on_topic) == counts["assessment_scores"] + 5
    assert on_topic[-1].subject.startswith(f"{h.tenant}/assessment_score/")


async def test_score_watermark_moves_only_after_every_page_of_a_walk(sim: Sim, harness_factory: Any) -> None:
    sim.control("seed", SMALL)
    h = await harness_factory(snapshot_entities=[], page_limit=10)
    name = "illuminate.scores.aggregate"
    await h.cycle(name)
    sim.control("clock", {"advance_days": 2})
    upserted, _ = merge_changes([sim.control("mutate", {"kind": "new_scores", "count": 5, "seed": 1}),
                                 sim.control("mutate", {"kind": "changed_scores", "count": 25, "seed": 2})])
    runner = h.runners[name]
    first_page = await runner.run_once()
    assert first_page.more and first_page.events
    sim.faults(error_rate=1.0, remaining=2)
    with pytest.raises(TransientUpstreamError):
        await runner.run_once()
    assert h.cursor(name)["watermark"] == CLOCK and h.cursor(name)["phase"] == "incremental"
    sim.faults()
    rest = await h.cycle(name)  # the walk starts again from page 1; page 1's rows are already stored
    on_page_one = {o.event.subject.split("/", 2)[2] for o in first_page.events}
    assert on_page_one | rest.upserted == upserted["assessment_scores"]
    assert not on_page_one & rest.upserted
    assert h.cursor(name)["watermark"] == "2024-02-03"


async def test_score_reconciliation_finds_deleted_scores_after_confirmation(sim: Sim, harness_factory: Any) -> None:
    sim.control("seed", SMALL)
    h = await harness_factory(snapshot_entities=[], scores_reconcile_every=1)
    name = "illuminate.scores.aggregate"
    await h.cycle(name)
    gone = set(sim.control("mutate", {"kind": "deleted_scores", "count": 3, "seed": 9})["deleted"]["assessment_scores"])
    incremental = await h.cycle(name)
    assert incremental.events == [] and h.cursor(name)["since_reconcile"] == 1
    full = await h.cycle(name)  # full reconciliation: marks them pending, schedules a confirmation
    assert full.events == [] and h.cursor(name)["confirm"]
    assert set(h.cursor(name)["confirm"]) == {k.split("/")[0] for k in gone}
    confirmation = await h.cycle(name)
    assert confirmation.deleted == gone and confirmation.upserted == set()
    assert all(e.payload(DeletedV1).detected_by == "score_reconciliation" for e in confirmation.events)
    assert h.cursor(name)["confirm"] == []
    assert (await h.cycle(name)).events == []


# -- crash safety -----------------------------------------------------------------------------------


def _app(bootstrap: str, sim: Sim, tenant: str, until: int, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.illuminate_poller_app", "--bootstrap", bootstrap, "--base-url", sim.url,
           "--tenant", tenant, "--entity", "students", "--page-limit", "50", "--until-walks", str(until)]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes], code: int) -> None:
    rc = proc.wait(timeout=180)
    assert rc == code, (proc.stderr.read().decode()[-3000:] if proc.stderr else "")


async def test_sigkill_mid_first_snapshot_loses_nothing_and_publishes_nothing_twice(
    sim: Sim, topics: str, unique: str,
) -> None:
    sim.control("seed", {**SMALL, "students": 1000, "assessments": 0})
    tenant = f"t{unique}"
    _finish(_app(topics, sim, tenant, 1, "mid_send:450"), -signal.SIGKILL)  # 50 events + 50 hashes a page
    _finish(_app(topics, sim, tenant, 1), 0)
    events = await tenant_events(topics, illuminate_topic("students"), tenant)
    assert len(events) == 1000
    assert len({e.subject for e in events}) == len({e.id for e in events}) == 1000


@pytest.mark.parametrize("kill_at", ["before_commit:9", "before_commit:22", "before_commit:44"])
async def test_sigkill_during_changes_and_deletions_loses_nothing_and_publishes_nothing_twice(
    sim: Sim, topics: str, unique: str, kill_at: str,
) -> None:
    # 1000 students at 50 a page: 20 pages a walk. After the mutations a walk has 21 pages, then
    # one settle transaction: 9 is mid-walk, 22 the settle that marks pending, 44 the deletions'.
    sim.control("seed", {**SMALL, "students": 1000, "assessments": 0})
    tenant = f"t{unique}"
    _finish(_app(topics, sim, tenant, 1), 0)
    before = {e.id for e in await tenant_events(topics, illuminate_topic("students"), tenant)}
    changes = [sim.control("mutate", {"kind": "rename", "count": 25, "seed": 1}),
               sim.control("mutate", {"kind": "enrol", "count": 8, "seed": 2}),
               sim.control("mutate", {"kind": "withdraw", "count": 6, "seed": 3})]
    upserted, deleted = merge_changes(changes)
    _finish(_app(topics, sim, tenant, 3, kill_at), -signal.SIGKILL)
    _finish(_app(topics, sim, tenant, 3), 0)
    events = [e for e in await tenant_events(topics, illuminate_topic("students"), tenant) if e.id not in before]
    ups = Counter(e.subject.split("/", 2)[2] for e in events if e.type == UPSERTED["student"])
    downs = Counter(e.subject.split("/", 2)[2] for e in events if e.type == DELETED["student"])
    assert set(ups) == upserted["students"] and max(ups.values()) == 1
    assert set(downs) == deleted["students"] and max(downs.values()) == 1


class FailingProducer(TransactionalProducer):
    """Aborts its ``fail_at``-th transaction with an error, as a broker failure at commit would."""

    fail_at = 0
    count = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with super().transaction() as txn:
            yield txn
            self.count += 1
            if self.count == self.fail_at:
                raise RuntimeError("simulated failure before commit")


async def test_failed_transaction_reloads_the_snapshot_and_loses_nothing(
    sim: Sim, topics: str, unique: str,
) -> None:
    sim.control("seed", {**SMALL, "students": 300, "assessments": 0})
    tenant = f"t{unique}"
    async with sim.client(page_limit=50) as client:
        store = SnapshotStore(topics, tenant)
        [poller] = illuminate_pollers(tenant, sim.config(snapshot_entities=["students"], score_endpoints=[]),
                                      client, store, source=SOURCE)
        txn_id = poller_transactional_id(tenant, poller.name)
        cursors = StateStore(topics, CURSORS)
        await cursors.restore()
        async with FailingProducer(topics, txn_id) as failing:
            failing.fail_at = 3
            runner = PollerRunner(poller, failing, cursors)
            with pytest.raises(RuntimeError):
                while True:
                    await runner.run_once()
        # The supervisor restarts the component: fresh cursors and producer, the same poller object.
        cursors = StateStore(topics, CURSORS)
        await cursors.restore()
        async with TransactionalProducer(topics, txn_id) as producer:
            runner = PollerRunner(poller, producer, cursors)
            while (await runner.run_once()).more:
                pass
    events = await tenant_events(topics, illuminate_topic("students"), tenant)
    assert len(events) == len({e.subject for e in events}) == 300


# -- upstream failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["bad_signature", "server_error", "truncated_page", "shifted_totals"])
async def test_upstream_failure_mid_walk_is_a_clear_error_and_never_a_false_delete(
    sim: Sim, harness_factory: Any, fault: str,
) -> None:
    sim.control("seed", {**SMALL, "students": 300, "assessments": 0})
    h = await harness_factory(snapshot_entities=["students"], score_endpoints=[], page_limit=50)
    name = "illuminate.students"
    await h.cycle(name)
    runner = h.runners[name]
    await runner.run_once()  # page 1 of the second walk
    committed = h.cursor(name)
    enrolled: set[str] = set()
    expected: tuple[type[UpstreamError], str]
    if fault == "bad_signature":
        good = h.pollers[name].client._signer  # type: ignore[attr-defined]
        h.pollers[name].client._signer = OAuth1Signer(C.consumer_key, "wrong-secret", C.token, C.token_secret)  # type: ignore[attr-defined]
        expected = (AuthenticationError, "HTTP 401: credentials rejected")
    elif fault == "server_error":
        sim.faults(error_rate=1.0, remaining=2)
        expected = (TransientUpstreamError, "HTTP 500: server error")
    elif fault == "truncated_page":
        sim.faults(malformed_rate=1.0, remaining=2)
        expected = (MalformedResponseError, "unparseable JSON")
    else:
        enrolled = set(sim.control("mutate", {"kind": "enrol", "count": 1, "seed": 6})["upserted"]["students"])
        expected = (MalformedResponseError, "totals shifted mid-walk")
    with pytest.raises(UpstreamError) as err:
        await runner.run_once()
    assert isinstance(err.value, expected[0]) and expected[1] in str(err.value)
    assert h.cursor(name) == committed  # nothing committed for the failed page

    if fault == "bad_signature":
        h.pollers[name].client._signer = good  # type: ignore[attr-defined]
    sim.faults()
    restarted = await h.cycle(name)  # a new walk from page 1, then one more to confirm
    confirmed = await h.cycle(name)
    assert restarted.deleted == confirmed.deleted == set()
    assert restarted.upserted == enrolled and confirmed.events == []
    assert not any(v.get("pending") for _, v in h.store.items(f"{h.tenant}/student/"))
