"""``edusync holds show|approve|reject`` with the real Illuminate simulator, Kafka and worker: a
mass withdrawal is held back by the snapshot guard; approval publishes exactly those deletions
once; rejection publishes none, keeps the records and is not asked again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from deploy.local_kafka import free_port
from schemas.envelope import CloudEvent
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from simulators.server import ThreadedServer
from tests.kafka_tools import read_topic
from tests.operator_tools import error_lines
from worker.kafka.errors import BrokerUnavailableError
from worker.poller_frame import cursor_key
from worker.state_store import StateStore
from worker.topics import CURSORS, illuminate_topic

pytestmark = pytest.mark.slow(110)

POLLER = "illuminate.students"
STUDENTS, WITHDRAWN = 200, 50


class IlluminateBench:
    """The Illuminate simulator and an ``edusync run`` worker polling its students."""

    def __init__(self, bootstrap: str, tmp: Path, unique: str) -> None:
        self.bootstrap = bootstrap
        self.tenant = f"t{unique}"
        self.sim = IlluminateSimulator()
        self.sim.seed(SeedSpec(students=STUDENTS, staff=5, courses=3, seed=4))
        self.server = ThreadedServer(self.sim.app).start()
        c = DEFAULT_CREDENTIALS
        self.env = {**os.environ, "ILL_CONSUMER_SECRET": c.consumer_secret, "ILL_TOKEN_SECRET": c.token_secret}
        self.config = tmp / "edusync.yaml"
        self.config.write_text(f"""\
kafka:
  bootstrap_servers: {bootstrap}
  consumer_group_prefix: test{unique}
ops:
  port: {free_port()}
runtime:
  shutdown_grace_seconds: 10
tenants:
  - id: {self.tenant}
    systems:
      illuminate:
        base_url: {self.server.url}/live/rest_server.php
        consumer_key: {c.consumer_key}
        consumer_secret: ${{ILL_CONSUMER_SECRET}}
        token: {c.token}
        token_secret: ${{ILL_TOKEN_SECRET}}
    flows:
      illuminate_changes:
        poll_interval_seconds: 0.5
        snapshot_entities: [students]
        score_endpoints: []
