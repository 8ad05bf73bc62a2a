"""Chaos benchmark: three worker replicas of one configuration under kills, a broker restart and
upstream faults, while a change stream runs through every built flow for several districts.

    python -m bench.chaos [--quick] [--changes N] [--seed S] [--worker-ref REV]

What it does (``--quick`` shrinks every number; ``--help`` lists them all):

1. starts its own Kafka (``deploy/local_kafka.py``, data under ``var/chaos/<run>/kafka``, free
   ports) and, per tenant (6 districts), the five simulators on loopback threads of this process
   (``bench/chaos_env.py``), seeded: an Illuminate district, an AB Connect catalogue, Canvas
   gradebook courses for the audit pollers, empty Class and MatrixLMS sites;
2. writes ONE configuration (every tenant with every flow: ``standards``, ``illuminate_changes``,
   ``roster_classroom``, ``roster_matrixlms`` with its reconcile, ``roster_canvas`` and
   ``canvas_audit``; ``replica_id: ${EDUSYNC_REPLICA_ID}``, ``ops: {port: ${OPS_PORT}}``) and starts
   three replicas of it, ``python -m worker run --config <file>`` with ``EDUSYNC_REPLICA_ID=r1|r2|r3``
   (``bench/chaos_replicas.py``);
3. streams the upstream changes evenly over the stream phase (``bench/chaos_changes.py``), while
   it SIGKILLs a random replica every 20-60 s and restarts it a few seconds later with the same id,
   restarts the broker once (``down()`` then ``up()`` at mid-stream), and injects 10 % 5xx on every
   simulator plus throttling bursts (``bench/chaos_faults.py``);
4. stops the faults, waits for every target to converge to its simulator's ground truth, then
   SIGTERMs the replicas and checks each exits 0 within ``runtime.shutdown_grace_seconds``;
5. reads every topic with a read_committed consumer (``bench/chaos_kafka.py``), the dead letters
   and the logs (``bench/chaos_logs.py``), and writes ``bench/reports/chaos.{json,md,png}``
   (``bench/chaos_report.py``, which re-renders from the JSON alone).

``--worker-ref REV`` runs the replicas from ``git archive REV`` (exported under ``var/chaos/``)
instead of this working tree, e.g. to measure the committed baseline while worker/ is being
changed; ``--worker-root DIR`` runs them from any checkout. The simulators and the harness always
come from this tree.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import orjson
import psutil
from rich.console import Console
from rich.live import Live
from rich.table import Table

from bench.chaos_changes import SOURCES, ChangeDriver, ChangePlan
from bench.chaos_env import ChaosTenant, Sizes, TargetCheck, TenantFlowOptions, environment, settle_horizon
from bench.chaos_faults import FaultPlan
from bench.chaos_kafka import AUDIT_TOPICS, BIN_SECONDS, Broker, TopicScan, list_topics, scan_topics
from bench.chaos_logs import (
    LogDigest,
    Span,
    digest_logs,
    per_minute,
    resume_times,
    steady_rates,
    steady_spans,
    summarise_resume,
)
from bench.chaos_replicas import Replica, child_environment
from bench.report import REPORTS_DIR, machine_info

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "chaos"
console = Console(highlight=False, width=None if sys.stdout.isatty() else 180)


class _ClientGone(logging.Filter):
    """A killed replica leaves requests half sent: uvicorn's "Exception in ASGI application" for a
    ``ClientDisconnect`` says nothing about the simulators, so it is counted, not printed."""

    dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ClientDisconnect":
            _ClientGone.dropped += 1
            return False
        return True


@dataclass
class Options:
    """What to run (the defaults are the full run; ``--quick`` replaces them with ``QUICK``)."""

    changes: int = 100_000
    stream_seconds: float = 600.0
    # Illuminate, AB Connect, Canvas grades. Measured on this 2-core machine (see the report's
    # "Where the time went"): at 45 Illuminate changes/s over 6 tenants roster_to_canvas fell
    # 40,000 records behind in 600 s, and at 10 AB changes/s standards_to_canvas (which retries
    # whole batches under 10 % 5xx) fell 6,000 behind, so the stream offers 25 and 5 a second;
    # grade changes cost only the audit pollers, the Canvas simulator and Kafka.
    shares: tuple[float, float, float] = (0.15, 0.03, 0.82)
    tenants: int = 6
    replicas: int = 3
    seed: int = 7
    kill_every: tuple[float, float] = (20.0, 60.0)
    restart_after: tuple[float, float] = (2.0, 5.0)
    first_kill_after: float = 20.0
    broker_restart_at: float = 0.5  # fraction of the stream; 0: no restart
    error_rate: float = 0.10
    burst_every: tuple[float, float] = (15.0, 35.0)
    burst_seconds: tuple[float, float] = (3.0, 8.0)
    converge_timeout: float = 420.0
    stall_seconds: float = 120.0  # the differences unchanged this long: stop waiting
    grace: float = 20.0
    sizes: Sizes = field(default_factory=Sizes)
    flows: TenantFlowOptions = field(default_factory=TenantFlowOptions)
    matrix_scale: float = 60.0
    matrix_calls_per_minute: int = 100
    worker_root: Path | None = None
    worker_ref: str | None = None
    out_dir: Path = REPORTS_DIR
    keep_kafka: bool = False
    quick: bool = False


QUICK: dict[str, Any] = {
    "changes": 5_000, "stream_seconds": 80.0, "kill_every": (12.0, 20.0), "first_kill_after": 8.0,
    "broker_restart_at": 0.6,
    "burst_every": (10.0, 20.0), "converge_timeout": 150.0, "stall_seconds": 45.0, "grace": 15.0,
    "sizes": Sizes(students=120, staff=10, courses=4, sections_per_course=3, students_per_section=20, ab_documents=2,
                   ab_standards=40, ab_sections=3, gb_courses=2, gb_students=8, gb_assignments=2),
}


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for development: ~5,000 changes, 2-3 min")
    parser.add_argument("--changes", type=int, help="upstream changes in total (default 100,000; quick 5,000)")
    parser.add_argument("--stream-seconds", type=float, help="length of the change stream (default 600; quick 80)")
    parser.add_argument("--shares", default="0.15,0.03,0.82",
                        help="shares of Illuminate, AB Connect and Canvas grade changes (default 0.15,0.03,0.82)")
    parser.add_argument("--tenants", type=int, default=6)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7, help="seeds the kills, faults and changes")
    parser.add_argument("--kill-every", help="seconds between SIGKILLs, low,high (default 20,60; quick 12,20)")
    parser.add_argument("--restart-after", default="2,5", help="seconds until a killed replica restarts")
    parser.add_argument("--broker-restart-at", type=float,
                        help="when in the stream to restart Kafka, as a fraction (0: never; default 0.5, quick 0.6)")
    parser.add_argument("--error-rate", type=float, default=0.10, help="share of upstream requests answered 5xx")
    parser.add_argument("--converge-timeout", type=float,
                        help="seconds to wait for convergence (default 420; quick 150)")
    parser.add_argument("--stall-seconds", type=float,
                        help="stop waiting when no difference changed for this long (default 120; quick 45)")
    parser.add_argument("--grace", type=float, help="runtime.shutdown_grace_seconds of the replicas (default 20)")
    parser.add_argument("--worker-ref", help="run the replicas from `git archive REV` instead of this tree")
    parser.add_argument("--worker-root", type=Path, help="run the replicas from this checkout")
    parser.add_argument("--out-dir", type=Path, default=REPORTS_DIR)
    parser.add_argument("--keep-kafka", action="store_true", help="keep the broker's data folder")
    ns = parser.parse_args(argv)
    opts = Options(**QUICK) if ns.quick else Options()
    opts.quick = ns.quick
    for name in ("changes", "stream_seconds", "converge_timeout", "stall_seconds", "grace"):
        if getattr(ns, name) is not None:
            setattr(opts, name, getattr(ns, name))
    if ns.kill_every:
        opts.kill_every = _range(ns.kill_every)
    shares = tuple(float(s) for s in ns.shares.split(","))
    if len(shares) != 3 or sum(shares) <= 0:
        parser.error("--shares takes three numbers")
    opts.shares = (shares[0], shares[1], shares[2])
    opts.restart_after = _range(ns.restart_after)
    opts.tenants, opts.replicas, opts.seed = ns.tenants, ns.replicas, ns.seed
    opts.error_rate = ns.error_rate
    if ns.broker_restart_at is not None:
        opts.broker_restart_at = ns.broker_restart_at
    opts.worker_ref, opts.worker_root, opts.out_dir, opts.keep_kafka = (ns.worker_ref, ns.worker_root, ns.out_dir,
                                                                        ns.keep_kafka)
    if opts.worker_ref and opts.worker_root:
        parser.error("give --worker-ref or --worker-root, not both")
    return opts


# -- the worker code and its configuration -------------------------------------------------------------


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def worker_code(opts: Options) -> tuple[Path, dict[str, Any]]:
    """Where the replicas' code comes from, and what it is."""
    if opts.worker_ref:
        sha = _git("rev-parse", opts.worker_ref)
        dest = VAR / f"worker-{sha[:12]}"
        if not (dest / "worker" / "__main__.py").exists():
            dest.mkdir(parents=True, exist_ok=True)
            archive = subprocess.Popen(["git", "archive", "--format=tar", sha], cwd=ROOT, stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
            if archive.wait() != 0:
                raise RuntimeError(f"git archive {sha} failed")
        return dest, {"source": f"git archive {opts.worker_ref}", "commit": sha, "dirty": False, "root": str(dest)}
    root = (opts.worker_root or ROOT).resolve()
    try:
        sha = _git("rev-parse", "HEAD", cwd=root)
        dirty = _git("status", "--porcelain", "--", "worker", "handlers", "schemas", cwd=root)
    except (subprocess.CalledProcessError, FileNotFoundError):
        sha, dirty = "unknown", ""
    changed = [line[3:] for line in dirty.splitlines()]
    return root, {"source": "working tree", "commit": sha, "dirty": bool(changed), "changed_files": changed[:40],
                  "root": str(root)}


def write_config(path: Path, bootstrap: str, tenants: list[ChaosTenant], opts: Options,
                 flows: TenantFlowOptions) -> None:
    """ONE configuration for every replica; the replica id and ops port come from the environment."""
    handlers = "".join(f"  {h}:\n    max_defer_seconds: 1800\n"
                       for h in ("roster_to_class", "roster_to_matrixlms", "roster_to_canvas"))
    path.write_text(f"""\
# bench.chaos: one configuration for every replica (EDUSYNC_REPLICA_ID and OPS_PORT per process)
kafka:
  bootstrap_servers: {bootstrap}
  consumer_group_prefix: chaos
  replica_id: ${{EDUSYNC_REPLICA_ID}}
  broker_patience_seconds: 120
ops:
  port: ${{OPS_PORT}}
runtime:
  shutdown_grace_seconds: {opts.grace}
  paused_retry_seconds: 5
log_level: info
handlers:
{handlers}tenants:
{"".join(t.tenant_yaml(flows) for t in tenants)}""")


def validate_config(path: Path, root: Path, env: dict[str, str]) -> str | None:
    """The worker's own check of the file (in ``root``'s code); the error text, or None."""
    code = "import sys; from worker.config import load_config; load_config(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=root, capture_output=True, text=True,
                          env={**env, "EDUSYNC_REPLICA_ID": "r0", "OPS_PORT": "0", "PYTHONPATH": str(root)},
                          timeout=120)
    return None if proc.returncode == 0 else (proc.stderr or proc.stdout)[-3000:]


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class RunState:
    """Everything that happens during a run, in epoch seconds (``t0``: the replicas' first start)."""

    t0: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    unexpected_exits: list[dict[str, Any]] = field(default_factory=list)
    broker: dict[str, Any] = field(default_factory=dict)
    convergence: list[dict[str, Any]] = field(default_factory=list)
    converged_at: float | None = None
    stalled: bool = False
    check_seconds: list[float] = field(default_factory=list)
    final_checks: list[TargetCheck] = field(default_factory=list)
    audit_checks: list[dict[str, Any]] = field(default_factory=list)
    stops: list[dict[str, Any]] = field(default_factory=list)
    kafka_cpu: dict[int, float] = field(default_factory=dict)
    cpu_timeline: list[dict[str, float]] = field(default_factory=list)
    stream_start: float = 0.0
    stream_end: float = 0.0
    notes: list[str] = field(default_factory=list)


