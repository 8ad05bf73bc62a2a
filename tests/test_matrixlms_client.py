"""MatrixLMSClient against the MatrixLMS simulator over real loopback HTTP (no mocks), plus
property tests of its pure parts (response parsers, argument encoding, the site budget) and the
``matrixlms`` configuration section.

The rate-limit test runs the client's budget on the simulator's own clock (frozen, moved by
``advance``), so it asserts simulated seconds, never real timings.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.illuminate_snapshot import district_spec
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec as DistrictSpec
from simulators.matrixlms import DEMO_API_KEY, RATE_LIMIT_MESSAGE, KeyGrant, MatrixSimulator, SeedSpec, create_app
from simulators.options import SimulateOptions
from simulators.serve_all import simulator_factory
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from worker.clients.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConflictError,
    MalformedResponseError,
    PermanentUpstreamError,
    ThrottledError,
    UpstreamError,
)
from worker.clients.matrixlms import ClassAttributes, GradeEntry, MatrixLMSClient, UserAttributes
from worker.clients.matrixlms_args import chunk_by_url, encode_pairs, query_string
from worker.clients.matrixlms_budget import BudgetClock, BudgetRegistry, SiteBudget
from worker.clients.matrixlms_models import (
    parse_ack,
    parse_assignments,
    parse_classes,
    parse_count,
    parse_grades,
    parse_id,
    parse_students,
    parse_teachers,
    parse_user_ref,
    parse_users,
    parse_version,
)
from worker.config import ConfigError, load_config
from worker.errors import Verdict, classify
from worker.logs import configure_logging
from worker.redaction import redact
from worker.registry import ClientPool
from worker.systems.matrixlms import MATRIXLMS, MatrixLMSConfig

pytestmark = [pytest.mark.anyio, pytest.mark.slow(30)]

OTHER_KEY = "99-10-abcdef0123"  # a second administrator key of the same site


@pytest.fixture(scope="module")
def sim() -> MatrixSimulator:
    return MatrixSimulator(keys={DEMO_API_KEY: KeyGrant(), OTHER_KEY: KeyGrant()})


@pytest.fixture(scope="module")
def server(sim: MatrixSimulator) -> Iterator[str]:
    with ThreadedServer(create_app(sim)) as srv:
        yield srv.url


@pytest.fixture
def url(sim: MatrixSimulator, server: str) -> str:
    sim.reset()
    return server


@pytest.fixture
def unlimited(sim: MatrixSimulator, url: str) -> str:
    """The simulator without its rate limit, for tests that make more than 120 calls."""
    sim.configure({"rate_limit": {"enabled": False}})
    return url


def client(url: str, *, key: str = DEMO_API_KEY, budget: SiteBudget | None = None, max_retries: int = 3,
           **kwargs: Any) -> MatrixLMSClient:
    """A client with its own budget (not the process-wide one, so tests do not share it)."""
    return MatrixLMSClient(url, key, http=http_settings(max_retries, timeout=5.0),
                           budget=budget or SiteBudget(limit=100_000), **kwargs)


def faults(url: str, **config: Any) -> None:
    httpx.put(url + "/_sim/faults", json=config).raise_for_status()


def site_stats(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(url + "/_sim/stats", params={"site": "demo"}).json()["sites"]["demo"]
    return stats


def counts(sim: MatrixSimulator) -> dict[str, int]:
    return sim.snapshot("demo", counts_only=True)["sites"]["demo"]["counts"]  # type: ignore[no-any-return]


def sim_clock(sim: MatrixSimulator, sleeping: anyio.Event | None = None) -> BudgetClock:
    """The client's budget clock read from the simulator's clock: a sleep lasts until the
    simulator's time (frozen, scaled or advanced by the test) has moved on that far, and sets
    ``sleeping`` when it starts."""

    async def sleep(seconds: float) -> None:
        if sleeping is not None:
            sleeping.set()
        target = sim.clock.now() + seconds
        while sim.clock.now() < target:  # noqa: ASYNC110  (the simulator's clock has no event to wait for)
            await anyio.sleep(0.002)

    return BudgetClock(now=sim.clock.now, sleep=sleep)


# --- the rate limit, the lockout and the pause ----------------------------------------------


async def test_121st_call_is_throttled_and_the_client_pauses_the_whole_site_for_65_s(
    sim: MatrixSimulator, url: str,
) -> None:
    # seed 000:L23. The budget is raised above 120 to provoke the exception; the simulator's
    # clock is frozen, so the 121 calls fall in one simulated instant.
    sim.clock.set_scale(0)
    budget = SiteBudget(limit=1000, clock=sim_clock(sim))
    async with client(url, budget=budget, max_retries=0) as c, client(url, key=OTHER_KEY, budget=budget) as other:
        for _ in range(120):
            assert await c.get_version() == 1
        throttled_at = sim.clock.now()
        with pytest.raises(ThrottledError) as info:
            await c.get_version()
        assert info.value.status == 400 and RATE_LIMIT_MESSAGE in str(info.value)  # a 400, known by its message
        assert classify(info.value) is Verdict.RETRY, "throttling is retried, never dead-lettered"
        assert budget.stats.lockouts == 1 and budget.paused_until == pytest.approx(throttled_at + 65)

        # The simulator refuses every call for the next 60 s, whatever the key.
        for step in (0.0, 30.0, 29.9):
            sim.clock.advance(step)
            probe = httpx.get(url + "/api/get_version", params={"api_key": OTHER_KEY})
            assert (probe.status_code, probe.json()) == (400, {"message": RATE_LIMIT_MESSAGE})
        stats = site_stats(url)
        assert len(stats["lockouts"]) == 1 and stats["lockouts"][0]["seconds"] == 60
        sent = stats["calls"]

        # Both clients of the site wait; nothing reaches the simulator until 65 s have passed.
        answers: list[int] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_version_into, c, answers)
            tg.start_soon(_version_into, other, answers)
            sim.clock.advance(64.9 - 59.9)  # 64.9 s after the exception, the simulator's lockout long over
            await anyio.sleep(0.3)
            assert answers == [] and site_stats(url)["calls"] == sent, "a call was sent during the pause"
            sim.clock.advance(0.2)
        assert answers == [1, 1]
        assert site_stats(url)["calls"] == sent + 2 and site_stats(url)["refused"] == 1 + 3


async def _version_into(c: MatrixLMSClient, answers: list[int]) -> None:
    with anyio.fail_after(10):
        answers.append(await c.get_version())


async def test_a_throttled_call_is_retried_after_the_pause(sim: MatrixSimulator, url: str) -> None:
    # With retries on (the default), the caller never sees the exception: the retry waits out
    # the pause in the budget and then succeeds.
    sim.clock.set_scale(0)
    sim.configure({"rate_limit": {"limit": 3}})
    paused = anyio.Event()
    budget = SiteBudget(limit=10, clock=sim_clock(sim, sleeping=paused))
    done: list[int] = []
    async with client(url, budget=budget) as c:
        for _ in range(3):
            await c.get_version()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_version_into, c, done)
            with anyio.fail_after(10):
                await paused.wait()  # the fourth call was refused and its retry waits out the pause
            assert budget.stats.lockouts == 1
            sim.clock.advance(65.5)
    assert done == [1] and site_stats(url)["refused"] == 1


def test_budget_is_shared_per_site_and_divided_between_replicas() -> None:
    registry = BudgetRegistry()
    a = registry.get("https://District.matrixlms.com/", limit=50)
    assert registry.get("https://district.matrixlms.com", limit=50) is a, "one budget per site, every key"
    assert registry.get("https://other.matrixlms.com", limit=50) is not a
    registry.get("https://district.matrixlms.com", limit=30)
    assert a.limit == 30, "two configurations of one site: the stricter wins"

    def config(key: str, **kw: Any) -> MatrixLMSConfig:
        return MatrixLMSConfig.model_validate({"base_url": "http://replicas.matrixlms.test", "api_key": key, **kw})

    pool = ClientPool()
    first = pool.get(MATRIXLMS, config("key-one-1234", replicas=2))
    second = pool.get(MATRIXLMS, config("key-two-5678", replicas=2))
    assert first is not second and len(pool) == 2, "one client per key"
    assert first.budget is second.budget and first.budget.limit == 50, "100 a minute over 2 replicas"
    assert pool.get(MATRIXLMS, config("key-one-1234", replicas=2)) is first
    anyio.run(pool.aclose)


class ManualClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await anyio.lowlevel.checkpoint()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3), st.floats(0, 1), st.floats(0, 5)), min_size=1, max_size=60),
       st.integers(1, 6))
def test_no_rolling_window_on_the_servers_clock_holds_more_than_the_budget(
    calls: list[tuple[float, float, float]], limit: int,
) -> None:
    # Each call: (think time before it, where in its flight the server counts it, its latency).
    # The server counts a call somewhere between sending and answer; the budget dates each slot
    # by its answer, so no 60 s window of server arrivals holds more than ``limit``.
    clock = ManualClock()
    budget = SiteBudget(limit=limit, window=60.0, clock=BudgetClock(now=clock.now, sleep=clock.sleep))
    arrivals: list[float] = []

    async def run() -> None:
        for think, share, latency in calls:
            await clock.sleep(think)
            await budget.acquire()
            arrivals.append(clock.t + share * latency)
            clock.t += latency
            budget.settle()

    anyio.run(run)
    for i, start in enumerate(arrivals):
        assert sum(1 for t in arrivals[i:] if t < start + 60.0) <= limit


class MovableShare:
    """A site's share whose spenders a test can change."""

    epoch = 0

    def of(self, amount: float) -> float:
        return amount


