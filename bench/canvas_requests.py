"""Canvas request budget: what each object and each poll cycle costs, and how one token fares
under a mixed load with the quota lowered.

    python -m bench.canvas_requests [--bootstrap B] [--courses 200] [--load-seconds 60]

Counts come from the Canvas simulator's own statistics (every ``/api/`` response it served,
throttled refusals included), never from the client:

a. objects: requests per object created through ``CanvasClient`` (user, term, course, section,
   enrolment, submission grade; POST-first and GET-first; bulk grading with its Progress polls);
b. poll cycles: the course-events poller idle and with 1,000 new events; the grade-change poller
   idle over 10, 50 and ``--courses`` courses (one Kafka transaction per course, so the cycle's
   wall time is shown too);
c. shared token: one client (one token, one request in flight) carries a standards-like load
   (outcome reads and writes), a roster-like write load (users, enrolments, grades) and both
   pollers (course events, grade changes of 50 courses) while people change courses and grades,
   for ``--load-seconds`` with the simulator's quota lowered to ``--capacity`` units refilling at
   ``--leak-rate`` per second. Aim: no failed operation, throttled responses under 2 %.

It starts its own Kafka in a temporary folder unless ``--bootstrap`` or ``KAFKA_BOOTSTRAP_SERVERS``
names one. Writes ``bench/reports/canvas_requests.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client import REGISTRY

from bench.report import REPORTS_DIR, machine_info, md_table
from deploy.local_kafka import LocalKafka, free_port
from simulators.canvas import CanvasSimulator, ThrottleConfig, create_app
from simulators.server import ThreadedServer
from worker.backoff import Backoff
from worker.clients.canvas import CanvasClient, GradeInput, sis
from worker.clients.errors import NotFoundError
from worker.clients.http import HTTPSettings
from worker.kafka.producer import TransactionalProducer
from worker.logs import configure_logging
from worker.poller_frame import Poller, PollerRunner
from worker.pollers.canvas_audit_window import WindowSettings, canvas_source
from worker.pollers.canvas_course_events import CanvasCourseEventsPoller
from worker.pollers.canvas_feed_cursors import FeedCursorStore
from worker.pollers.canvas_grade_changes import POLLER_NAME as GRADE_POLLER
from worker.pollers.canvas_grade_changes import CanvasGradeChangesPoller
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import CANVAS_COURSE_EVENTS, CANVAS_GRADE_CHANGES, TopicSpec, all_topics, ensure_topics

TOKEN = "bench-canvas-token-0123456789"
WINDOW = WindowSettings(lag=timedelta(seconds=1), overlap=timedelta(seconds=60), lookback=timedelta(minutes=10),
                        window=timedelta(hours=6), max_events=10_000)
# A short overlap for the cycle measurements, so "idle" can be reached in seconds.
CYCLE_WINDOW = WindowSettings(lag=timedelta(seconds=1), overlap=timedelta(seconds=5), lookback=timedelta(minutes=10),
                              window=timedelta(hours=6), max_events=10_000)


@dataclass
class Measured:
    """Requests the simulator served for one operation."""

    what: str
    requests: int
    note: str = ""


@dataclass
class Cycle:
    """One poll cycle: requests and wall time."""

    what: str
    polls: int
    requests: int
    seconds: float
    events: int


@dataclass
class LoadResult:
    """The shared-token phase."""

    seconds: float
    capacity: float
    leak_rate: float
    requests: int
    throttled: int
    by_load: dict[str, int]
    ops: dict[str, int]
    failures: dict[str, int]
    paused_seconds: float
    op_latency_p50: dict[str, float]
    op_latency_p99: dict[str, float]
    events_published: int


@dataclass
class BenchData:
    """Everything the report shows."""

    machine: dict[str, str]
    objects: list[Measured] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)
    load: LoadResult | None = None


def _client(url: str, **kwargs: Any) -> CanvasClient:
    return CanvasClient(url, TOKEN, http=HTTPSettings(max_attempts=6, backoff_base_seconds=0.2), **kwargs)


async def measure(sim: CanvasSimulator, what: str, op: Callable[[], Awaitable[Any]], note: str = "") -> Measured:
    """The requests ``op`` made (simulator count before and after)."""
    before = sim.stats.count()
    await op()
    return Measured(what, sim.stats.count() - before, note)


# -- a. objects -------------------------------------------------------------------------------------


async def object_costs(sim: CanvasSimulator, url: str) -> list[Measured]:
    """Requests per object created, POST-first and GET-first."""
    rows: list[Measured] = []
    async with _client(url) as c:
        rows.append(await measure(sim, "term (POST)", lambda: c.create_term("1", name="Fall", sis_term_id="T-1")))
        course = (await c.create_course("1", name="Bio", sis_course_id="C-0", offer=True)).value
        rows.append(await measure(sim, "course (POST)", lambda: c.create_course("1", name="Chem", sis_course_id="C-1")))
        rows.append(await measure(sim, "section (POST)", lambda: c.create_section(course.id, name="P1",
                                                                                  sis_section_id="SEC-1")))
        rows.append(await measure(sim, "user + login (POST)", lambda: c.create_user("1", unique_id="u0",
                                                                                   sis_user_id="S-0")))

        async def user_get_first() -> None:
            try:
                await c.get_user(sis("sis_user_id", "S-1"))
            except NotFoundError:
                await c.create_user("1", unique_id="u1", sis_user_id="S-1")

        rows.append(await measure(sim, "user (GET-first, absent)", user_get_first, "404, then POST"))
        section = (await c.create_section(course.id, name="P2", sis_section_id="SEC-2")).value
        students = [(await c.create_user("1", unique_id=f"s{i}", sis_user_id=f"ST-{i}")).value for i in range(30)]
        rows.append(await measure(sim, "enrolment (POST)", lambda: c.enroll_in_section(section.id, students[0].id)))

        async def enrol_get_first() -> None:
            present = {e.user_id for e in await c.enrollments(section=section.id)}
            if students[1].id not in present:
                await c.enroll_in_section(section.id, students[1].id)

        rows.append(await measure(sim, "enrolment (list section, then POST)", enrol_get_first,
                                  "1 list per 100 enrolments of the section"))
        for s in students[2:]:
            await c.enroll_in_section(section.id, s.id)
        lab = (await c.create_assignment(course.id, name="Lab", points_possible=10)).value
        rows.append(await measure(sim, "submission grade (PUT)", lambda: c.grade_submission(
            course.id, lab.id, sis("sis_user_id", "ST-0"), posted_grade=8)))

        async def grade_get_first() -> None:
            current = await c.get_submission(course.id, lab.id, students[1].id)
            if current.score != 9:
                await c.grade_submission(course.id, lab.id, students[1].id, posted_grade=9)

        rows.append(await measure(sim, "submission grade (GET, then PUT)", grade_get_first))
        grades = {s.id: GradeInput(posted_grade=str(5 + i % 5)) for i, s in enumerate(students)}
        rows.append(await measure(sim, "30 grades, bulk (POST + Progress polls)", lambda: c.bulk_grade(
            course.id, lab.id, grades, poll_every=0.05), "one Progress poll when the job is done at once"))
    return rows


# -- b. poll cycles ---------------------------------------------------------------------------------


async def cycle_of(sim: CanvasSimulator, runner: PollerRunner, what: str) -> Cycle:
    """One whole cycle: poll until the poller would rest."""
    before = sim.stats.count()
    started = time.monotonic()
    polls = events = 0
    while True:
        result = await runner.run_once()
        polls += 1
        events += len(result.events)
        if not result.more:
            break
    return Cycle(what, polls, sim.stats.count() - before, time.monotonic() - started, events)


async def make_runner(bootstrap: str, poller: Poller) -> tuple[PollerRunner, TransactionalProducer]:
    producer = TransactionalProducer(bootstrap, f"bench.canvas.{poller.tenant}.{uuid.uuid4().hex[:6]}")
    await producer.__aenter__()
    cursors = StateStore(bootstrap, "edusync._cursors")
    await cursors.restore()
    return PollerRunner(poller, producer, cursors, interval=0.5), producer


async def poll_cycles(sim: CanvasSimulator, url: str, bootstrap: str, courses: list[str]) -> list[Cycle]:
    """Requests per cycle of each poller, idle and busy."""
    tenant = f"bench{uuid.uuid4().hex[:6]}"
    rows: list[Cycle] = []
    async with _client(url) as client:
        feed = CanvasCourseEventsPoller(tenant, "1", client, CYCLE_WINDOW, source=canvas_source(url))
        runner, producer = await make_runner(bootstrap, feed)
        try:
            # The first look-back (10 min) takes in the courses just created; the next window ends
            # past the overlap after them, so the one after that starts after them: idle.
            await cycle_of(sim, runner, "course events: warm-up")
            await anyio.sleep(CYCLE_WINDOW.overlap.total_seconds() + 2)
            await cycle_of(sim, runner, "course events: warm-up")
            await anyio.sleep(1.1)
            rows.append(await cycle_of(sim, runner, "course events: idle"))
            httpx.post(url + "/_sim/audit/inject", json={"course_id": courses[0], "count": 1000}).raise_for_status()
            await anyio.sleep(1.1)
            rows.append(await cycle_of(sim, runner, "course events: 1,000 new events"))
            await anyio.sleep(1.1)
            rows.append(await cycle_of(sim, runner, "course events: idle, those 1,000 still in the overlap"))
        finally:
            await producer.__aexit__(None, None, None)
        for n in sorted({10, 50, len(courses)}):
            store = FeedCursorStore(bootstrap, f"{tenant}-{n}", GRADE_POLLER)
            grades = CanvasGradeChangesPoller(f"{tenant}-{n}", courses[:n], client, WINDOW, store,
                                              source=canvas_source(url))
            runner, producer = await make_runner(bootstrap, grades)
            try:
                await cycle_of(sim, runner, "first")
                await anyio.sleep(1.1)
                rows.append(await cycle_of(sim, runner, f"grade changes: {n} courses, idle"))
            finally:
                await producer.__aexit__(None, None, None)
    return rows


# -- c. one token, many loads -----------------------------------------------------------------------


class Ops:
    """Operation outcomes and latencies per load."""

    def __init__(self) -> None:
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.latency: dict[str, list[float]] = {}

    async def run(self, load: str, op: Callable[[], Awaitable[Any]]) -> None:
        started = time.monotonic()
        try:
            await op()
        except Exception as exc:  # a failed operation is what this phase counts
            self.failed[f"{load}: {type(exc).__name__}"] += 1
            return
        self.done[load] += 1
        self.latency.setdefault(load, []).append(time.monotonic() - started)


async def standards_load(c: CanvasClient, ops: Ops, stop: StopToken) -> None:
    """Outcome reads and writes in the proportions of the standards handler (creates, edits, reads)."""
    root = await c.root_outcome_group("1")
    group = await c.create_outcome_subgroup("1", root.id, title="Bench", vendor_guid="bench-doc")
    created: list[int] = []
    rng = random.Random(1)
    i = 0
    while not stop.stopping:
        i += 1
        roll = rng.random()
        if roll < 0.4 or not created:
            async def create(n: int = i) -> None:
                link = await c.create_linked_outcome("1", group.id, title=f"S{n}", description="d",
                                                     vendor_guid=f"bench-{n}")
                created.append(link.outcome_id)
            await ops.run("standards", create)
        elif roll < 0.8:
            await ops.run("standards", partial(c.update_outcome, rng.choice(created), description=f"rev {i}"))
        else:
            await ops.run("standards", lambda: c.group_outcome_links("1", group.id))


async def roster_load(c: CanvasClient, ops: Ops, stop: StopToken, course: str, section: str, lab: str) -> None:
    """Users created, enrolled and graded: the roster and scores flows' writes."""
    i = 0
    while not stop.stopping:
        i += 1

        async def one(n: int = i) -> None:
            user = (await c.create_user("1", unique_id=f"load{n}", sis_user_id=f"L-{n}")).value
            await c.enroll_in_section(section, user.id)
            await c.grade_submission(course, lab, user.id, posted_grade=str(n % 10))

        await ops.run("roster", one)


