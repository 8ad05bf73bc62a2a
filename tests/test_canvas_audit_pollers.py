"""The Canvas audit pollers against the real broker and the Canvas simulator over loopback HTTP.

- 5,000 course events over three days (50 in one second), 200 more at the head while a walk pages
  at 5 a page, five SIGKILLs at different steps: every event published once, ascending per course;
- an empty window advances the cursor; audit storage "not configured" fails loudly, cursor kept;
- 200 followed courses cost exactly 200 requests per idle grade-change cycle;
- grade events carry the ``X-Request-Context-Id`` of the write that caused them; anonymous ones
  are published flagged;
- the real worker (``python -m worker run``) on OAuth2 whose tokens expire mid-run loses nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from deploy.local_kafka import free_port
from schemas.canvas import CanvasCourseEventV1, CanvasGradeChangedV1
from schemas.envelope import CloudEvent
from simulators.canvas import CanvasSimulator, ThrottleConfig, create_app
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from tests.kafka_tools import read_topic
from worker.backoff import Backoff
from worker.clients.canvas import CanvasClient, GradeInput, sis
from worker.clients.canvas_errors import AuditLogUnavailableError
from worker.health import Health, State
from worker.kafka.producer import TransactionalProducer
from worker.poller_frame import PollerRunner, cursor_key
from worker.pollers.canvas_audit_window import FeedCursor, WindowSettings, canvas_source
from worker.pollers.canvas_course_events import POLLER_NAME as COURSE_POLLER
from worker.pollers.canvas_course_events import CanvasCourseEventsPoller
from worker.pollers.canvas_feed_cursors import FeedCursorStore
from worker.pollers.canvas_grade_changes import POLLER_NAME as GRADE_POLLER
from worker.pollers.canvas_grade_changes import CanvasGradeChangesPoller
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import CANVAS_COURSE_EVENTS, CANVAS_GRADE_CHANGES, CURSORS, TopicSpec, all_topics, ensure_topics

pytestmark = [pytest.mark.anyio, pytest.mark.slow(50)]

TOKEN = "canvas-audit-token-0123"
FEED = "GET /api/v1/audit/course/accounts/:id"
GRADE_FEED = "GET /api/v1/audit/grade_change/courses/:id"
FAST = WindowSettings(lag=timedelta(seconds=1), overlap=timedelta(seconds=30), lookback=timedelta(minutes=10),
                      window=timedelta(hours=1), max_events=10_000)


@pytest.fixture
def canvas() -> Iterator[tuple[CanvasSimulator, str]]:
    sim = CanvasSimulator(tokens={TOKEN: 1}, throttle=ThrottleConfig(enabled=False))
    with ThreadedServer(create_app(sim)) as srv:
        yield sim, srv.url


@pytest.fixture
async def topics(kafka_bootstrap: str) -> str:
    await ensure_topics(kafka_bootstrap, [*all_topics(), TopicSpec(CANVAS_COURSE_EVENTS),
                                          TopicSpec(CANVAS_GRADE_CHANGES)])
    return kafka_bootstrap


def api(url: str, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def control(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.request(method, url + path, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


async def events_of(bootstrap: str, topic: str, tenant: str) -> list[CloudEvent]:
    records = await read_topic(bootstrap, topic)
    return [CloudEvent.from_bytes(r.value) for r in records if (r.key or b"").startswith(f"{tenant}/".encode())]


async def committed(bootstrap: str, key: str) -> Any:
    store = StateStore(bootstrap, CURSORS)
    await store.restore()
    return store.get(key)


# --- course events: exactly once, in order, through SIGKILLs --------------------------------------


def _app(bootstrap: str, url: str, tenant: str, kill_at: str | None, until: datetime | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.canvas_audit_app", "--bootstrap", bootstrap, "--canvas", url,
           "--token", TOKEN, "--tenant", tenant]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    if until:
        cmd += ["--until", until.isoformat()]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _inject_at_the_head(sim: CanvasSimulator, url: str, courses: list[int], done: list[int]) -> threading.Thread:
    """200 live events, 20 at a time, each batch after another page of the walk has been served."""

    def run() -> None:
        served = 0
        deadline = time.monotonic() + 120
        while sum(done) < 200 and time.monotonic() < deadline:
            now = sim.stats.count(FEED)
            if now >= 3 and now > served:
                served = now
                target = courses[len(done) % len(courses)]
                control(url, "POST", "/_sim/audit/inject", {"course_id": target, "count": 20})
                done.append(20)
            time.sleep(0.002)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_course_events_once_each_in_order_through_five_sigkills(
    canvas: tuple[CanvasSimulator, str], topics: str, unique: str,
) -> None:
    sim, url = canvas
    tenant = f"t{unique}"
    courses = [api(url, "POST", "/api/v1/accounts/1/courses", data={"course[name]": f"C{i}"})["id"] for i in range(5)]
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    for i, cid in enumerate(courses):
        control(url, "POST", "/_sim/audit/seed", {"kind": "course", "course_id": cid, "count": 1000, "days": 3,
                                                  "same_second": 50 if i == 0 else 0, "end": end.isoformat()})
    injected: list[int] = []
    injector = _inject_at_the_head(sim, url, courses, injected)
    first = _app(topics, url, tenant, "page:60", None)  # killed mid-walk, after the 200 went in
    assert first.wait(timeout=120) == -signal.SIGKILL, first.stderr.read().decode() if first.stderr else ""
    injector.join(timeout=120)
    assert sum(injected) == 200, "200 events were inserted at the head while the walk was paging"
    with sim.lock:
        everything = sim.audit.course_events(lambda e: True)
    until = max(e.created_at for e in everything).replace(microsecond=0)
    for kill in ("after_fetch:3", "mid_send:30", "before_commit:4", "after_commit:6"):
        proc = _app(topics, url, tenant, kill, until)
        assert proc.wait(timeout=120) == -signal.SIGKILL, (kill, proc.stderr.read().decode() if proc.stderr else "")
    last = _app(topics, url, tenant, None, until)
    assert last.wait(timeout=180) == 0, last.stderr.read().decode() if last.stderr else ""

    published = await events_of(topics, CANVAS_COURSE_EVENTS, tenant)
    assert len({e.id for e in published}) == len(published), "a CloudEvent was published twice"
    payloads = [(e.subject, e.payload(CanvasCourseEventV1)) for e in published]
    counts = Counter(p.event_id for _, p in payloads)
    assert set(counts) == {e.id for e in everything}
    assert max(counts.values()) == 1
    assert len(everything) == 5 * 1000 + 200 + 5  # seeded, injected, and each course's "created"
    by_course: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for subject, p in payloads:
        assert subject == f"{tenant}/course/{p.course_id}"
        by_course[p.course_id].append((p.created_at, p.event_id))
    assert set(by_course) == {str(c) for c in courses}
    for order in by_course.values():
        assert order == sorted(order), "events of a course are published in ascending (created_at, id) order"
    crowded = Counter(at for at, _ in by_course[str(courses[0])]).most_common(1)[0][1]
    assert crowded >= 50
    assert sim.stats.count(FEED, 200) > 1000  # pages of 5


# --- empty windows, an unconfigured audit store --------------------------------------------------


async def test_empty_window_advances_and_not_configured_keeps_the_cursor(
    canvas: tuple[CanvasSimulator, str], topics: str, unique: str,
) -> None:
    sim, url = canvas
    tenant = f"t{unique}"
    key = cursor_key(tenant, COURSE_POLLER)
    async with CanvasClient(url, TOKEN, http=http_settings(1, 5.0)) as client, \
            TransactionalProducer(topics, f"test.canvas-empty.{unique}") as producer:
        poller = CanvasCourseEventsPoller(tenant, "1", client, FAST, source=canvas_source(url))
        cursors = StateStore(topics, CURSORS)
        await cursors.restore()
        health = Health()
        runner = PollerRunner(poller, producer, cursors, interval=0.05, health=health,
                              backoff=Backoff(base=0.01, cap=0.05))
        first = await runner.run_once()
        assert first.events == [] and not first.more
        hwm1 = FeedCursor.load(await committed(topics, key)).hwm
        assert hwm1 is not None and hwm1 > datetime.now(UTC) - timedelta(seconds=3)
        await anyio.sleep(1.2)
        await runner.run_once()
        hwm2 = FeedCursor.load(await committed(topics, key)).hwm
        assert hwm2 is not None and hwm2 > hwm1, "an empty window still advances the cursor"

        control(url, "PUT", "/_sim/audit", {"configured": False})
        await anyio.sleep(1.2)
        with pytest.raises(AuditLogUnavailableError, match="not configured"):
            await runner.run_once()
        stop = StopToken()
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run, stop)
            deadline = time.monotonic() + 20
            while health.state(runner.component) is not State.DEGRADED:
                assert time.monotonic() < deadline, health.report()
                await anyio.sleep(0.05)
            stop.set()
        reason = health.report()
        assert "not configured" in str(reason)
        assert FeedCursor.load(await committed(topics, key)).hwm == hwm2, "a failed poll leaves the cursor"
    assert await events_of(topics, CANVAS_COURSE_EVENTS, tenant) == []
    assert sim.stats.count(FEED, 404) >= 3


# --- grade changes --------------------------------------------------------------------------------


async def _cycle(runner: PollerRunner) -> int:
    polls = 0
    while True:
        polls += 1
        if not (await runner.run_once()).more:
            return polls


async def test_two_hundred_courses_cost_two_hundred_requests_per_idle_cycle(
    canvas: tuple[CanvasSimulator, str], topics: str, unique: str,
) -> None:
    sim, url = canvas
    tenant = f"t{unique}"
    courses = [str(api(url, "POST", "/api/v1/accounts/1/courses", data={"course[name]": f"C{i}"})["id"])
               for i in range(200)]
    async with CanvasClient(url, TOKEN, http=http_settings(1, 5.0)) as client, \
            TransactionalProducer(topics, f"test.canvas-grades.{unique}") as producer:
        store = FeedCursorStore(topics, tenant, GRADE_POLLER)
        poller = CanvasGradeChangesPoller(tenant, courses, client, FAST, store, source=canvas_source(url))
        cursors = StateStore(topics, CURSORS)
        await cursors.restore()
        runner = PollerRunner(poller, producer, cursors, interval=0.05)
        assert await _cycle(runner) == 200  # the first look-back (10 minutes) fits one window per course
        for _ in range(2):
            await anyio.sleep(1.1)  # a second passes: each course's window has something to cover
            sim.stats.reset()
            assert await _cycle(runner) == 200
            assert sim.stats.count(GRADE_FEED) == 200
            assert sim.stats.count() == 200, "an idle cycle costs one request per course, nothing else"
    records = StateStore(topics, CURSORS, prefix=f"{tenant}/{GRADE_POLLER}/")
    assert await records.restore() == 200, "one cursor record per course"


async def test_grade_events_carry_the_writes_request_id_and_anonymous_ones_are_flagged(
    canvas: tuple[CanvasSimulator, str], topics: str, unique: str,
) -> None:
    _, url = canvas
    tenant = f"t{unique}"
    async with CanvasClient(url, TOKEN, http=http_settings(1, 5.0)) as client, \
            TransactionalProducer(topics, f"test.canvas-grade-ids.{unique}") as producer:
        course = (await client.create_course("1", name="Bio", offer=True)).value.id
        students = [(await client.create_user("1", unique_id=f"s{i}", sis_user_id=f"S-{i}")).value for i in range(3)]
        for s in students:
            await client.enroll_in_course(course, s.id)
        lab = (await client.create_assignment(course, name="Lab", points_possible=10)).value.id
        quiz = (await client.create_assignment(course, name="Quiz", points_possible=5)).value.id
        control(url, "PUT", f"/_sim/assignments/{quiz}", {"anonymous_grading": True})
        writes = [await client.grade_submission(course, lab, students[0].id, posted_grade=8),
                  await client.grade_submission(course, lab, sis("sis_user_id", "S-1"), posted_grade="75%"),
                  await client.grade_submission(course, lab, students[0].id, excuse=True)]
        anonymous = await client.grade_submission(course, quiz, students[2].id, posted_grade=4)
        teacher = control(url, "POST", "/_sim/grades", {"course_id": course, "assignment_id": lab,
                                                        "user_id": "sis_user_id:S-2", "grader_id": 77,
                                                        "posted_grade": "6"})
        bulk = await client.bulk_grade(course, lab, {students[1].id: GradeInput("9")}, poll_every=0.01)
        await anyio.sleep(1.2)  # past the lag
        store = FeedCursorStore(topics, tenant, GRADE_POLLER)
        poller = CanvasGradeChangesPoller(tenant, [course], client, FAST, store, source=canvas_source(url))
        cursors = StateStore(topics, CURSORS)
        await cursors.restore()
        await _cycle(PollerRunner(poller, producer, cursors, interval=0.05))

    published = await events_of(topics, CANVAS_GRADE_CHANGES, tenant)
    by_request = {e.payload(CanvasGradeChangedV1).request_id: e for e in published}
    assert len(published) == 6 == len(by_request)
    for written in writes:
        event = by_request[written.request_id]
        p = event.payload(CanvasGradeChangedV1)
        assert (p.grader_id, p.course_id, p.assignment_id, p.student_id) == ("1", course, lab, written.value.user_id)
        assert event.subject == f"{tenant}/grade/{course}/{lab}/{written.value.user_id}"
        assert not p.anonymous
    excused = by_request[writes[2].request_id].payload(CanvasGradeChangedV1)
    assert (excused.grade_before, excused.excused_after) == ("8", True)
    assert by_request[writes[1].request_id].payload(CanvasGradeChangedV1).student_sis_id == "S-1"
    hidden = by_request[anonymous.request_id]
    flagged = hidden.payload(CanvasGradeChangedV1)
    assert (flagged.anonymous, flagged.student_id, flagged.grade_after) == (True, None, "4")
    assert hidden.subject == f"{tenant}/grade/{course}/{quiz}/anonymous"
    assert by_request[teacher["request_id"]].payload(CanvasGradeChangedV1).grader_id == "77"
    assert bulk.request_id not in by_request, "the bulk job writes under a request id of its own"


# --- the real worker, OAuth2 tokens expiring mid-run ----------------------------------------------


def test_worker_refreshes_an_expiring_token_mid_run_without_a_failed_poll(
    canvas: tuple[CanvasSimulator, str], kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    sim, url = canvas
    tenant = f"t{unique}"
    control(url, "PUT", "/_sim/oauth", {"access_token_lifetime": 2})
    refresh = sim.oauth.add_refresh_token(1)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        course = http.post("/api/v1/accounts/1/courses", data={"course[name]": "Bio", "offer": "true"}).json()["id"]
        student = http.post("/api/v1/accounts/1/users", data={"pseudonym[unique_id]": "s1"}).json()["id"]
        http.post(f"/api/v1/courses/{course}/enrollments",
                  data={"enrollment[user_id]": str(student), "enrollment[enrollment_state]": "active"})
        lab = http.post(f"/api/v1/courses/{course}/assignments",
                        data={"assignment[name]": "Lab", "assignment[points_possible]": "100"}).json()["id"]
    config = tmp_path / "edusync.yaml"
    log = tmp_path / "worker.log"
    config.write_text(f"""\