def test_a_site_that_moved_here_is_spent_at_the_sustained_rate_not_in_a_burst() -> None:
    # The replica that had the site may have spent its whole window just now; the site still
    # counts those calls, so the new owner must not fire a window's worth at once.
    clock, share = ManualClock(), MovableShare()
    budget = SiteBudget(limit=60, window=60.0, clock=BudgetClock(now=clock.now, sleep=clock.sleep), share=share)

    async def calls(n: int) -> float:
        start = clock.t
        for _ in range(n):
            await budget.acquire()
            budget.settle()
        return clock.t - start

    assert anyio.run(calls, 10) == 0.0, "a budget that stayed put spends its window at once"
    share.epoch += 1
    spent = anyio.run(calls, 10)
    assert 9.0 <= spent <= 11.0, f"one call a second (60 a minute) after the move, took {spent} s"


# --- users: the upsert and twins --------------------------------------------------------------


def _student(n: int, *, first: str, last: str, born: date) -> UserAttributes:
    return UserAttributes(userid=f"stu{n}", student_id=f"S{30000 + n}", first_name=first, last_name=last,
                          birthdate=born, email=f"{first}.{last}.{n}@students.example.org".lower(),
                          account_types=("student",))


async def test_add_user_with_userid_and_student_id_keeps_name_and_birth_date_twins_apart(
    sim: MatrixSimulator, unlimited: str,
) -> None:
    twins = [("Ana", "Garcia", date(2011, 5, 3)), ("Wei", "Nguyen", date(2010, 1, 9)),
             ("Omar", "Lee", date(2012, 7, 30))]
    people = [twins[n // 2] if n < 6 else (f"First{n}", f"Last{n}", date(2010, 1, 1 + n % 28)) for n in range(50)]
    students = [_student(n, first=f, last=l_, born=b) for n, (f, l_, b) in enumerate(people)]
    before = counts(sim)["users"]
    async with client(unlimited) as c:
        refs = [await c.add_user(s) for s in students]
        assert len({r.id for r in refs}) == 50 and counts(sim)["users"] == before + 50
        assert [r.userid for r in refs] == [s.userid for s in students]
        # Resending is an upsert matched by userid: same ids, nobody new.
        assert [(await c.add_user(s)).id for s in students] == [r.id for r in refs]
        assert counts(sim)["users"] == before + 50
        [found] = await c.get_users_that_match(student_id="S30001")
        assert found.id == refs[1].id and found.first_name == "Ana" and refs[0].id != refs[1].id

        # A lost answer: add_user with its ids is resent, and the resend finds the account.
        faults(unlimited, lost_response_rate=1.0, remaining=1)
        late = await c.add_user(_student(99, first="Kofi", last="Brown", born=date(2011, 2, 2)))
        assert counts(sim)["users"] == before + 51
        assert [u.id for u in await c.get_users_that_match(userid="stu99")] == [late.id]

        # Why both ids are always sent: without them MatrixLMS matches by name and birth date,
        # and the second twin's add_user would update the first twin.
        merged = await c.add_user(UserAttributes(first_name="Ana", last_name="Garcia", birthdate=date(2011, 5, 3)))
        assert merged.id == refs[0].id and counts(sim)["users"] == before + 51
        # ... and such a call is never resent blindly.
        faults(unlimited, lost_response_rate=1.0, remaining=1)
        with pytest.raises(AmbiguousWriteError):
            await c.add_user(UserAttributes(first_name="Nia", last_name="Okafor", birthdate=date(2012, 1, 1)))


# --- classes: ambiguous creates --------------------------------------------------------------


async def test_lost_add_class_is_ambiguous_and_add_class_once_finds_it_instead_of_creating_again(
    sim: MatrixSimulator, url: str,
) -> None:
    start = counts(sim)["classes"]
    async with client(url) as c:
        algebra = ClassAttributes(name="Algebra I - P1 [S30000]", style="Instructor", start_at=date(2024, 8, 26),
                                  finish_at=date(2025, 6, 13))
        faults(url, lost_response_rate=1.0, remaining=1)
        with pytest.raises(AmbiguousWriteError) as info:
            await c.add_class(algebra)
        assert classify(info.value) is Verdict.RETRY and counts(sim)["classes"] == start + 1, "it was applied"

        # The resolving helper: the answer is lost again, the look-up by name finds the class.
        geometry = ClassAttributes(name="Geometry - P2 [S30001]", style="Instructor")
        faults(url, lost_response_rate=1.0, remaining=1)
        made = await c.add_class_once(geometry, look_first=False)
        assert made.created and made.via_lookup
        assert counts(sim)["classes"] == start + 2, "one Geometry class, not two"
        assert [k.id for k in await c.find_classes_by_name("Geometry - P2 [S30001]")] == [made.id]

        # A gateway failing before MatrixLMS saw the call: the look-up finds nothing, so it is created once.
        faults(url, error_rate=1.0, remaining=1)
        biology = await c.add_class_once(ClassAttributes(name="Biology - P3 [S30002]"), look_first=False)
        assert biology.created and not biology.via_lookup and counts(sim)["classes"] == start + 3

        # look_first (the default): the caller whose add_class above raised retries with
        # add_class_once and gets the class its lost call created; nothing new. A shared name
        # cannot be resolved.
        existing = await c.add_class_once(algebra)
        assert not existing.created and existing.via_lookup and counts(sim)["classes"] == start + 3
        await c.add_class(ClassAttributes(name="Art - P4"))
        await c.add_class(ClassAttributes(name="Art - P4"))
        with pytest.raises(ConflictError):
            await c.add_class_once(ClassAttributes(name="Art - P4"))


# --- members, grades, paging, splitting -------------------------------------------------------


async def test_roster_and_grades_round_trip(sim: MatrixSimulator, unlimited: str) -> None:
    sim.seed(SeedSpec(size=250, seed=3))
    async with client(unlimited) as c:
        users = await c.get_all_users()
        assert len(users) == counts(sim)["users"] > 200, "every page, 100 at a time"
        students = [u.id for u in users if u.student][:40]
        teacher = next(u.id for u in users if u.teacher and not u.administrator)
        class_id = (await c.add_class_once(ClassAttributes(name="Chemistry - P5 [S30100]", style="Instructor"))).id
        assert await c.add_students_to_class(class_id, students[:30]) == 30
        # ignore_already_enrolled: the 30 already there do not fail the batch.
        assert await c.add_students_to_class(class_id, students) == 10
        assert await c.remove_students_from_class(class_id, students[:5]) == 5
        roster = await c.get_students_for_class(class_id)
        assert sum(s.enrolled for s in roster) == 35 and sum(s.unenrolled for s in roster) == 5
        assert await c.add_teachers_to_class(class_id, [teacher]) == 1
        assert [t.id for t in await c.get_teachers_for_class(class_id)] == [teacher]
        assert await c.remove_teachers_from_class(class_id, [teacher]) == 1

        seeded = (await c.get_all_classes())[0]
        [assignment, *_] = await c.get_assignments_for_class(seeded.id)
        members = [s.id for s in await c.get_students_for_class(seeded.id) if s.enrolled]
        grades = {uid: grade for uid, grade in zip(members, ["B+", "3.1", "15%", "AB", "A-"], strict=False)}
        await c.set_grades_for_assignment(assignment.id, grades)
        cells = {g.user_id: g.cell(assignment.id) for g in await c.get_grades_for_class(seeded.id)}
        assert {uid: cell.grade for uid, cell in cells.items() if uid in grades and cell} == grades
        await c.set_grades_for_assignment(assignment.id, [GradeEntry(user_id=members[0], grade="")])  # a blank clears
        cells = {g.user_id: g.cell(assignment.id) for g in await c.get_grades_for_class(seeded.id)}
        assert cells[members[0]] is not None and cells[members[0]].grade is None

        await c.archive_users(students[:2])
        assert all(u.archived for u in await c.get_users_with_ids(students[:2]))
        await c.reactivate_users(students[:2])
        await c.archive_classes([class_id])
        assert [k.id for k in await c.get_classes_that_match(archived=True)] == [class_id]
        await c.reactivate_classes([class_id])
        await c.delete_classes([class_id])
        assert class_id not in {k.id for k in await c.get_all_classes()}
        await c.restore_classes([class_id])
        assert [k.archived for k in await c.get_classes_with_ids([class_id])] == [False]


async def test_long_id_lists_split_only_past_the_url_limit(sim: MatrixSimulator, unlimited: str) -> None:
    sim.seed(SeedSpec(size=600, seed=4, classes=1))
    async with client(unlimited) as c:
        ids = [u.id for u in await c.get_all_users() if u.student]
        class_id = await c.add_class(ClassAttributes(name="Physics [S30200]"))
        before = c.budget.stats.admitted
        assert await c.add_students_to_class(class_id, ids[:30]) == 30  # FLOWS.md 5: one class, one call
        assert c.budget.stats.admitted - before == 1
    async with client(unlimited, max_url_bytes=1024) as small:
        before = small.budget.stats.admitted
        assert await small.add_students_to_class(class_id, ids) == len(ids) - 30
        calls = small.budget.stats.admitted - before
        assert calls > 1 and len(await small.get_users_with_ids(ids)) == len(ids)
        # Each call held as many ids as 1,024 bytes allow: about 1,024 / len("&user_ids[]=1234") per call.
        assert calls <= len(ids) // 50 + 1
        with pytest.raises(PermanentUpstreamError, match="max_url_bytes"):
            await small.add_class(ClassAttributes(name="x" * 2000))


def test_nested_arguments_use_one_bracket_encoding() -> None:
    # 000:L40 (arrays) and matrix_class.md A.2 (arrays of objects, Rack style).
    assert query_string(encode_pairs({"user_ids": [1, 2]})) == "user_ids[]=1&user_ids[]=2"
    grades = [GradeEntry(user_id=5, grade="B+").args(), GradeEntry(user_id=6, grade="").args()]
    assert (query_string(encode_pairs({"assignment_id": 9, "grades": grades}))
            == "assignment_id=9&grades[][user_id]=5&grades[][grade]=B%2B&grades[][user_id]=6&grades[][grade]=")
    flags = encode_pairs({"ignore_already_enrolled": True, "start_at": date(2024, 8, 26), "page": None})
    assert flags == [("ignore_already_enrolled", "true"), ("start_at", "2024-08-26")]
    with pytest.raises(ValueError, match="keys"):
        encode_pairs({"grades": [{"user_id": 1, "grade": "A"}, {"grade": "B", "user_id": 2}]})


@settings(max_examples=200, deadline=None)
@given(st.integers(10, 500), st.lists(st.integers(0, 10**9), max_size=80), st.integers(60, 2000))
def test_chunking_keeps_every_url_under_the_limit_and_every_id_in_order(base: int, ids: list[int], limit: int) -> None:
    def encode(i: int) -> str:
        return query_string(encode_pairs({"user_ids": [i]}))

    try:
        chunks = chunk_by_url(base, ids, encode, limit)
    except ValueError:
        assert any(base + 1 + len(encode(i)) > limit for i in ids)
        return
    assert [i for chunk in chunks for i in chunk] == ids
    for chunk in chunks:
        assert base + sum(1 + len(encode(i)) for i in chunk) <= limit
    if ids and base + sum(1 + len(encode(i)) for i in ids) <= limit:
        assert len(chunks) == 1, "split only when one URL would not do"


# --- errors and what they reveal --------------------------------------------------------------


async def test_errors_are_typed(sim: MatrixSimulator, url: str) -> None:
    async with client(url, key="23-34-d31dae3671") as wrong:  # the seed's wrong key (000:L47)
        with pytest.raises(AuthenticationError) as rejected:
            await wrong.get_version()
    assert rejected.value.status == 401 and "Invalid API key" in str(rejected.value)
    assert classify(rejected.value) is Verdict.PAUSE, "rejected credentials pause the component"
    async with client(url) as c:
        with pytest.raises(PermanentUpstreamError) as bad:
            await c.get_students_for_class(424242)
        assert "No class with id 424242" in str(bad.value) and classify(bad.value) is Verdict.DEAD_LETTER
        faults(url, malformed_rate=1.0, remaining=1)
        assert len(await c.get_all_classes()) >= 1, "a truncated read is retried"
        faults(url, html_error_rate=1.0, remaining=1)
        with pytest.raises(AmbiguousWriteError):
            await c.delete_classes([1456])


async def test_no_log_line_or_error_message_reveals_the_key_or_personal_data(sim: MatrixSimulator, url: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("debug", stream=stream)
    zelda = UserAttributes(userid="zquimby", student_id="S77001", first_name="Zelda", last_name="Quimby",
                           email="zelda.quimby@students.example.org", birthdate=date(2010, 3, 4))
    secrets = [DEMO_API_KEY, "Zelda", "Quimby", "zelda.quimby", "2010-03-04", "2/11/2007"]
    errors: list[UpstreamError] = []
    try:
        sim.clock.set_scale(0)
        sim.configure({"rate_limit": {"limit": 6}})  # the seventh call below is refused
        budget = SiteBudget(limit=1000, clock=sim_clock(sim))
        async with client(url, max_retries=2, budget=budget) as c, client(url, max_retries=0, budget=budget) as once:
            faults(url, lost_response_rate=1.0, remaining=1)
            ref = await c.add_user(zelda)  # lost, retried (logged at debug), then answered
            faults(url, malformed_rate=1.0, remaining=3)
            with pytest.raises(MalformedResponseError) as truncated:  # a truncated user list, three times
                await c.get_users_with_ids([ref.id])
            errors.append(truncated.value)
            with pytest.raises(PermanentUpstreamError) as echoed:  # the simulator echoes the birth date
                await c.call("add_user", {"userid": "zquimby", "first_name": "Zelda", "birthdate": "2/11/2007"})
            errors.append(echoed.value)
            assert "Invalid date for birthdate" in str(echoed.value)
            with pytest.raises(ThrottledError) as throttled:
                await once.get_users_that_match(email="zelda.quimby@students.example.org")
            errors.append(throttled.value)
        async with client(url, key="wrong-key-1234") as wrong:
            with pytest.raises(AuthenticationError) as rejected:
                await wrong.update_user(zelda)
            errors.append(rejected.value)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    logged = stream.getvalue()
    assert "upstream.retry" in logged and "matrixlms.rate_limited" in logged, "the interesting lines were logged"
    for line in logged.splitlines():
        json.loads(line)
    for secret in secrets:
        assert secret not in logged, secret
        for error in errors:
            assert secret not in str(error), (secret, str(error))
    assert "wrong-key-1234" not in str(errors[-1])


def test_redaction_masks_personal_query_parameters_flat_and_bracketed() -> None:
    line = ("/api/add_user?api_key=23-34-d315a3421&first_name=Zelda&attributes[last_name]=Quimby"
            "&users%5B%5D%5Bemail%5D=z%40q.org&birthdate=2010-03-04&birth_date=2010&data[][name][first]=Zelda"
            "&userid=zq&class_id=5&name=Algebra")
    masked = redact(line)
    for value in ("23-34-d315a3421", "Zelda", "Quimby", "z%40q.org", "2010-03-04"):
        assert value not in masked
    assert "userid=zq&class_id=5&name=Algebra" in masked, "ids and class names stay readable"


# --- parsing properties -----------------------------------------------------------------------

PARSE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time, any JSON value otherwise."""
    return st.one_of(good, good, json_values)


texts = maybe(st.text(max_size=12) | st.none())
flags = maybe(st.booleans())
numbers = maybe(st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-5, 500) | st.none())
user = st.fixed_dictionaries({
    "id": maybe(st.integers(1, 10**6)), "userid": texts, "first_name": texts, "student_id": texts,
    "birthdate": texts, "student": flags, "archived": flags, "organization_id": maybe(st.integers() | st.none()),
    "unenrolled": flags, "enroll_type": texts, "percent": numbers, "coteacher": flags,
})
course = st.fixed_dictionaries({"id": maybe(st.integers(1, 10**6)), "name": maybe(st.text(max_size=12)),
                                "style": texts, "course_code": texts, "archived": flags, "start": texts})
cell = st.fixed_dictionaries({"id": maybe(st.integers(1, 99)), "grade": texts, "score": numbers,
                              "grader_id": maybe(st.integers() | st.none()), "gradebook": flags})
grade_info = st.fixed_dictionaries({
    "user_id": maybe(st.integers(1, 99)), "percent": numbers, "grade": texts,
    "grading_periods": maybe(st.lists(st.fixed_dictionaries({"name": texts, "assignments": maybe(
        st.lists(cell, max_size=3))}), max_size=2)),
})
assignment = st.fixed_dictionaries({"id": maybe(st.integers(1, 99)), "name": maybe(st.text(max_size=8)),
                                    "type": texts, "points": numbers, "lesson": maybe(st.integers() | st.none())})
write_answers = st.one_of(json_values, st.integers(-3, 10**9), st.booleans(),
                          st.fixed_dictionaries({"id": maybe(st.integers(1, 10**6)), "userid": texts}),
                          st.fixed_dictionaries({"count": maybe(st.integers(-1, 100))}),
                          st.fixed_dictionaries({"version": maybe(st.integers(0, 3))}),
                          st.fixed_dictionaries({"message": st.text(max_size=10)}))


def _typed(parse: Any, body: Any) -> None:
    try:
        parse(body)
    except UpstreamError:
        return


@PARSE
@given(st.one_of(json_values, st.lists(user, max_size=4)))
def test_user_student_and_teacher_lists_parse_or_raise_a_typed_error(body: Any) -> None:
    for parse in (parse_users, parse_students, parse_teachers):
        _typed(parse, body)


@PARSE
@given(st.one_of(json_values, st.lists(course, max_size=4), st.lists(assignment, max_size=4),
                 st.lists(grade_info, max_size=3)))
def test_class_assignment_and_grade_lists_parse_or_raise_a_typed_error(body: Any) -> None:
    for parse in (parse_classes, parse_assignments, parse_grades):
        _typed(parse, body)


@PARSE
@given(write_answers)
def test_write_answers_parse_or_raise_a_typed_error(body: Any) -> None:
    for parse in (parse_version, parse_user_ref, parse_id, parse_count, parse_ack):
        _typed(parse, body)


def test_documented_success_shapes_are_accepted() -> None:
    # A.3: a bare id, an object or ``true``; the simulator's choices first.
    assert parse_user_ref({"id": 7, "userid": "s7"}).id == 7 and parse_user_ref(7).userid is None
    assert parse_id(1457) == parse_id({"id": 1457}) == 1457
    assert parse_count(30) == 30 and parse_count(True) is None and parse_count({"count": 2}) == 2
    assert parse_ack(True) is None and parse_ack(None) is None and parse_ack(3) is None
    assert parse_version({"version": 1}) == 1
    for bad, parse in ((True, parse_id), ("12", parse_id), (False, parse_ack), ({"message": "x"}, parse_ack),
                       ([{"id": 1, "name": 5}], parse_classes), ([{"id": 1, "student_id": 30001}], parse_users)):
        with pytest.raises(MalformedResponseError):
            parse(bad)


# --- configuration and registration -----------------------------------------------------------

CONFIG = """\
tenants:
  - id: district-a
    systems:
      matrixlms:
        base_url: https://district-a.matrixlms.com
        api_key: ${MATRIXLMS_API_KEY}
        replicas: 2
"""


def test_matrixlms_section_reads_its_key_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "edusync.yaml"
    path.write_text(CONFIG)
    config = load_config(path, env={"MATRIXLMS_API_KEY": "23-34-d315a3421"})
    section = config.tenants[0].systems.matrixlms  # type: ignore[attr-defined]
    assert section.api_key.get_secret_value() == "23-34-d315a3421" and "d315a3421" not in repr(config)
    assert (section.calls_per_minute, section.replicas, section.lockout_pause_seconds) == (100, 2, 65.0)
    assert section.max_url_bytes == 6000
    with pytest.raises(ConfigError) as missing:
        load_config(path, env={})
    assert (f"{path}:6: tenants[0].systems.matrixlms.api_key: environment variable MATRIXLMS_API_KEY is not set"
            in str(missing.value))


@pytest.mark.parametrize(("line_7", "field", "message"), [
    ("replicas: 0", "replicas", "greater than or equal to 1"),
    ("calls_per_minute: 150", "calls_per_minute", "less than or equal to 120"),
    ("cals_per_minute: 90", "cals_per_minute", "unknown field"),
])
def test_a_wrong_matrixlms_field_is_named_with_its_line(tmp_path: Path, line_7: str, field: str, message: str) -> None:
    text = CONFIG.replace("replicas: 2", line_7)
    line = 7
    path = tmp_path / "edusync.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"MATRIXLMS_API_KEY": "k" * 8})
    assert f"{path}:{line}: tenants[0].systems.matrixlms.{field}: " in str(err.value)
    assert message in str(err.value)


def test_edusync_simulate_serves_the_matrixlms_simulator() -> None:
    app, hint = simulator_factory("matrixlms")(SimulateOptions(students=40, seed=2))
    assert DEMO_API_KEY in hint and "120 calls" in hint
    with ThreadedServer(app) as srv:
        users = httpx.get(srv.url + "/api/get_all_users", params={"api_key": DEMO_API_KEY}).json()
    assert sum(1 for u in users if u["student"]) >= 40


async def test_the_bench_districts_twenty_thousand_students_become_as_many_users(
    sim: MatrixSimulator, unlimited: str,
) -> None:
    # The bench's district (FLOWS.md section 5): 20,000 students, 19 pairs sharing first name, last
    # name and birth date. Sent as the roster handler sends them (userid and student ID both the
    # district id), every one is its own account; without the ids the twins merge.
    illuminate = IlluminateSimulator()
    illuminate.seed(DistrictSpec(**district_spec(20_000)))
    students = list(illuminate.district.students.rows.values())
    pairs = Counter((s.first_name, s.last_name, s.birth_date) for s in students)
    twins = [s for s in students if pairs[(s.first_name, s.last_name, s.birth_date)] > 1]
    assert len(students) == 20_000 and len(twins) == 38
    before = counts(sim)["users"]
    async with client(unlimited) as c:
        refs = [await c.add_user(UserAttributes(
            userid=str(s.district_student_id), student_id=str(s.district_student_id), first_name=s.first_name,
            last_name=s.last_name, birthdate=date.fromisoformat(s.birth_date))) for s in students]
        assert len({r.id for r in refs}) == 20_000 and counts(sim)["users"] == before + 20_000
        merged = {(await c.add_user(UserAttributes(first_name=s.first_name, last_name=s.last_name,
                                                   birthdate=date.fromisoformat(s.birth_date)))).id for s in twins}
    assert len(merged) == 19, "without ids, name and birth date match one account per pair"
    assert counts(sim)["users"] == before + 20_000
