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
from simulators.hostile_proxy import HostileProxy
from simulators.server import ThreadedServer
from simulators.standards_convergence import ConvergenceReport, compare
from tests.kafka_tools import read_topic
from worker.poller_frame import cursor_key
from worker.pollers.abconnect_events import POLLER_NAME
from worker.state_store import StateStore
from worker.topics import CURSORS, dlq_topic

PARTNER, PARTNER_KEY, CANVAS_TOKEN = "district-a", "ab-partner-key-0123456789", "canvas-token-0123456789"


class StandardsEnv:
    """Two simulators plus a restartable worker process for one tenant."""

    def __init__(self, bootstrap: str, tmp: Path, unique: str, *, canvas_leak_rate: float = 400.0,
                 hostile: bool = False, reconcile_seconds: float = 86_400.0) -> None:
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
        # With ``hostile``, AB Connect is reached through a proxy that can misbehave on demand,
        # and its client gives up quickly (a 3 s deadline per attempt, two attempts, 8 MiB pages).
        self.proxy = HostileProxy(self._ab_server.url) if hostile else None
        self._proxy_server = ThreadedServer(self.proxy.app()).start() if self.proxy else None
        ab_url = self._proxy_server.url if self._proxy_server else self._ab_server.url
        ab_http = ("\n        http: {request_deadline_seconds: 3, max_attempts: 2, retry_after_cap_seconds: 60, "
                   "max_response_bytes: 8388608}") if hostile else ""
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
runtime:
  paused_retry_seconds: 1
  shutdown_grace_seconds: 10
tenants:
  - id: {self.tenant}
    systems:
      abconnect:
        base_url: {ab_url}/rest/v4.1
        partner_id: {PARTNER}
        partner_key: ${{AB_KEY}}{ab_http}
      canvas:
        base_url: {self._canvas_server.url}
        token: ${{CANVAS_TOKEN}}
        account_id: "1"
    flows:
      standards:
        poll_interval_seconds: 0.5
        reconcile_interval_seconds: {reconcile_seconds}
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

    def start_worker(self, *, ab_key: str = PARTNER_KEY, canvas_token: str = CANVAS_TOKEN) -> None:
        env = {**os.environ, "AB_KEY": ab_key, "CANVAS_TOKEN": canvas_token}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         env=env, stdout=log, stderr=log)

    def kill_worker(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop_worker(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code; ``subprocess.TimeoutExpired`` if it takes over ``timeout``."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def cursor(self) -> dict[str, Any] | None:
        """The AB events poller's committed cursor."""
        async def read() -> dict[str, Any] | None:
            store = StateStore(self.bootstrap, CURSORS)
            await store.restore()
            return store.get(cursor_key(self.tenant, POLLER_NAME))  # type: ignore[no-any-return]

        return anyio.run(read)

    def log_lines(self, since: int = 0) -> list[dict[str, Any]]:
        """The worker's JSON log lines, from byte offset ``since``."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        out = []
        for line in text.splitlines():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return out

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

    def __enter__(self) -> StandardsEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.kill_worker()
        if self._proxy_server:
            self._proxy_server.stop()
        self._ab_server.stop()
        self._canvas_server.stop()