class BacklogSampler:
    """Every handler group's backlog every ``every`` seconds, from a thread of its own (a sample
    takes a second or so, and fails while the broker is down: then it is skipped)."""

    def __init__(self, bootstrap: str, clock: Callable[[], float], every: float = 15.0) -> None:
        self.bootstrap, self.clock, self.every = bootstrap, clock, every
        self.samples: list[dict[str, Any]] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            t = self.clock()
            try:
                backlog = anyio.run(group_backlogs, self.bootstrap)
            except Exception:  # the broker is restarting: no sample this time
                self.failed += 1
                continue
            self.samples.append({"t": round(t, 1), **backlog})


class LiveCounts:
    """Counts of a few log lines so far, read incrementally for the progress display."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}
        self.restarts = 0
        self.fenced = 0
        self.published = 0

    def update(self, replicas: list[Replica]) -> None:
        for replica in replicas:
            for inc in replica.incarnations:
                at = self.offsets.get(inc.log, 0)
                try:
                    with inc.log.open("rb") as f:
                        f.seek(at)
                        chunk = f.read()
                except OSError:
                    continue
                cut = chunk.rfind(b"\n") + 1
                chunk = chunk[:cut]
                self.offsets[inc.log] = at + cut
                self.restarts += chunk.count(b"component failed; restarting")
                self.fenced += chunk.count(b"ProducerFenced")
                self.published += chunk.count(b'"event": "published"') + chunk.count(b'"event":"published"')


class Chaos:
    """One chaos benchmark: ``setup``, ``start_replicas``, ``stream``, ``converge``, ``stop``, then
    ``analyse`` returns the JSON the report is made from; ``close`` stops whatever still runs."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.state = RunState()
        self.run_dir = VAR / datetime.now().strftime("%Y%m%d-%H%M%S")
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.run_dir / "kafka")
        self.tenants: list[ChaosTenant] = []
        self.replicas: list[Replica] = []
        self.live = LiveCounts()
        self.broker_thread: threading.Thread | None = None
        self.broker_down = False
        self.backlogs: BacklogSampler | None = None
        self.cpu_start = time.process_time()
        self.flows = opts.flows
        self.sys_cpu_start = psutil.cpu_times()
        self.wall_start = time.monotonic()

    def now(self) -> float:
        return time.time() - self.state.t0

    def phase(self, name: str, started: float) -> None:
        self.state.phases[name] = round(time.monotonic() - started, 2)

    # -- set-up --

    def setup(self) -> tuple[Path, dict[str, Any]]:
        opts = self.opts
        started = time.monotonic()
        root, code = worker_code(opts)
        console.log(f"worker code: {code['source']} {code['commit'][:12]}{' (dirty)' if code['dirty'] else ''} "
                    f"from {root}")
        console.log(f"starting Kafka in {self.broker.data_dir} ...")
        self.broker.up()
        self.phase("kafka start", started)
        console.log(f"Kafka up at {self.broker.bootstrap} ({self.state.phases['kafka start']:.1f} s)")
        started = time.monotonic()
        for i in range(opts.tenants):
            self.tenants.append(ChaosTenant(f"d{i + 1}", i, opts.sizes, opts.seed, opts.matrix_scale,
                                            opts.matrix_calls_per_minute))
        self.phase("simulators and seeding", started)
        started = time.monotonic()
        for tenant in self.tenants:
            tenant.make_gradebooks()
        self.phase("gradebook courses", started)
        counts = self.tenants[0].counts()
        console.log(f"{opts.tenants} tenants seeded; each: Illuminate {counts['illuminate']}, "
                    f"AB standards {counts['abconnect_standards']}, gradebooks {len(self.tenants[0].gradebooks)}")
        config = self.run_dir / "edusync.yaml"
        env = child_environment(environment())
        flows = opts.flows
        if (root / "worker" / "replica_share.py").exists():
            # This worker splits every budget by the ownership group's live membership itself.
            flows = TenantFlowOptions(**{**asdict(flows), "matrix_replicas": None})
            self.state.notes.append("MatrixLMS budget split by the worker's live membership (no `replicas:`)")
        else:
            flows = TenantFlowOptions(**{**asdict(flows), "matrix_replicas": opts.replicas})
        self.flows = flows
        write_config(config, self.broker.bootstrap, self.tenants, opts, flows)
        error = validate_config(config, root, env)
        if error and "replicas" in error and flows.matrix_replicas:
            self.state.notes.append("the worker's MatrixLMS section has no `replicas` field: written without it")
            flows = self.flows = TenantFlowOptions(**{**asdict(flows), "matrix_replicas": None})
            write_config(config, self.broker.bootstrap, self.tenants, opts, flows)
            error = validate_config(config, root, env)
        if error:
            raise RuntimeError(f"the worker refuses the generated configuration {config}:\n{error}")
        self.replicas = [Replica(f"r{i + 1}", config, root, self.log_dir, env) for i in range(opts.replicas)]
        return config, code

    def start_replicas(self) -> None:
        started = time.monotonic()
        self.state.t0 = time.time()
        for replica in self.replicas:
            replica.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if all(_started(r) for r in self.replicas):
                break
            for r in self.replicas:
                if not r.alive():
                    raise RuntimeError(f"replica {r.rid} exited at start:\n{_tail(r)}")
            time.sleep(0.5)
        else:
            raise RuntimeError("the replicas did not log 'worker started' within 180 s")
        self.phase("replicas start", started)
        console.log(f"{len(self.replicas)} replicas up ({self.state.phases['replicas start']:.1f} s)")
        self.backlogs = BacklogSampler(self.broker.bootstrap, self.now)
        self.backlogs.start()

    # -- the stream --

    def stream(self) -> ChangeDriver:
        opts = self.opts
        plan = ChangePlan.split(opts.changes, opts.shares, opts.stream_seconds)
        driver = ChangeDriver(plan, self.tenants, random.Random(opts.seed + 1))
        faults = FaultPlan(opts.error_rate, opts.burst_every, opts.burst_seconds, random.Random(opts.seed + 2))
        for tenant in self.tenants:
            for system, url in tenant.urls().items():
                faults.fault_urls.append(url)
                faults.controls[(tenant.id, system)] = tenant.controls()[system]
        self.faults = faults
        chaos_rng = random.Random(opts.seed + 3)
        s = self.state
        s.stream_start = self.now()
        self.sample()
        faults.set_errors(opts.seed)
        faults.schedule_first(s.stream_start)
        next_kill = s.stream_start + opts.first_kill_after
        broker_at = s.stream_start + opts.broker_restart_at * opts.stream_seconds if opts.broker_restart_at else None
        pending: dict[str, float] = {}  # replica -> when to start it again
        last_log = last_sample = 0.0
        console.log(f"stream: {plan.total:,} changes over {opts.stream_seconds:.0f} s "
                    f"(Illuminate {plan.illuminate:,}, AB Connect {plan.abconnect:,}, Canvas grades "
                    f"{plan.canvas_grades:,}); kills every {opts.kill_every[0]:.0f}-{opts.kill_every[1]:.0f} s, "
                    f"{opts.error_rate:.0%} 5xx, throttling bursts")
        with Live(self.table(driver), console=console, refresh_per_second=2, transient=True) as live:
            while True:
                now = self.now()
                elapsed = now - s.stream_start
                # The plan is made in full unless a control API keeps failing (then a minute's grace).
                if elapsed >= opts.stream_seconds and (driver.total_made() >= plan.total
                                                       or elapsed > opts.stream_seconds + 60):
                    break
                driver.tick(elapsed, int(now // BIN_SECONDS))
                faults.tick(now)
                self.reap(pending, now)
                for rid, when in list(pending.items()):
                    if now >= when:
                        self.restart(rid, now)
                        del pending[rid]
                if broker_at is not None and now >= broker_at and self.broker_thread is None:
                    self.restart_broker()
                # No kill from 20 s before the broker restart to 20 s after it: each would blur the other's
                # resume measurements.
                quiet_broker = self.broker_down or (broker_at is not None and broker_at - 20 <= now and (
                    s.broker.get("up") is None or now < s.broker["up"] - s.t0 + 20))
                if now >= next_kill and not pending and not quiet_broker:
                    self.kill(chaos_rng, pending, now)
                    next_kill = now + chaos_rng.uniform(*opts.kill_every)
                if now - last_sample >= 5:
                    last_sample = now
                    self.sample()
                live.update(self.table(driver))
                if not console.is_terminal and now - last_log >= 15:
                    last_log = now
                    console.log(self.line(driver))
                time.sleep(0.5)
        s.stream_end = self.now()
        faults.clear()
        console.log(f"stream done at {s.stream_end:.0f} s: {driver.total_made():,} changes made; faults cleared")
        if self.broker_thread is not None:
            self.broker_thread.join()
        for rid in list(pending):
            self.restart(rid, self.now())
        return driver

    def kill(self, rng: random.Random, pending: dict[str, float], now: float) -> None:
        alive = [r for r in self.replicas if r.alive()]
        if len(alive) < 2:
            return
        victim = rng.choice(alive)
        inc = victim.kill()
        if inc is None:
            return
        self.state.kills.append({"t": inc.ended, "at": now, "replica": victim.rid, "incarnation": inc.index})
        pending[victim.rid] = now + rng.uniform(*self.opts.restart_after)
        console.log(f"[{now:6.0f}s] SIGKILL {victim.rid} (incarnation {inc.index})")

    def restart(self, rid: str, now: float) -> None:
        replica = next(r for r in self.replicas if r.rid == rid)
        if replica.alive():
            return
        inc = replica.start()
        self.state.restarts.append({"t": inc.started, "at": now, "replica": rid, "incarnation": inc.index})
        console.log(f"[{now:6.0f}s] restarted {rid} (incarnation {inc.index})")

    def reap(self, pending: dict[str, float], now: float) -> None:
        """A replica that exited on its own is recorded and started again in 3 s."""
        for replica in self.replicas:
            inc = replica.reap()
            if inc is not None:
                self.state.unexpected_exits.append(_own_exit(replica, now))
                console.log(f"[{now:6.0f}s] {replica.rid} EXITED on its own with {inc.exit_code} "
                            f"({self.state.unexpected_exits[-1]['diagnosis']}); restarting")
                pending.setdefault(replica.rid, now + 3.0)

    def restart_broker(self) -> None:
        def run() -> None:
            self.broker_down = True
            console.log(f"[{self.now():6.0f}s] restarting Kafka (down, then up)")
            try:
                self.sample_kafka()
                step = self.broker.restart()
                self.state.broker.update(step)
                console.log(f"[{self.now():6.0f}s] Kafka back up ({step['up'] - step['began']:.1f} s down)")
            except Exception as exc:
                self.state.broker["error"] = repr(exc)
                console.log(f"Kafka restart FAILED: {exc!r}")
            finally:
                self.broker_down = False

        self.broker_thread = threading.Thread(target=run, name="broker-restart", daemon=True)
        self.broker_thread.start()

    def sample(self) -> None:
        for replica in self.replicas:
            replica.sample()
        self.live.update(self.replicas)
        self.sample_kafka()
        now, then = psutil.cpu_times(), self.sys_cpu_start
        idle = (now.idle - then.idle) + (getattr(now, "iowait", 0.0) - getattr(then, "iowait", 0.0))
        self.state.cpu_timeline.append({
            "t": round(self.now(), 1),
            "replicas": round(sum(inc.cpu_seconds for r in self.replicas for inc in r.incarnations), 2),
            "kafka": round(sum(self.state.kafka_cpu.values()), 2),
            "harness": round(time.process_time() - self.cpu_start, 2),
            "machine": round(sum(now) - sum(then) - idle, 2)})

    def sample_kafka(self) -> None:
        pid = self.broker.kafka.pid()
        if pid is None:
            return
        try:
            times = psutil.Process(pid).cpu_times()
            self.state.kafka_cpu[pid] = times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass

    def machine_load(self) -> dict[str, Any]:
        """CPU the whole machine was busy since the start, and how much of it was not this run's
        (another engineer's tests on a shared machine show up here)."""
        now, then = psutil.cpu_times(), self.sys_cpu_start
        idle = (now.idle - then.idle) + (getattr(now, "iowait", 0.0) - getattr(then, "iowait", 0.0))
        busy = sum(now) - sum(then) - idle
        ours = (time.process_time() - self.cpu_start + sum(self.state.kafka_cpu.values())
                + sum(inc.cpu_seconds for r in self.replicas for inc in r.incarnations))
        wall = time.monotonic() - self.wall_start
        cores = os.cpu_count() or 1
        return {"wall_seconds": round(wall, 1), "cores": cores, "machine_busy_cpu_seconds": round(busy, 1),
                "this_run_cpu_seconds": round(ours, 1), "other_cpu_seconds": round(max(0.0, busy - ours), 1),
                "machine_busy_share": round(busy / (wall * cores), 3) if wall else None}

    def table(self, driver: ChangeDriver) -> Table:
        s = self.state
        table = Table(title=f"bench.chaos  {self.now():.0f} s", show_header=False, box=None)
        plan = driver.plan
        for source, want in zip(SOURCES, (plan.illuminate, plan.abconnect, plan.canvas_grades), strict=True):
            table.add_row(f"{source} changes", f"{sum(driver.made[source].values()):,} / {want:,}")
        alive = " ".join(f"{r.rid}:{'up' if r.alive() else 'DOWN'}" for r in self.replicas)
        table.add_row("replicas", alive)
        table.add_row("kills / restarts / own exits", f"{len(s.kills)} / {len(s.restarts)} / {len(s.unexpected_exits)}")
        table.add_row("Kafka", "RESTARTING" if self.broker_down else ("restarted" if s.broker.get("up") else "up"))
        bursts = getattr(self, "faults", None)
        table.add_row("throttling bursts", str(len(bursts.bursts)) if bursts else "0")
        table.add_row("log: restarts / ProducerFenced / published",
                      f"{self.live.restarts:,} / {self.live.fenced:,} / {self.live.published:,}")
        return table

    def line(self, driver: ChangeDriver) -> str:
        s = self.state
        return (f"[{self.now():6.0f}s] changes {driver.total_made():,}/{driver.plan.total:,}  kills {len(s.kills)}  "
                f"alive {sum(r.alive() for r in self.replicas)}/{len(self.replicas)}  "
                f"Kafka {'DOWN' if self.broker_down else 'up'}  restarts(log) {self.live.restarts:,}  "
                f"fenced(log) {self.live.fenced:,}  published(log) {self.live.published:,}")

    # -- convergence and stop --

    def converge(self) -> None:
        opts = self.opts
        s = self.state
        deadline = time.monotonic() + opts.converge_timeout
        began = self.now()
        ok_once = False
        last_audit = 0.0
        audit_ok = False
        checks: list[TargetCheck] = []
        last_signature: Any = None
        changed_at = time.monotonic()
        while True:
            check_started = time.monotonic()
            checks = [c for t in self.tenants for c in t.check_targets()]
            self.sample()
            for replica in self.replicas:
                if replica.reap() is not None:
                    s.unexpected_exits.append(_own_exit(replica, self.now()))
                    self.restart(replica.rid, self.now())
            roster_ok = all(c.ok for c in checks)
            # Reading the audit topics takes a few seconds: every 20 s, and at once when the rest matches.
            if roster_ok or time.monotonic() - last_audit > 20:
                last_audit = time.monotonic()
                audit_ok = self.check_audit()
            bad = [c for c in checks if not c.ok]
            s.convergence.append({"at": self.now(), "targets_ok": len(checks) - len(bad), "targets": len(checks),
                                  "differences": sum(sum(c.differences.values()) for c in bad), "audit_ok": audit_ok})
            worst = ", ".join(f"{c.tenant} {c.target}: " + " ".join(f"{k} {v}" for k, v in c.differences.items())
                              for c in bad[:3])
            console.log(f"[{self.now():6.0f}s] convergence: {len(checks) - len(bad)}/{len(checks)} targets match"
                        f"{' (' + worst[:300] + ')' if bad else ''}; audit {'OK' if audit_ok else 'not yet'}")
            if roster_ok and audit_ok:
                if ok_once:
                    break
                ok_once = True
                if s.converged_at is None:
                    s.converged_at = self.now()
            else:
                ok_once = False
                s.converged_at = None
            signature = (tuple(sorted((c.tenant, c.target, tuple(sorted(c.differences.items()))) for c in bad)),
                         audit_ok)
            if signature != last_signature:
                last_signature, changed_at = signature, time.monotonic()
            elif bad and time.monotonic() - changed_at > opts.stall_seconds:
                s.stalled = True
                s.notes.append(f"convergence STALLED: the differences stayed exactly the same for "
                               f"{opts.stall_seconds:.0f} s; stopped waiting")
                console.log(f"no change in any difference for {opts.stall_seconds:.0f} s: stalled; reporting them")
                break
            if time.monotonic() > deadline:
                s.notes.append(f"convergence TIMEOUT after {opts.converge_timeout:.0f} s")
                console.log("convergence TIMEOUT; reporting what differs")
                break
            # A check holds each simulator's lock and takes CPU from the catching-up replicas: at least
            # twice as long between checks as a check takes.
            took = time.monotonic() - check_started
            s.check_seconds.append(round(took, 2))
            time.sleep(max(5.0, 2.0 * took))
        s.final_checks = checks
        s.phases["convergence wait"] = round(self.now() - began, 1)

    def check_audit(self) -> bool:
        """Every Canvas audit event (older than the window lag) published, per tenant and kind."""
        scan = anyio.run(scan_audit, self.broker.bootstrap, self.state.t0)
        horizon = settle_horizon(self.opts.flows.audit_lag)
        rows = []
        for tenant in self.tenants:
            truth = tenant.audit_truth(horizon)
            published = scan.audit_ids.get(tenant.id, {})
            for kind, ids in truth.items():
                got = published.get(kind, set())
                rows.append({"tenant": tenant.id, "kind": kind, "expected": len(ids), "missing": len(ids - got),
                             "published": len(got), "missing_examples": sorted(ids - got)[:3]})
        self.state.audit_checks = rows
        return all(r["missing"] == 0 for r in rows)

    def stop(self) -> None:
        if self.backlogs is not None:
            self.backlogs.stop()
        started = time.monotonic()
        threads = []
        results: list[dict[str, Any]] = []
        limit = self.opts.grace + 60

        def one(replica: Replica) -> None:
            inc = replica.terminate(limit)
            if inc is not None:
                cancelled: list[str] = []
                for line in inc.log.read_bytes().splitlines()[-200:] if inc.log.exists() else []:
                    if b"shutdown grace period over" in line:
                        try:
                            cancelled = [str(c) for c in orjson.loads(line).get("running", [])]
                        except orjson.JSONDecodeError:
                            cancelled = ["?"]
                results.append({"replica": replica.rid, "incarnation": inc.index, "exit_code": inc.exit_code,
                                "seconds": round(inc.stop_seconds or 0.0, 2), "how": inc.how,
                                "cancelled_at_deadline": cancelled,
                                "within_grace": inc.exit_code == 0 and (inc.stop_seconds or 0.0) <= self.opts.grace})

        for replica in self.replicas:
            thread = threading.Thread(target=one, args=(replica,))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        self.state.stops = sorted(results, key=lambda r: str(r["replica"]))
        self.phase("SIGTERM stop", started)
        for r in self.state.stops:
            console.log(f"{r['replica']}: exit {r['exit_code']} after {r['seconds']:.1f} s "
                        f"({'within' if r['within_grace'] else 'NOT within'} the {self.opts.grace:.0f} s grace)")

    # -- reading what happened --

    def analyse(self, driver: ChangeDriver, code: dict[str, Any], config: Path) -> dict[str, Any]:
        s = self.state
        errors: list[str] = []

        def attempt(what: str, fn: Callable[[], T], default: T) -> T:
            """One part of the analysis; a failure is reported in the JSON, the rest goes on."""
            started = time.monotonic()
            try:
                return fn()
            except Exception as exc:  # the report says what could not be read
                errors.append(f"{what}: {exc!r}")
                console.log(f"analysis: {what} failed: {exc!r}")
                return default
            finally:
                self.phase(what, started)

        scan = attempt("topic scan", lambda: anyio.run(scan_topics, self.broker.bootstrap, s.t0), TopicScan())
        console.log(f"read {sum(scan.records.values()):,} committed records on {len(scan.records)} topics "
                    f"in {scan.seconds:.0f} s")
        no_letters: dict[str, Any] = {}
        no_backlog: dict[str, int] = {}
        letters = attempt("dead letters", lambda: anyio.run(dead_letters, self.broker.bootstrap), no_letters)
        backlog = attempt("group backlogs", lambda: anyio.run(group_backlogs, self.broker.bootstrap), no_backlog)
        logs = [(inc.replica, inc.index, inc.log) for r in self.replicas for inc in r.incarnations]
        digest = attempt("log analysis", lambda: digest_logs(logs), LogDigest())
        disturbances = [Span(k["t"], k["t"]) for k in s.kills] + [Span(r["t"], r["t"]) for r in s.restarts]
        disturbances += [Span(e["t"], e["t"]) for e in s.unexpected_exits if e.get("t")]
        disturbances.append(Span(s.t0, s.t0))  # the first start
        if s.broker.get("began") and s.broker.get("up"):
            disturbances.append(Span(s.broker["began"], s.broker["up"]))
        window = Span(s.t0 + s.stream_start, s.t0 + s.stream_end)
        spans = steady_spans(window, disturbances)
        after = steady_spans(Span(s.t0 + s.stream_end, s.t0 + s.stream_end + s.phases.get("convergence wait", 0.0)),
                             [Span(s.t0 + s.stream_end, s.t0 + s.stream_end)])
        no_rows: list[dict[str, Any]] = []
        resume = attempt("resume times", lambda: [_rel(row, s.t0) for row in resume_times(digest, scan, s.kills)],
                         no_rows)
        tenants = {t.id: {"counts": t.counts(), "stats": t.stats(), "created_twice": t.created_twice()}
                   for t in self.tenants}
        return {
            "date": datetime.fromtimestamp(s.t0).isoformat(timespec="seconds"),
            "options": {**_options_json(self.opts), "flows": asdict(self.flows)}, "worker_code": code,
            "config": config.read_text(),
            "run_dir": str(self.run_dir), "machine": machine_info(f"local 3.9.1 at {self.broker.bootstrap}"),
            "phases": s.phases, "stream": {"start": s.stream_start, "end": s.stream_end},
            "changes": driver.as_json(),
            "chaos": {"kills": [_rel(k, s.t0) for k in s.kills], "restarts": [_rel(r, s.t0) for r in s.restarts],
                      "unexpected_exits": [_rel(e, s.t0) for e in s.unexpected_exits],
                      "broker_restart": {k: (v - s.t0 if isinstance(v, float) else v) for k, v in s.broker.items()},
                      "bursts": [asdict(b) for b in self.faults.bursts], "fault_errors": self.faults.errors[:20],
                      "error_rate": self.opts.error_rate},
            "topics": scan.as_json(),
            "dead_letters": letters, "backlogs": backlog,
            "backlog_timeline": self.backlogs.samples if self.backlogs else [],
            "convergence": {"checks": [c.as_json() for c in s.final_checks], "audit": s.audit_checks,
                            "history": s.convergence, "converged_at": s.converged_at, "stalled": s.stalled,
                            "check_seconds": s.check_seconds,
                            "ok": bool(s.final_checks) and all(c.ok for c in s.final_checks)
                            and all(r["missing"] == 0 for r in s.audit_checks) and bool(s.audit_checks),
                            "audit_extra": _audit_extra(self.tenants, scan)},
            "tenants": tenants,
            "logs": {**_logs_json(digest, spans, s, window), "after_stream": steady_rates(digest, after),
                     "ownership": _ownership_json(digest, s.t0, s, self.replicas)},
            "resume": {"per_kill": resume, "summary": summarise_resume(resume)},
            "stops": s.stops, "grace_seconds": self.opts.grace,
            "replicas": [inc.as_json(s.t0) for r in self.replicas for inc in r.incarnations],
            "cpu": {"harness_seconds": round(time.process_time() - self.cpu_start, 1),
                    "kafka_seconds": round(sum(s.kafka_cpu.values()), 1),
                    "replica_seconds": round(sum(inc.cpu_seconds for r in self.replicas for inc in r.incarnations),
                                             1)},
            "load_after": os.getloadavg(), "notes": s.notes, "analysis_errors": errors,
            "client_disconnects": _ClientGone.dropped,
            "machine_load": self.machine_load(), "cpu_timeline": s.cpu_timeline,
        }

    def close(self) -> None:
        if self.backlogs is not None:
            self.backlogs.stop()
        for replica in self.replicas:
            replica.abandon()
        for tenant in self.tenants:
            tenant.close()
        self.broker.down()
        if not self.opts.keep_kafka:
            self.broker.remove_data()


def _started(replica: Replica) -> bool:
    inc = replica.current
    return inc is not None and inc.log.exists() and b'"worker started"' in inc.log.read_bytes()


def _own_exit(replica: Replica, now: float) -> dict[str, Any]:
    """A replica's exit that nobody asked for, with what its log says about it."""
    inc = replica.incarnations[-1]
    text = inc.log.read_bytes() if inc.log.exists() else b""
    lines = [ln for ln in text.splitlines() if ln.strip() and b"Future exception was never retrieved" not in ln]
    stopped = b'"worker stopped"' in text
    asked = b"stop requested" in text
    non_json = [ln.decode(errors="replace")[:300] for ln in lines[-30:] if not ln.startswith(b"{")]
    if inc.exit_code == 0 and stopped and not asked:
        diagnosis = "exit 0: 'worker stopped' logged without any 'stop requested' (no signal was sent)"
    elif non_json:
        diagnosis = f"exit {inc.exit_code}: {non_json[-1]}"
    else:
        diagnosis = f"exit {inc.exit_code}"
    return {"t": inc.ended, "at": now, "replica": replica.rid, "incarnation": inc.index, "exit_code": inc.exit_code,
            "diagnosis": diagnosis, "tail": [ln.decode(errors="replace")[:400] for ln in lines[-6:]]}


def _tail(replica: Replica, n: int = 20) -> str:
    inc = replica.current
    if inc is None or not inc.log.exists():
        return ""
    return "\n".join(inc.log.read_text(errors="replace").splitlines()[-n:])


def _rel(row: dict[str, Any], t0: float) -> dict[str, Any]:
    return {**row, "t": round(float(row["t"]) - t0, 2) if row.get("t") is not None else None}


def _options_json(opts: Options) -> dict[str, Any]:
    out = asdict(opts)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


def _audit_extra(tenants: list[ChaosTenant], scan: TopicScan) -> dict[str, dict[str, int]]:
    """Published audit ids the Canvas simulator never had (should be none)."""
    out: dict[str, dict[str, int]] = {}
    for tenant in tenants:
        truth = tenant.audit_truth()
        published = scan.audit_ids.get(tenant.id, {})
        out[tenant.id] = {kind: len(published.get(kind, set()) - ids) for kind, ids in truth.items()}
    return out


def _ownership_json(digest: LogDigest, t0: float, s: RunState, replicas: list[Replica]) -> dict[str, Any]:
    """Ownership lines over the run, and how long each process took to its first assignment."""
    lines = [{"t": round(o.t - t0, 2), "replica": f"{o.replica}.{o.incarnation}", "kind": o.kind,
              "tenants": list(o.tenants)} for o in digest.ownership]
    first: dict[str, float | None] = {}
    for inc in digest.incarnations.values():
        key = f"{inc.replica}.{inc.index}"
        got = [o.t for o in digest.ownership if (o.replica, o.incarnation) == (inc.replica, inc.index)
               and o.kind == "assigned" and o.tenants]
        first[key] = None if not got or inc.started_at is None else round(min(got) - inc.started_at, 2)
    # Who ran which tenants' pollers: each process's assigned minus revoked, until it ended.
    ends = {(i.replica, i.index): i.ended for r in replicas for i in r.incarnations}
    stream = (t0 + s.stream_start, t0 + s.stream_end)
    seconds: dict[str, float] = {}
    at_end: dict[str, list[str]] = {}
    for (replica, index), _inc in sorted(digest.incarnations.items()):
        mine = [o for o in digest.ownership if (o.replica, o.incarnation) == (replica, index)]
        owned: set[str] = set()
        at = stream[0]
        stop = min(stream[1], ends.get((replica, index)) or stream[1])
        for o in mine:
            if o.t > stop:
                break  # after the stream (or the process) ended: the final revokes are not ownership
            if o.t > at:
                seconds[replica] = seconds.get(replica, 0.0) + len(owned) * (o.t - at)
            at = max(at, o.t)
            owned = owned | set(o.tenants) if o.kind == "assigned" else owned - set(o.tenants)
        if at < stop:
            seconds[replica] = seconds.get(replica, 0.0) + len(owned) * (stop - at)
        if stop >= stream[1] and (ends.get((replica, index)) or float("inf")) >= stream[1]:
            at_end[replica] = sorted(owned)
    total = sum(seconds.values())
    return {"lines": lines[:400], "first_assignment_after_start_s": first, "tenants_at_stream_end": at_end,
            "tenant_seconds_share": {r: round(v / total, 3) for r, v in sorted(seconds.items())} if total else {},
            "unowned": _unowned(digest, ends, stream, t0)}


def _unowned(digest: LogDigest, ends: dict[tuple[str, int], float | None], stream: tuple[float, float],
             t0: float) -> dict[str, Any]:
    """How long each tenant had no live process running its pollers during the stream: from a
    process's "assigned" to its "revoked" (or its death) it owns the tenants it was given."""
    if not digest.ownership:
        return {}
    held: dict[str, list[tuple[float, float]]] = {}
    for (replica, index) in digest.incarnations:
        since: dict[str, float] = {}
        end = ends.get((replica, index)) or stream[1]
        for o in (o for o in digest.ownership if (o.replica, o.incarnation) == (replica, index)):
            if o.t > end:
                break
            for tenant in o.tenants:
                if o.kind == "assigned":
                    since.setdefault(tenant, o.t)
                elif tenant in since:
                    held.setdefault(tenant, []).append((since.pop(tenant), o.t))
        for tenant, start in since.items():
            held.setdefault(tenant, []).append((start, end))
    window = stream[1] - stream[0]
    out: dict[str, Any] = {}
    for tenant in sorted(held):
        at, covered, longest, gap_at = stream[0], 0.0, 0.0, stream[0]
        for start, stop in sorted(held[tenant]):
            start, stop = max(start, stream[0]), min(stop, stream[1])
            if stop <= at:
                continue
            if start > at:
                if start - at > longest:
                    longest, gap_at = start - at, at
                at = start
            covered += stop - at
            at = stop
        if stream[1] - at > longest:
            longest, gap_at = stream[1] - at, at
        out[tenant] = {"seconds": round(window - covered, 1), "share": round((window - covered) / window, 4),
                       "longest_s": round(longest, 1), "longest_at": round(gap_at - t0, 1)}
    return out


def _logs_json(digest: LogDigest, spans: list[Span], s: RunState, window: Span) -> dict[str, Any]:
    end = s.t0 + max(s.stream_end, 1.0) + (s.phases.get("convergence wait") or 0.0)
    first_start = {f"{inc.replica}.{inc.index}": (None if inc.started_at is None else round(inc.started_at - s.t0, 2))
                   for inc in digest.incarnations.values()}
    return {
        "steady": steady_rates(digest, spans),
        "steady_spans": [(round(sp.start - s.t0, 1), round(sp.end - s.t0, 1)) for sp in spans],
        "stream_window": (round(window.start - s.t0, 1), round(window.end - s.t0, 1)),
        "fenced_total": len(digest.fenced), "restarts_total": len(digest.restarts),
        "fenced_kinds": dict(digest.fenced_kinds.most_common(10)),
        "fenced_per_minute": per_minute([t for t, _ in digest.fenced], s.t0, end),
        "restarts_per_minute": per_minute([r[0] for r in digest.restarts], s.t0, end),
        "restarts_by_replica": {rid: sum(1 for r in digest.restarts if r[1] == rid)
                                for rid in sorted({r[1] for r in digest.restarts})},
        "ownership_lines": dict(digest.ownership_events), "ownership_count": len(digest.ownership),
        "warnings_by_event": dict(digest.by_event.most_common(25)),
        "warning_examples": {k: digest.examples[k] for k, _ in digest.by_event.most_common(8)},
        "worker_started_at": first_start,
        "lines": sum(i.lines for i in digest.incarnations.values()),
        "not_json": sum(i.not_json for i in digest.incarnations.values()),
    }


async def scan_audit(bootstrap: str, t0: float) -> TopicScan:
    """The audit topics only (for the convergence wait)."""
    return await scan_topics(bootstrap, t0, timeout=120.0, only=AUDIT_TOPICS)


async def dead_letters(bootstrap: str) -> dict[str, Any]:
    """Dead letters of every handler (``worker.operations.read_dead_letters``), by reason."""
    import re

    from worker.operations import read_dead_letters

    out: dict[str, Any] = {}
    for topic in await list_topics(bootstrap):
        if not topic.startswith("edusync.dlq."):
            continue
        handler = topic.removeprefix("edusync.dlq.")
        letters = await read_dead_letters(bootstrap, handler)
        reasons: dict[str, dict[str, Any]] = {}
        for letter in letters:
            reason = re.sub(r"\d+", "#", str(letter.reason))[:160]
            row = reasons.setdefault(reason, {"count": 0, "example": str(letter.reason)[:300], "tenants": {}})
            row["count"] += 1
            tenant = (letter.original.key or "?").split("/", 1)[0]
            row["tenants"][tenant] = row["tenants"].get(tenant, 0) + 1
        out[handler] = {"total": len(letters), "by_reason": reasons}
    return out


async def group_backlogs(bootstrap: str) -> dict[str, int]:
    """Records each handler group has not committed (end offset minus committed: an upper bound,
    transaction markers take offsets too)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await admin.start()
    await probe.start()
    out: dict[str, int] = {}
    try:
        for entry in await admin.list_consumer_groups():
            group = entry[0] if isinstance(entry, tuple | list) else entry
            committed = await admin.list_consumer_group_offsets(group)
            parts = [tp for tp, meta in committed.items() if meta.offset >= 0]
            if not parts:
                continue
            end = await probe.end_offsets(parts)
            out[str(group)] = sum(max(0, end[tp] - committed[tp].offset) for tp in parts)
    finally:
        await probe.stop()
        await admin.close()
    return dict(sorted(out.items()))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; non-zero when a target did not converge or a replica
    did not stop within its grace period."""
    from bench.chaos_report import write_report  # matplotlib only once there is something to draw

    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    logging.getLogger("uvicorn.error").addFilter(_ClientGone())
    chaos = Chaos(opts)
    try:
        config, code = chaos.setup()
        chaos.start_replicas()
        driver = chaos.stream()
        chaos.converge()
        chaos.stop()
        data = chaos.analyse(driver, code, config)
        driver.close()
    finally:
        chaos.close()
    paths = write_report(data, opts.out_dir)
    console.log(f"wrote {', '.join(str(p) for p in paths)}")
    ok = data["convergence"]["ok"] and all(r["within_grace"] for r in data["stops"])
    return 0 if ok else 1


if __name__ == "__main__":
    if shutil.which("java") is None:
        print("bench.chaos needs Java 17 and Maven for the local Kafka broker", file=sys.stderr)
    sys.exit(main())
