"""The standards flow's test bench: AB Connect and Canvas simulators on loopback and the real
``edusync run`` worker as a subprocess against the session's Kafka broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

from deploy.local_kafka import free_port
from schemas.dead_letter import DeadLetter
from simulators.abconnect import ABConnectSimulator, MutateRequest, SeedRequest
from simulators.abconnect import create_app as ab_app
from simulators.canvas import CanvasSimulator, ThrottleConfig
from simulators.canvas import create_app as canvas_app
from simulators.faults import FaultInjector
from simulators.server import ThreadedServer
from simulators.standards_convergence import ConvergenceReport, compare
from tests.kafka_tools import read_topic
from worker.topics import dlq_topic

PARTNER, PARTNER_KEY, CANVAS_TOKEN = "district-a", "ab-partner-key-0123456789", "canvas-token-0123456789"


class StandardsEnv:
    """Two simulators plus a restartable worker process for one tenant."""

    def __init__(self, bootstrap: str, tmp: Path, unique: str, *, canvas_leak_rate: float = 400.0) -> None:
        self.bootstrap = bootstrap
        self.tenant = f"t{unique}"
        self.group_prefix = f"test{unique}"
        self.ab = ABConnectSimulator({PARTNER: PARTNER_KEY})
        self.canvas = CanvasSimulator(
            tokens={CANVAS_TOKEN: 1}, throttle=ThrottleConfig(capacity=700, leak_rate=canvas_leak_rate)
        )
        self.ab_faults = FaultInjector()
        self._ab_server = ThreadedServer(ab_app(self.ab, self.ab_faults)).start()
        self._canvas_server = ThreadedServer(canvas_app(self.canvas)).start()
        self.ops_port = free_port()
        self.config = tmp / "edusync.yaml"
        self.log = tmp / "worker.log"
        self.config.write_text(f"""\
kafka:
  bootstrap_servers: {bootstrap}
  consumer_group_prefix: {self.group_prefix}
  broker_patience_seconds: 30
ops:
  port: {self.ops_port}
tenants:
  - id: {self.tenant}
    abconnect:
      base_url: {self._ab_server.url}/rest/v4.1
      partner_id: {PARTNER}
      partner_key: ${{AB_KEY}}
      poll_interval_seconds: 0.5
    canvas:
      base_url: {self._canvas_server.url}
      token: ${{CANVAS_TOKEN}}
      account_id: "1"
""")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ab_url(self) -> str:
        return self._ab_server.url

    def seed(self, documents: int, standards: int, sections: int = 4, seed: int = 1) -> dict[str, Any]:
        return self.ab.seed(SeedRequest(documents=documents, standards_per_document=standards,
                                        sections_per_document=sections, seed=seed))

    def mutate(self, kind: str, count: int = 1, seed: int | None = None, **guids: str) -> dict[str, Any]:
        return self.ab.mutate(MutateRequest(kind=kind, count=count, seed=seed, **guids))  # type: ignore[arg-type]

    def start_worker(self) -> None:
        env = {**os.environ, "AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         env=env, stdout=log, stderr=log)

    def kill_worker(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop_worker(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def report(self) -> ConvergenceReport:
        return compare(self.ab.snapshot(PARTNER), self.canvas.snapshot())

    def wait_converged(self, timeout: float = 180) -> ConvergenceReport:
        """Poll until Canvas matches AB Connect (and stays so for a second)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.report()
            if report.ok:
                time.sleep(1.0)
                report = self.report()
                if report.ok:
                    return report
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not converged: {report.summary()}\n{self.log_tail()}")
            time.sleep(0.5)

    def metric(self, name: str, **labels: str) -> float:
        """One sample from the worker's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.ops_port}/metrics", timeout=5).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                head, _, value = line.rpartition(" ")
                got = head[len(name):].strip("{}")
                if all(part in got.split(",") for part in want.split(",") if part):
                    return float(value)
        return 0.0

    def dead_letters(self) -> list[DeadLetter]:
        """This tenant's dead letters (the topic is shared by every test of the session)."""
        records = anyio.run(read_topic, self.bootstrap, dlq_topic("standards_to_canvas"))
        letters = [DeadLetter.model_validate(orjson.loads(r.value)) for r in records]
        return [d for d in letters if (d.original.key or "").startswith(f"{self.tenant}/")]

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""

    def close(self) -> None:
        self.kill_worker()
        self._ab_server.stop()
        self._canvas_server.stop()