kafka:
  bootstrap_servers: {kafka_bootstrap}
  consumer_group_prefix: test{unique}
ops:
  port: {free_port()}
runtime:
  paused_retry_seconds: 1
  shutdown_grace_seconds: 10
tenants:
  - id: {tenant}
    systems:
      canvas:
        base_url: {url}
        oauth:
          client_id: "{sim.oauth.config.client_id}"
          client_secret: ${{CANVAS_SECRET}}
          refresh_token: ${{CANVAS_REFRESH}}
          refresh_margin_seconds: 0
    flows:
      canvas_audit:
        lag_seconds: 1
        overlap_seconds: 10
        initial_lookback_seconds: 600
        course_events_interval_seconds: 0.3
        grade_changes_interval_seconds: 0.3
        grade_course_ids: ["{course}"]
""")
    env = {**os.environ, "CANVAS_SECRET": sim.oauth.config.client_secret, "CANVAS_REFRESH": refresh}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(config)], env=env,
                                stdout=out, stderr=out)
    try:
        request_ids = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for score in range(1, 13):  # six seconds of grading: three token lifetimes (refreshed before expiry)
                answer = http.put(f"/api/v1/courses/{course}/assignments/{lab}/submissions/{student}",
                                  data={"submission[posted_grade]": str(score)})
                answer.raise_for_status()
                request_ids.append(answer.headers["x-request-context-id"])
                if score % 4 == 0:  # and now and then a token dies before its time (revoked, clock skew)
                    control(url, "POST", "/_sim/oauth/expire")
                time.sleep(0.5)
        deadline = time.monotonic() + 60
        while True:
            published = anyio.run(events_of, kafka_bootstrap, CANVAS_GRADE_CHANGES, tenant)
            seen = [e.payload(CanvasGradeChangedV1).request_id for e in published]
            if set(request_ids) <= set(seen):
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"missing grade events; log:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        assert sorted(seen) == sorted(request_ids), "each grade change once"
        courses = anyio.run(events_of, kafka_bootstrap, CANVAS_COURSE_EVENTS, tenant)
        assert {e.payload(CanvasCourseEventV1).event_type for e in courses} >= {"created", "published"}
        # The expiries above may fall before the worker's first poll, or just before a token's own
        # end (then the worker refreshes ahead and Canvas never answers 401): expire until one bites.
        deadline = time.monotonic() + 30
        while sim.stats.count(status=401) == 0:
            assert time.monotonic() < deadline, f"no poll met an expired token; log:\n{log.read_text()[-3000:]}"
            control(url, "POST", "/_sim/oauth/expire")
            time.sleep(0.7)
        time.sleep(1.0)  # the poll after the 401 runs on a refreshed token
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "poll failed" not in text, text[-3000:]
    assert text.count("canvas access token refreshed") >= 3, "the token expired and was refreshed mid-run"
    assert sim.stats.count(status=401) >= 1, "Canvas refused an expired token, and the refresh made up for it"