def human_changes(url: str, courses: list[str], lab: tuple[str, str], stop: threading.Event) -> None:
    """Course edits and teacher grade changes made in Canvas (control routes: not throttled)."""
    rng = random.Random(2)
    with httpx.Client(base_url=url, timeout=10) as http:
        while not stop.is_set():
            http.post("/_sim/audit/inject", json={"course_id": rng.choice(courses[:50]), "count": 3})
            http.post("/_sim/grades", json={"course_id": lab[0], "assignment_id": lab[1], "user_id": "sis_user_id:ST-0",
                                            "grader_id": 77, "posted_grade": str(rng.randint(0, 10))})
            stop.wait(0.5)


async def shared_token(sim: CanvasSimulator, url: str, bootstrap: str, courses: list[str], seconds: float,
                       capacity: float, leak_rate: float) -> LoadResult:
    """Every load on one client, the quota lowered."""
    tenant = f"load{uuid.uuid4().hex[:6]}"
    async with _client(url) as setup:
        course = (await setup.create_course("1", name="Load", offer=True)).value.id
        section = (await setup.create_section(course, name="P1")).value.id
        lab = (await setup.create_assignment(course, name="Lab", points_possible=10)).value.id
    sim.throttle.configure(ThrottleConfig(capacity=capacity, leak_rate=leak_rate))
    sim.stats.reset()
    ops = Ops()
    stop = StopToken()
    humans = threading.Event()
    thread = threading.Thread(target=human_changes, args=(url, courses, (courses[0], courses[1]), humans),
                              daemon=True)
    async with _client(url) as c:
        feed = CanvasCourseEventsPoller(tenant, "1", c, WINDOW, source=canvas_source(url))
        store = FeedCursorStore(bootstrap, tenant, GRADE_POLLER)
        grades = CanvasGradeChangesPoller(tenant, courses[:50], c, WINDOW, store, source=canvas_source(url))
        feed_runner, p1 = await make_runner(bootstrap, feed)
        grade_runner, p2 = await make_runner(bootstrap, grades)
        feed_runner.interval, grade_runner.interval = 2.0, 10.0
        feed_runner.backoff = grade_runner.backoff = Backoff(base=0.5, cap=5.0)
        published = 0
        try:
            thread.start()
            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                tg.start_soon(standards_load, c, ops, stop)
                tg.start_soon(roster_load, c, ops, stop, course, section, lab)
                tg.start_soon(feed_runner.run, stop)
                tg.start_soon(grade_runner.run, stop)
                await anyio.sleep(seconds)
                stop.set()
            elapsed = time.monotonic() - started
        finally:
            humans.set()
            thread.join(timeout=10)
            await p1.__aexit__(None, None, None)
            await p2.__aexit__(None, None, None)
        paused = c.budget.paused_seconds
    for topic in (CANVAS_COURSE_EVENTS, CANVAS_GRADE_CHANGES):
        for poller in ("canvas.course_events", "canvas.grade_changes"):
            value = REGISTRY.get_sample_value("edusync_events_published_total",
                                              {"tenant": tenant, "poller": poller, "topic": topic})
            published += int(value or 0)
    snapshot = sim.stats.snapshot()
    by_load: Counter[str] = Counter()
    for kind, statuses in snapshot["requests"].items():
        load = "pollers" if "/audit/" in kind else "standards" if "outcome" in kind else "roster"
        by_load[load] += sum(statuses.values())
    p50 = {k: statistics.median(v) for k, v in ops.latency.items()}
    p99 = {k: sorted(v)[max(0, int(len(v) * 0.99) - 1)] for k, v in ops.latency.items()}
    ops.done["pollers (polls)"] = _polls(tenant)
    return LoadResult(elapsed, capacity, leak_rate, snapshot["total"], snapshot["throttled"], dict(by_load),
                      dict(ops.done), dict(ops.failed), paused, p50, p99, published)