""")
        self.log = tmp / "worker.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         env=self.env, stdout=out, stderr=out)

    def edusync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "worker", *args, "--config", str(self.config)],
                              capture_output=True, text=True, timeout=120, env=self.env)

    def holds(self, action: str) -> dict[str, Any]:
        result = self.edusync("holds", action, "--poller", f"{self.tenant}/{POLLER}", "--json")
        assert result.returncode == 0, result.stderr[-2000:]
        return dict(json.loads(result.stdout))

    def events(self) -> list[CloudEvent]:
        try:
            records = anyio.run(read_topic, self.bootstrap, illuminate_topic("students"))
        except BrokerUnavailableError:
            return []  # the worker has not created the topic yet (a young broker)
        return [e for e in (CloudEvent.from_bytes(r.value) for r in records) if e.tenant == self.tenant]

    def deleted(self) -> list[str]:
        return [e.subject.rsplit("/", 1)[1] for e in self.events() if e.type.endswith(".deleted.v1")]

    def cursor(self) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            store = StateStore(self.bootstrap, CURSORS, tenant=self.tenant)
            await store.restore()
            return dict(store.get(cursor_key(self.tenant, POLLER)) or {})
        return anyio.run(read)

    def wait(self, what: str, check: Any, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := check()):
            assert self.proc.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"{what}\n{self.tail()}"
            time.sleep(0.5)
        return value

    def walks_later(self, walks: int) -> None:
        """Return once the poller completed ``walks`` more walks."""
        start = int(self.cursor().get("completed_walks", 0))
        self.wait(f"{walks} more walks", lambda: int(self.cursor().get("completed_walks", 0)) >= start + walks)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_bytes().splitlines():
            try:
                out.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
        return out

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.server.stop()


@pytest.fixture
def bench(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[IlluminateBench]:
    b = IlluminateBench(kafka_bootstrap, tmp_path, unique)
    try:
        yield b
    finally:
        b.close()


def withdraw_and_hold(bench: IlluminateBench) -> set[str]:
    """Publish the district, withdraw a quarter of it, and wait for the guard to hold that back."""
    bench.wait("initial sync", lambda: len(bench.events()) >= STUDENTS)
    response = httpx.post(f"{bench.server.url}/_sim/mutate", json={"kind": "withdraw", "count": WITHDRAWN, "seed": 2},
                          timeout=30)
    gone = set(response.json()["deleted"]["students"])
    assert len(gone) == WITHDRAWN
    shown = bench.wait("a hold", lambda: (h := bench.holds("show"))["held"] and h)
    assert shown["entity"] == "students" and shown["count"] == WITHDRAWN and shown["stored"] == STUDENTS
    assert shown["share"] == WITHDRAWN / STUDENTS
    assert set(shown["sample"]) <= gone and len(shown["sample"]) == 10
    assert all(isinstance(shown[k], int) for k in ("held", "count", "stored", "walk"))
    # Ids only: no name of any student, held or not, is in what an operator is shown.
    result = bench.edusync("holds", "show", "--poller", f"{bench.tenant}/{POLLER}")
    names = {s.last_name for s in bench.sim.district.students.rows.values()} | {"@"}
    assert not any(name in result.stdout for name in names), result.stdout
    assert bench.deleted() == []
    return gone


def test_approve_publishes_exactly_the_held_deletions_once(bench: IlluminateBench) -> None:
    gone = withdraw_and_hold(bench)
    approved = bench.holds("approve")
    assert approved == {"poller": f"{bench.tenant}/{POLLER}", "decision": "approve", "entity": "students",
                        "count": WITHDRAWN, "requested": True}
    bench.wait("the approved deletions", lambda: len(bench.deleted()) >= WITHDRAWN)
    bench.walks_later(2)
    deleted = bench.deleted()
    assert sorted(deleted) == sorted(gone), "exactly the held deletions, each once"
    assert len({e.id for e in bench.events()}) == len(bench.events())
    assert bench.holds("show")["held"] == 0
    decided = [line for line in bench.lines() if line.get("event") == "held deletions approved: published"]
    assert len(decided) == 1 and decided[0]["count"] == WITHDRAWN and decided[0]["requested_by"]


def test_reject_publishes_nothing_keeps_the_records_and_is_not_asked_again(bench: IlluminateBench) -> None:
    withdraw_and_hold(bench)
    rejected = bench.holds("reject")
    assert rejected["decision"] == "reject" and rejected["count"] == WITHDRAWN
    bench.wait("the rejection", lambda: any(line.get("event") == "held deletions rejected: records kept"
                                            for line in bench.lines()))
    at = len(bench.lines())
    bench.walks_later(3)
    assert bench.deleted() == [], "a rejected deletion is never published"
    assert bench.holds("show")["held"] == 0
    assert not any(line.get("event", "").startswith("mass deletion held back") for line in bench.lines()[at:]), \
        "the same upstream state is not held again"
    # Restarted, the poller still remembers the rejection (it lives in the snapshot store).
    bench.proc.send_signal(signal.SIGTERM)
    assert bench.proc.wait(timeout=60) == 0
    with bench.log.open("ab") as out:
        bench.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(bench.config)],
                                      env=bench.env, stdout=out, stderr=out)
    at = len(bench.lines())
    bench.walks_later(2)
    assert bench.deleted() == [] and bench.holds("show")["held"] == 0
    assert not any(line.get("event", "").startswith("mass deletion held back") for line in bench.lines()[at:])


def test_a_poller_without_a_guard_and_nothing_held_are_one_line_errors(bench: IlluminateBench) -> None:
    for args, message in ((("holds", "approve", "--poller", f"{bench.tenant}/{POLLER}"), "holds no deletions back"),
                          (("holds", "show", "--poller", f"{bench.tenant}/nope"), "unknown poller")):
        result = bench.edusync(*args)
        assert result.returncode == 2, result
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and message in lines[0], result.stderr
