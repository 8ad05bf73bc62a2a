"""``edusync run`` with an Illuminate tenant: the wiring publishes snapshot and score events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio

from deploy.local_kafka import free_port
from schemas.envelope import CloudEvent
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from simulators.server import ThreadedServer
from tests.kafka_tools import read_topic
from worker.topics import ILLUMINATE_ASSESSMENT_SCORES, illuminate_topic


def _students_published(bootstrap: str, tenant: str) -> Counter[str]:
    records = anyio.run(read_topic, bootstrap, illuminate_topic("students"))
    events = [CloudEvent.from_bytes(r.value) for r in records]
    return Counter(e.type for e in events if e.tenant == tenant)


def test_run_with_an_illuminate_tenant_publishes_each_student_once(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    sim = IlluminateSimulator()
    sim.seed(SeedSpec(students=300, staff=20, courses=5, seed=3))
    tenant = f"t{unique}"
    c = DEFAULT_CREDENTIALS
    with ThreadedServer(sim.app) as server:
        cfg = tmp_path / "edusync.yaml"
        cfg.write_text(f"""\
kafka:
  bootstrap_servers: {kafka_bootstrap}
ops:
  port: {free_port()}
tenants:
  - id: {tenant}
    systems:
      illuminate:
        base_url: {server.url}/live/rest_server.php
        consumer_key: {c.consumer_key}
        consumer_secret: ${{ILL_CONSUMER_SECRET}}
        token: {c.token}
        token_secret: ${{ILL_TOKEN_SECRET}}
    flows:
      illuminate_changes:
        poll_interval_seconds: 1
""")
        env = {**os.environ, "ILL_CONSUMER_SECRET": c.consumer_secret, "ILL_TOKEN_SECRET": c.token_secret}
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(cfg)],
                                    env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 120
            while sum(_students_published(kafka_bootstrap, tenant).values()) < 300:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
            time.sleep(3)  # a second walk finds nothing new
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert _students_published(kafka_bootstrap, tenant) == Counter({"edusync.illuminate.student.upserted.v1": 300})
    scores = anyio.run(read_topic, kafka_bootstrap, ILLUMINATE_ASSESSMENT_SCORES)
    assert any(CloudEvent.from_bytes(r.value).tenant == tenant for r in scores)
    assert c.consumer_secret not in log.read_text() and c.token_secret not in log.read_text()