def _polls(tenant: str) -> int:
    total = 0.0
    for poller in ("canvas.course_events", "canvas.grade_changes"):
        total += REGISTRY.get_sample_value("edusync_poll_duration_seconds_count",
                                           {"tenant": tenant, "poller": poller}) or 0.0
    return int(total)


# -- run and report ---------------------------------------------------------------------------------


async def run_bench(url: str, sim: CanvasSimulator, bootstrap: str, n_courses: int, seconds: float,
                    capacity: float, leak_rate: float) -> BenchData:
    await ensure_topics(bootstrap, [*all_topics(), TopicSpec(CANVAS_COURSE_EVENTS), TopicSpec(CANVAS_GRADE_CHANGES)])
    data = BenchData(machine_info(bootstrap))
    data.objects = await object_costs(sim, url)
    async with _client(url) as c:
        courses = [(await c.create_course("1", name=f"Course {i}")).value.id for i in range(n_courses)]
    data.cycles = await poll_cycles(sim, url, bootstrap, courses)
    data.load = await shared_token(sim, url, bootstrap, courses, seconds, capacity, leak_rate)
    return data


def write_report(data: BenchData, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "canvas_requests.json").write_text(json.dumps(asdict(data), indent=2, default=str) + "\n")
    load = data.load
    assert load is not None
    share = load.throttled / load.requests if load.requests else 0.0
    failed = sum(load.failures.values())
    lines = [
        "# Canvas request budget: benchmark",
        "",
        "Produced by `python -m bench.canvas_requests`. Counts are the Canvas simulator's own (every `/api/` "
        "response it served, throttled refusals included). The client sends one request at a time per token "
        "(canvas.md §6.2 rule 9) and paces itself from `X-Rate-Limit-Remaining`.",
        "",
        "## Aims",
        "",
        md_table(["aim", "result", "met"], [
            ["no failed operation under the shared token", f"{failed} failed", "yes" if failed == 0 else "NO"],
            ["throttled responses under 2 % of requests", f"{load.throttled} of {load.requests:,} ({share:.2%})",
             "yes" if share < 0.02 else "NO"],
            ["grade changes: one request per course per idle cycle",
             "; ".join(f"{c.what.split(': ')[1].split(',')[0]}: {c.requests}" for c in data.cycles
                       if c.what.startswith("grade")),
             "yes" if all(c.requests == int(c.what.split(": ")[1].split(" ")[0]) for c in data.cycles
                          if c.what.startswith("grade")) else "NO"],
        ]),
        "",
        "## Requests per object",
        "",
        md_table(["operation", "requests", "note"], [[m.what, str(m.requests), m.note] for m in data.objects], "lrl"),
        "",
        "POST-first (create; on `ConflictError` look the object up) costs one request per object; GET-first "
        "costs two when the object is absent (FLOWS.md 2.3 trap 1). A grade is one PUT; bulk grading is one POST "
        "plus Progress polls for any number of students, but its audit events carry the job's request id, not "
        "the POST's (FLOWS.md 2.6 trap 4).",
        "",
        "## Requests per poll cycle",
        "",
        md_table(["cycle", "polls", "requests", "events", "wall s"],
                 [[c.what, str(c.polls), str(c.requests), f"{c.events:,}", f"{c.seconds:.2f}"] for c in data.cycles],
                 "lrrrr"),
        "",
        "The course log is one feed for the whole account: a cycle is one request per 100 events of its "
        "window, at least one, and the window includes the overlap, which is read again every cycle "
        "(de-duplicated, not republished). Measured here with a 5 s overlap; with the default 600 s an "
        "account making N course events in ten minutes pays about N/100 requests per cycle on top, so a busy "
        "account wants a longer `course_events_interval_seconds` or a shorter overlap. The grade-change log "
        "has no account-wide route, so each followed course is a request per cycle, events or not, and a Kafka "
        "transaction (its own cursor record); the wall time is mostly those transactions.",
        "",
        f"## One token, every load, quota lowered to {load.capacity:g} (refill {load.leak_rate:g}/s)",
        "",
        f"{load.seconds:.0f} s of: a standards-like load (outcome creates, edits and reads), a roster-like write "
        "load (user, enrolment and grade per operation), the course-events poller (2 s interval) and the "
        "grade-change poller over 50 courses (10 s interval), while people edit courses and grades in Canvas.",
        "",
        md_table(["measure", "value"], [
            ["requests served", f"{load.requests:,} ({load.requests / load.seconds:.1f}/s; the refill allows "
                                f"{load.leak_rate:g}/s after a first burst of {load.capacity:g})"],
            ["throttled (403 Rate Limit Exceeded)", f"{load.throttled} ({share:.2%})"],
            ["requests by load", ", ".join(f"{k} {v:,}" for k, v in sorted(load.by_load.items()))],
            ["operations done", ", ".join(f"{k} {v:,}" for k, v in sorted(load.ops.items()))],
            ["failed operations", ", ".join(f"{k} {v}" for k, v in load.failures.items()) or "none"],
            ["client pauses (quota low)", f"{load.paused_seconds:.1f} s"],
            ["operation latency p50 / p99",
             ", ".join(f"{k} {load.op_latency_p50[k]:.2f} / {load.op_latency_p99[k]:.2f} s"
                       for k in sorted(load.op_latency_p50))],
            ["audit events published", f"{load.events_published:,}"],
        ], "lr"),
        "",
        "Every load shares one rate budget and one request in flight, so together they run at the refill "
        "rate: a heavier load stretches operation latency, it does not fail operations. Throttled answers are "
        "retried by the HTTP layer (Canvas refuses them before doing any work, so a POST is repeated too).",
        "",
        "## Machine",
        "",
        md_table(["", ""], [[k, v] for k, v in data.machine.items()]),
        "",
    ]
    path = out_dir / "canvas_requests.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the bench and write its report; non-zero if an aim was missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.canvas_requests", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--courses", type=int, default=200, help="courses the grade-change poller follows")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--capacity", type=float, default=100.0, help="the lowered quota (simulator default 700)")
    parser.add_argument("--leak-rate", type=float, default=10.0, help="quota units restored per second")
    parser.add_argument("--out-dir", type=Path, default=REPORTS_DIR)
    args = parser.parse_args(argv)
    configure_logging("warning")
    workdir = Path(tempfile.mkdtemp(prefix="edusync-bench-canvas-"))
    broker: LocalKafka | None = None
    sim = CanvasSimulator(tokens={TOKEN: 1}, throttle=ThrottleConfig(capacity=100_000, leak_rate=10_000))
    server = ThreadedServer(create_app(sim)).start()
    try:
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = LocalKafka(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
            bootstrap = broker.up()
        data = anyio.run(run_bench, server.url, sim, bootstrap, args.courses, args.load_seconds, args.capacity,
                         args.leak_rate)
        path = write_report(data, args.out_dir)
        print(f"report: {path}")
        load = data.load
        assert load is not None
        ok = not load.failures and load.throttled < 0.02 * max(1, load.requests)
        return 0 if ok else 1
    finally:
        server.stop()
        if broker is not None:
            broker.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

