"""Several replicas of one configuration on the real broker: poller ownership through group
membership, failover after SIGKILL, a replica added later, namespaces side by side, and one
AB Connect account's budget shared by two replicas."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from schemas.canvas import CanvasGradeChangedV1
from schemas.envelope import CloudEvent
from simulators.canvas import CanvasSimulator, ThrottleConfig, create_app
from simulators.server import ThreadedServer
from tests.kafka_tools import read_topic
from tests.replicas import Replica, spread_tenants
from tests.standards_env import CANVAS_TOKEN, PARTNER_KEY, StandardsEnv
from worker.kafka.connection import KafkaConnection
from worker.topics import CANVAS_COURSE_EVENTS, CANVAS_GRADE_CHANGES

pytestmark = pytest.mark.slow(150)

TOKEN = "replicas-canvas-token-0123"
STEADY = ("ProducerFenced", "component failed; restarting")


@pytest.fixture
def canvas() -> Iterator[tuple[CanvasSimulator, str]]:
    sim = CanvasSimulator(tokens={TOKEN: 1}, throttle=ThrottleConfig(enabled=False))
    with ThreadedServer(create_app(sim)) as srv:
        yield sim, srv.url


class Grader:
    """Grades one student per course in a background thread, remembering each change's request id."""

    def __init__(self, url: str, courses: dict[str, tuple[int, int, int]]) -> None:
        self.url = url
        self.courses = courses  # tenant -> (course, assignment, student)
        self.request_ids: dict[str, list[str]] = {t: [] for t in courses}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Grader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        score = 0
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as http:
            while not self._stop.is_set():
                for tenant, (course, assignment, student) in self.courses.items():
                    score += 1
                    answer = http.put(f"/api/v1/courses/{course}/assignments/{assignment}/submissions/{student}",
                                      data={"submission[posted_grade]": str(score % 100)})
                    answer.raise_for_status()
                    self.request_ids[tenant].append(answer.headers["x-request-context-id"])
                self._stop.wait(0.5)


def make_courses(url: str, tenants: list[str]) -> dict[str, tuple[int, int, int]]:
    """One course per tenant with a student and an assignment to grade."""
    out = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for tenant in tenants:
            course = http.post("/api/v1/accounts/1/courses",
                               data={"course[name]": tenant, "offer": "true"}).json()["id"]
            student = http.post("/api/v1/accounts/1/users", data={"pseudonym[unique_id]": f"s-{tenant}"}).json()["id"]
            http.post(f"/api/v1/courses/{course}/enrollments",
                      data={"enrollment[user_id]": str(student), "enrollment[enrollment_state]": "active"})
            lab = http.post(f"/api/v1/courses/{course}/assignments",
                            data={"assignment[name]": "Lab", "assignment[points_possible]": "100"}).json()["id"]
            out[tenant] = (course, lab, student)
    return out


def audit_config(path: Path, bootstrap: str, url: str, prefix: str, courses: dict[str, tuple[int, int, int]],
                 namespace: str = "edusync") -> Path:
    tenants = "".join(f"""\
  - id: {tenant}
    systems:
      canvas: {{base_url: "{url}", token: "{TOKEN}"}}
    flows:
      canvas_audit:
        lag_seconds: 1
        overlap_seconds: 10
        initial_lookback_seconds: 600
        course_events_interval_seconds: 0.5
        grade_changes_interval_seconds: 0.5
        grade_course_ids: ["{course}"]
""" for tenant, (course, _, _) in courses.items())
    path.write_text(f"""\
kafka:
  bootstrap_servers: {bootstrap}
  namespace: {namespace}
  consumer_group_prefix: {prefix}
  session_timeout_seconds: 6
ops:
  port: 0
runtime:
  shutdown_grace_seconds: 10
tenants:
{tenants}""")
    return path


