"""The roster flow's test bench: the Illuminate simulator and one or more target simulators on
loopback, and the real ``edusync run`` worker as a subprocess against the session's Kafka broker.

A target (``ClassTarget`` here; Canvas and MatrixLMS in their own modules) brings its simulator,
its ``systems:`` section, its flow and its convergence check; ``RosterEnv`` assembles them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx
import orjson

from deploy.local_kafka import free_port
from schemas.dead_letter import DeadLetter
from simulators.classroom import DEMO_SECRET, ApiKey, ClassSimulator
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from simulators.roster_projection import RosterProjection, RosterReport
from simulators.roster_targets import ClassRosterTarget
from simulators.server import ThreadedServer
from tests.kafka_tools import read_topic
from worker.topics import dlq_topic

# The suite's district: a tenth of the bench's (20,000 students, 1,836 sections, 55,080 rows).
SMALL_DISTRICT = SeedSpec(sites=3, students=2000, staff=80, courses=15, sections_per_course=12,
                          students_per_section=30, assessments=1, seed=7)
# For tests about order or one record's fate rather than volume: 400 students, 36 sections.
QUICK_DISTRICT = SeedSpec(sites=2, students=400, staff=20, courses=6, sections_per_course=6,
                          students_per_section=25, assessments=0, seed=9)
# Single-record cases: 40 students, 6 sections.
TINY_DISTRICT = SeedSpec(sites=2, students=40, staff=6, courses=2, sections_per_course=3, students_per_section=8,
                         assessments=0, seed=11)


class RosterTarget(Protocol):
    """One target system of the roster flow, as the bench drives it."""

    flow: str
    handler: str

    def system_yaml(self) -> str:
        """Its ``systems:`` entry, indented for a tenant (secrets as ``${ENV}``)."""
        ...

    def environment(self) -> dict[str, str]:
        """The secrets its section names."""
        ...

    def report(self, projection: RosterProjection) -> RosterReport:
        """How it differs from ``projection``."""
        ...

    def writes(self) -> int:
        """Write calls it has answered so far."""
        ...

    def close(self) -> None:
        """Stop its server."""
        ...


class ClassTarget(ClassRosterTarget):
    """The Class simulator as a roster target (a key with ``scopes``, default all)."""

    def __init__(self, scopes: list[str] | None = None) -> None:
        keys = {DEMO_SECRET: ApiKey() if scopes is None else ApiKey(scopes=scopes)}
        super().__init__(ClassSimulator(keys=keys, examples=False))

    def writes(self) -> int:
        """Every method but GET."""
        stats = httpx.get(f"{self.server.url}/_sim/stats", timeout=10).json()
        return sum(n for kind, by_status in stats["requests"].items() if not kind.startswith("GET")
                   for n in by_status.values())

    def set_faults(self, **faults: Any) -> None:
        """Faults on the Class API (``/_sim/faults``)."""
        httpx.post(f"{self.server.url}/_sim/faults", json=faults, timeout=10).raise_for_status()


class RosterEnv:
    """Illuminate and the roster targets for one tenant, plus a restartable worker process."""

    def __init__(self, bootstrap: str, tmp: Path, unique: str, *, targets: Sequence[RosterTarget] | None = None,
                 seed: SeedSpec = SMALL_DISTRICT, entities: list[str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.tmp = tmp
        self.tenant = f"t{unique}"
        self.group_prefix = f"test{unique}"
        self.illuminate = IlluminateSimulator()
        self.illuminate.seed(seed)
        self._ill_server = ThreadedServer(self.illuminate.app).start()
        self.targets = list(targets) if targets is not None else [ClassTarget()]
        self.ops_port = free_port()
        self.config = tmp / "edusync.yaml"
        self.log = tmp / "worker.log"
        self.write_config(entities)
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, entities: list[str] | None = None) -> None:
        """The worker's configuration; ``entities`` limits the Illuminate snapshot pollers."""
        c = DEFAULT_CREDENTIALS
        only = f"\n        snapshot_entities: [{', '.join(entities)}]" if entities else ""
        handlers = "".join(f"  {t.handler}:\n    max_defer_seconds: 600\n" for t in self.targets)
        systems = "".join(t.system_yaml() for t in self.targets)
        # A target may carry flow settings (``flow_settings``, inline YAML); the default is none.
        flows = "".join(f"      {t.flow}: {getattr(t, 'flow_settings', '{}')}\n" for t in self.targets)
        self.config.write_text(f"""\
kafka:
  bootstrap_servers: {self.bootstrap}
  consumer_group_prefix: {self.group_prefix}
  broker_patience_seconds: 30
ops:
  port: {self.ops_port}
runtime:
  paused_retry_seconds: 1
  shutdown_grace_seconds: 10
handlers:
{handlers}tenants:
  - id: {self.tenant}
    systems:
      illuminate:
        base_url: {self._ill_server.url}/live/rest_server.php
        consumer_key: {c.consumer_key}
        consumer_secret: ${{ILL_CONSUMER_SECRET}}
        token: {c.token}
        token_secret: ${{ILL_TOKEN_SECRET}}
{systems}    flows:
      illuminate_changes:
        poll_interval_seconds: 1
        score_endpoints: []{only}
{flows}""")

    def _environment(self) -> dict[str, str]:
        c = DEFAULT_CREDENTIALS
        env = {**os.environ, "ILL_CONSUMER_SECRET": c.consumer_secret, "ILL_TOKEN_SECRET": c.token_secret}
        for target in self.targets:
            env.update(target.environment())
        return env

    # -- the worker ------------------------------------------------------------------------------

    def start_worker(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         env=self._environment(), stdout=log, stderr=log)

    def kill_worker(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop_worker(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def replay(self, handler: str) -> subprocess.CompletedProcess[str]:
        """``edusync replay`` of ``handler`` through a fresh group, to the end of its topics."""
        return subprocess.run([sys.executable, "-m", "worker", "replay", "--config", str(self.config),
                               "--handler", handler], env=self._environment(), capture_output=True, text=True,
                              timeout=600)

    # -- Illuminate ------------------------------------------------------------------------------

    def mutate(self, kind: str, count: int = 1, seed: int | None = None, mode: str | None = None) -> Any:
        """A change in Illuminate, through its control API (the server thread owns the district)."""
        body: dict[str, Any] = {"kind": kind, "count": count, "seed": seed}
        if mode:
            body["mode"] = mode
        r = httpx.post(f"{self._ill_server.url}/_sim/mutate", json=body, timeout=60)
        r.raise_for_status()
        return r.json()

    # -- checks ----------------------------------------------------------------------------------

    def reports(self) -> list[RosterReport]:
        """Each target against the projection of Illuminate's current state."""
        projection = RosterProjection.of(self.illuminate.district)
        return [t.report(projection) for t in self.targets]

    def wait_converged(self, timeout: float = 240) -> list[RosterReport]:
        """Poll until every target matches Illuminate's roster (and still does two seconds later)."""
        deadline = time.monotonic() + timeout
        while True:
            reports = self.reports()
            if all(r.ok for r in reports):
                time.sleep(2.0)
                reports = self.reports()
                if all(r.ok for r in reports):
                    return reports
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                summary = "\n".join(r.summary() for r in reports)
                raise AssertionError(f"not converged:\n{summary}\n{self.log_tail()}")
            time.sleep(1.0)

    def writes(self) -> dict[str, int]:
        """Write calls each target has answered so far, by handler."""
        return {t.handler: t.writes() for t in self.targets}

    def metric(self, name: str, **labels: str) -> float:
        """One sample from the worker's /metrics (0 if absent, or while the worker starts)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.ops_port}/metrics", timeout=5).text
        except httpx.TransportError:
            return 0.0
        want = [f'{k}="{v}"' for k, v in sorted(labels.items())]
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                head, _, value = line.rpartition(" ")
                if all(part in head[len(name):].strip("{}").split(",") for part in want):
                    return float(value)
        return 0.0

    def dead_letters(self, handler: str) -> list[DeadLetter]:
        """This tenant's dead letters of ``handler`` (none while a starting worker has not made its topics)."""
        records = anyio.run(partial(read_topic, self.bootstrap, dlq_topic(handler), missing_ok=True))
        letters = [DeadLetter.model_validate(orjson.loads(r.value)) for r in records]
        return [d for d in letters if (d.original.key or "").startswith(f"{self.tenant}/")]

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""

    def close(self) -> None:
        self.kill_worker()
        self._ill_server.stop()
        for target in self.targets:
            target.close()