def wait_for(check: object, what: str, replicas: list[Replica], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        for r in replicas:
            assert r.alive, f"{r.name} exited:\n{r.text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}; " + "; ".join(
            f"{r.name} owns {r.owned()}" for r in replicas)
        time.sleep(0.5)


def ownership(replicas: list[Replica]) -> dict[str, list[str]]:
    return {r.name: r.owned() for r in replicas if r.alive}


def exactly_shared(replicas: list[Replica], tenants: list[str]) -> bool:
    owned = [t for ts in ownership(replicas).values() for t in ts]
    return sorted(owned) == sorted(tenants)


async def grade_events(kafka: str | KafkaConnection) -> list[CloudEvent]:
    return [CloudEvent.from_bytes(r.value) for r in await read_topic(kafka, CANVAS_GRADE_CHANGES)]


def test_replicas_share_pollers_fail_over_after_sigkill_and_publish_each_change_once(
    canvas: tuple[CanvasSimulator, str], kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    sim, url = canvas
    # Tenants spread so that r2 (killed) and r4 (added later) surely own some.
    tenants = spread_tenants(f"t{unique}x", 6, [["r1", "r2", "r3"], ["r1", "r3", "r4"]])
    courses = make_courses(url, tenants)
    config = audit_config(tmp_path / "edusync.yaml", kafka_bootstrap, url, f"test{unique}", courses)
    r1, r2, r3, r4 = (Replica(n, config, tmp_path) for n in ("r1", "r2", "r3", "r4"))
    group = [r1.start(), r2.start(), r3.start()]
    try:
        wait_for(lambda: exactly_shared(group, tenants) and all(r.owned() for r in group),
                 "three replicas to share the tenants", group)
        with Grader(url, courses) as grader:
            time.sleep(8)  # steady state: three replicas, every poller running once
            for r in group:
                for marker in STEADY:
                    assert marker not in r.text(), f"{r.name} in steady state:\n{r.text()[-3000:]}"
            moved = r2.owned()
            killed_at = r2.kill()
            survivors = [r1, r3]
            wait_for(lambda: exactly_shared(survivors, tenants), "the survivors to take r2's tenants", survivors)
            takeover = max(min(a for r in survivors if (a := r.assigned_at(t, killed_at)) is not None)
                           for t in moved)
            print(f"r2's tenants {moved} resumed elsewhere {takeover - killed_at:.1f}s after SIGKILL "
                  f"(session timeout 6s, poll interval 0.5s)")
            group = [r1, r3, r4.start()]
            wait_for(lambda: exactly_shared(group, tenants) and bool(r4.owned()), "r4 to take a share", group)
            time.sleep(3)
        # Every grade change published once: count ids with read_committed.
        deadline = time.monotonic() + 90
        while True:
            events = anyio.run(grade_events, kafka_bootstrap)
            seen = Counter(e.payload(CanvasGradeChangedV1).request_id for e in events)
            wanted = [rid for ids in grader.request_ids.values() for rid in ids]
            if all(seen[rid] for rid in wanted):
                break
            assert time.monotonic() < deadline, f"{sum(not seen[r] for r in wanted)} of {len(wanted)} changes missing"
            time.sleep(1)
        assert len(wanted) > 50, "the changes went on through the kill and the join"
        assert [rid for rid in wanted if seen[rid] != 1] == [], "each grade change exactly once"
        ids = Counter(e.id for e in events)
        assert [i for i, n in ids.items() if n > 1] == [], "no CloudEvent id twice"
        by_tenant = {t: {e.payload(CanvasGradeChangedV1).request_id for e in events if e.subject.startswith(f"{t}/")}
                     for t in tenants}
        for tenant in tenants:
            assert set(grader.request_ids[tenant]) <= by_tenant[tenant], f"{tenant}'s changes under its own subject"
        course_ids = Counter(e.id for e in [CloudEvent.from_bytes(r.value) for r in
                                            anyio.run(read_topic, kafka_bootstrap, CANVAS_COURSE_EVENTS)])
        assert [i for i, n in course_ids.items() if n > 1] == []
        for r in group:
            for marker in STEADY:
                assert marker not in r.text(), f"{r.name}: {marker}:\n{r.text()[-3000:]}"
    finally:
        codes = {r.name: r.stop() for r in (r1, r3, r4) if r.proc is not None}
    assert set(codes.values()) == {0}, codes
    assert sim.stats.count(status=401) == 0


def test_two_namespaces_on_one_broker_see_none_of_each_others_events(
    canvas: tuple[CanvasSimulator, str], kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    _, url = canvas
    # The same tenant id and group prefix in both: only the namespace keeps them apart.
    tenant = f"t{unique}"
    a_courses = make_courses(url, [tenant])
    b_courses = {tenant: make_courses(url, [f"{tenant}b"])[f"{tenant}b"]}
    a_ns, b_ns = f"nsa{unique}", f"nsb{unique}"
    a = Replica("a", audit_config(tmp_path / "a.yaml", kafka_bootstrap, url, "edusync", a_courses, a_ns), tmp_path)
    b = Replica("b", audit_config(tmp_path / "b.yaml", kafka_bootstrap, url, "edusync", b_courses, b_ns), tmp_path)
    a.start(), b.start()
    try:
        wait_for(lambda: a.owned() == [tenant] and b.owned() == [tenant], "each deployment to own its tenant", [a, b])
        with Grader(url, a_courses) as grade_a, Grader(url, b_courses) as grade_b:
            time.sleep(4)
        a_ids, b_ids = set(grade_a.request_ids[tenant]), set(grade_b.request_ids[tenant])
        deadline = time.monotonic() + 60
        while True:
            seen_a = {e.payload(CanvasGradeChangedV1).request_id
                      for e in anyio.run(grade_events, KafkaConnection(kafka_bootstrap, namespace=a_ns))}
            seen_b = {e.payload(CanvasGradeChangedV1).request_id
                      for e in anyio.run(grade_events, KafkaConnection(kafka_bootstrap, namespace=b_ns))}
            if a_ids <= seen_a and b_ids <= seen_b:
                break
            assert time.monotonic() < deadline, "each deployment publishes its own changes"
            time.sleep(1)
        assert a_ids and b_ids
        assert not seen_a & b_ids and not seen_b & a_ids, "neither sees the other's grade changes"
        for r in (a, b):
            assert "ProducerFenced" not in r.text(), r.text()[-3000:]
    finally:
        codes = [a.stop(), b.stop()]
    assert codes == [0, 0]


def test_two_replicas_on_one_abconnect_account_keep_to_its_five_requests_a_second(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    # The reconcile re-reads the whole catalogue every second: far more than 5 requests/s of work.
    env = StandardsEnv(kafka_bootstrap, tmp_path, unique, reconcile_seconds=1.0)
    try:
        env.seed(documents=6, standards=120)
        text = env.config.read_text()
        env.config.write_text(text.replace(f"port: {env.ops_port}", "port: 0"))
        secrets = {"AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN}
        pair = [Replica(n, env.config, tmp_path, secrets).start() for n in ("a1", "a2")]
        try:
            wait_for(lambda: sum(len(r.owned()) for r in pair) == 1, "one replica to own the tenant", pair)
            started = time.monotonic()
            before = env.ab.stats()
            time.sleep(25)
            after = env.ab.stats()
            elapsed = time.monotonic() - started
            assert env.wait_converged(timeout=120).ok, "Canvas holds the catalogue once, no duplicates"
        finally:
            codes = [r.stop() for r in pair]
        assert codes == [0, 0]
        requests = after["requests"] - before["requests"]
        print(f"two replicas: {requests} AB Connect requests in {elapsed:.0f}s ({requests / elapsed:.2f}/s), "
              f"{after['throttled']} answered 429")
        assert after["throttled"] == 0, "together within the account's 5 requests/s: no 429"
        assert requests <= 5 * elapsed + 25, "within the documented rate and burst"
        for r in pair:
            assert "rate budgets split across replicas" in r.text(), f"{r.name} learnt it has company"
            assert "ProducerFenced" not in r.text(), r.text()[-3000:]
        waits = [line for r in pair for line in r.lines() if line.get("event") == "rate budgets split across replicas"]
        assert {line["replicas"] for line in waits} >= {2}
        # Only the tenant's owner spends the account, so it is not divided: the owner has all 5/s.
        for r in pair:
            shared = [line for line in r.lines() if line.get("event") == "rate budget shared"
                      and str(line.get("account", "")).startswith("abconnect|")]
            assert shared and shared[-1]["replicas"] == 1, f"{r.name}: {shared}"
    finally:
        env.close()
